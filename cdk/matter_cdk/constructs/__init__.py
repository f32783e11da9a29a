"""Reusable constructs of the Matter PKI app."""

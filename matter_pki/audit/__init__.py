"""Append-only, hash-chained audit log of every PKI operation in a PKI home.

Interface used by every command that changes state (the auditor tooling builds on it)::

    AuditLog(home).record("dac.issued", ca="pai-1", serial="5A...", operator="alice", pid="8000")

Events: ``paa.created``, ``paa.imported``, ``pai.created``, ``dac.issued``, ``dac.refused``,
``cert.revoked``, ``crl.published``, ``key.accessed``.
"""

from __future__ import annotations

from matter_pki.audit.log import AuditLog, AuditRecord

__all__ = ["AuditLog", "AuditRecord"]

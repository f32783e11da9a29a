"""The local CA and factory workflow: a PKI home on disk, file or PKCS#11 keys, no cloud.

Modules: ``home`` (layout and configuration), ``ledger`` (SQLite issuance ledger), ``keys`` (key
stores and secrets), ``ca`` (PAA/PAI operations), ``issue`` (DACs into a folder, crash-safe),
``inbox`` (the ``<PAI>/<PID>/<name>.csr`` folder), ``crl`` (revocation, CRLs, revocation sets),
``devices`` (factory key pairs and CSRs).
"""

from __future__ import annotations

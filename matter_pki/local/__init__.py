"""The local CA and factory workflow: a PKI home on disk, file or PKCS#11 keys, no cloud.

Modules: ``home`` (layout and configuration), ``ledger`` (SQLite issuance ledger), ``state`` (the
ledger and the audit log opened together, cross-checked, committed together), ``keys`` (key
stores and secrets), ``ca`` (PAA/PAI operations), ``issue`` (DACs into a folder or for in-memory
CSRs, crash-safe, group commit), ``inbox`` (the ``<PAI>/<PID>/<name>.csr`` folder), ``crl``
(revocation, CRLs, revocation sets), ``crl_signers`` (delegated CRL signers, in the ledger), ``repair`` (``ledger verify``, ``ledger rebuild``, ``home
upgrade``), ``devices`` (factory key pairs and CSRs).
"""

from __future__ import annotations

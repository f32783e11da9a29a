"""Append-only, hash-chained, signed audit log of every PKI operation in a PKI home, and auditor tooling.

Interface used by every command that changes state::

    AuditLog(home).record("dac.issued", ca="pai-1", serial="5A...", operator="alice", pid="8000")

Events: ``paa.created``, ``paa.imported``, ``pai.created``, ``pai.imported``, ``dac.issued``,
``dac.refused``, ``dac.withheld`` (a certificate the release gate signed and withheld), ``cert.revoked``,
``crl_signer.created``, ``crl_signer.revoked``, ``crl.published``, ``crl.number_allocated``, ``key.accessed``;
``ledger.committed`` / ``ledger.recovered`` / ``ledger.upgraded`` / ``ledger.rebuilt`` name a ledger
milestone (the signed head carries the last one); ``audit.sealed``, ``audit.tail_adopted`` and
``audit.tail_discarded`` are written by the log itself.

Modules: ``log`` (append, seal, head), ``seal`` (audit key and signed messages), ``verify`` (tamper
detection), ``query`` (local selection), ``insights`` (CloudWatch Logs Insights), ``pca_report``
(Private CA audit reports), ``trail`` (CloudTrail digest validation).
"""

from __future__ import annotations

from matter_pki.audit.log import AuditLog, AuditRecord, SealResult
from matter_pki.audit.verify import Problem, VerifyReport, verify_log

__all__ = ["AuditLog", "AuditRecord", "Problem", "SealResult", "VerifyReport", "verify_log"]

"""Matter 1.4 revocation: delegated CRL signers, direct and indirect CRLs, DCL revocation points, and
the SDK's own rules (revocation-set generation and the commissioner's revocation check), pure.

Modules: ``rules`` (limits and encodings, one place), ``signer`` (delegated CRL signer profile),
``crl`` (CRL builders), ``rawcrl`` (raw CRL view), ``sdk`` (generate_revocation_set.py's rules),
``dcl`` (revocation point payload and its checks), ``setgen`` (the revocation-set dry run),
``delegate`` (0/202/302/208 as the SDK's revocation delegate), ``lint`` (roles crl and crl-signer).
I/O lives at the edge: ``matter_pki.local.crl`` / ``crl_signers``, ``matter_pki.backends.kms``,
``matter_pki.backends.aws_crl`` and ``matter_pki.cli.revocation``.
"""

from __future__ import annotations

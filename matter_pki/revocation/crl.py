"""Direct and indirect CRL builders (RFC 5280 5; matter-rules.md §8), pure: the signing key is injected.

* Direct: signed by the CA itself (the PAA for PAIs, a PAI for its DACs). Issuer = the CA subject,
  byte for byte; AKID = the CA's SKID; a CRL Number; optionally an IssuingDistributionPoint whose one
  fullName URI is the DCL point's dataURL (needed whenever one VID and issuer SKID publish several
  CRLs: generate_revocation_set.py step 7b).
* Indirect: signed by a delegated CRL signer. Issuer = the signer subject; AKID = the signer SKID;
  a critical IssuingDistributionPoint with exactly one fullName URI and indirectCRL TRUE (RFC 5280
  5.2.5); a critical certificateIssuer entry extension naming the CA on every entry (RFC 5280 5.3.3
  inherits an absent one from the previous entry, but generate_revocation_set.py credits an entry
  without it to every CA point that uses the CRL).

Every CRL is parsed back before it is returned: issuer and certificateIssuer names must be the
certificates' subject bytes exactly (the revocation delegate compares raw DER), the AKID the
signer's SKID, and the signature must verify with the signer certificate (which catches a faulty
HSM or KMS adapter).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from matter_pki.certparse import parse_certificate
from matter_pki.errors import IssuanceError, ProfileError
from matter_pki.profiles import issuer_subject_key_id, require_utc
from matter_pki.revocation.rawcrl import parse_crl
from matter_pki.revocation.rules import MAX_SERIAL_OCTETS, data_url_problem

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

#: RFC 5280 5.2.3: a CRL Number is at most 20 octets.
MAX_CRL_NUMBER = (1 << 159) - 1
_CERTIFICATE_ISSUER = "2.5.29.29"


@dataclass(frozen=True, slots=True)
class Revocation:
    """One revoked certificate: serial, when, and an RFC 5280 reason (``unspecified`` is left out)."""

    serial: int
    revoked_at: datetime
    reason: x509.ReasonFlags | None = None

    def __post_init__(self) -> None:
        if self.serial <= 0:
            raise ProfileError("profile.serial_not_positive", f"serial {self.serial:#x} is not positive")
        if (self.serial.bit_length() + 8) // 8 > MAX_SERIAL_OCTETS:
            raise ProfileError(
                "profile.serial_too_long",
                f"serial {self.serial:X} is over {MAX_SERIAL_OCTETS} octets: commissioners cannot match it",
            )
        object.__setattr__(self, "revoked_at", require_utc(self.revoked_at, "revocation time"))
        if self.reason in (x509.ReasonFlags.remove_from_crl, x509.ReasonFlags.certificate_hold):
            raise ProfileError("profile.revocation_reason", "attestation certificates are revoked for good (no hold)")


@dataclass(frozen=True, slots=True)
class CrlScope:
    """The revocations of one CA, for an indirect CRL: the CA certificate and its revoked serials."""

    ca: x509.Certificate
    revocations: Sequence[Revocation] = field(default=())


@dataclass(frozen=True, slots=True, kw_only=True)
class CrlParams:
    """What every CRL needs: times, number and (optional for direct CRLs) the IDP URI."""

    this_update: datetime
    next_update: datetime
    crl_number: int
    idp_url: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "this_update", require_utc(self.this_update, "thisUpdate"))
        object.__setattr__(self, "next_update", require_utc(self.next_update, "nextUpdate"))
        if self.next_update <= self.this_update:
            raise ProfileError("profile.crl_next_update", "nextUpdate must be after thisUpdate")
        if isinstance(self.crl_number, bool) or not 0 <= self.crl_number <= MAX_CRL_NUMBER:
            raise ProfileError("profile.crl_number", "the CRL Number must be a non-negative integer of at most 20 octets")
        if self.idp_url is not None:
            problem = data_url_problem(self.idp_url)
            if problem:
                raise ProfileError("profile.crl_idp_url", f"IssuingDistributionPoint URI: {problem}")


def _entry(revocation: Revocation, ca: x509.Certificate | None) -> x509.RevokedCertificate:
    item = x509.RevokedCertificateBuilder().serial_number(revocation.serial).revocation_date(revocation.revoked_at)
    if revocation.reason is not None and revocation.reason is not x509.ReasonFlags.unspecified:
        item = item.add_extension(x509.CRLReason(revocation.reason), critical=False)
    if ca is not None:
        item = item.add_extension(x509.CertificateIssuer([x509.DirectoryName(ca.subject)]), critical=True)
    return item.build()


def _idp(url: str, *, indirect: bool) -> x509.IssuingDistributionPoint:
    return x509.IssuingDistributionPoint(
        full_name=[x509.UniformResourceIdentifier(url)],
        relative_name=None,
        only_contains_user_certs=False,
        only_contains_ca_certs=False,
        only_some_reasons=None,
        indirect_crl=indirect,
        only_contains_attribute_certs=False,
    )


def _subject_der(cert: x509.Certificate) -> bytes:
    return parse_certificate(cert.public_bytes(Encoding.DER)).subject.der


def _sign(
    signer_cert: x509.Certificate,
    signer_key: ec.EllipticCurvePrivateKey,
    params: CrlParams,
    entries: list[x509.RevokedCertificate],
    *,
    indirect: bool,
) -> bytes:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(signer_cert.subject)
        .last_update(params.this_update)
        .next_update(params.next_update)
        .add_extension(x509.AuthorityKeyIdentifier(issuer_subject_key_id(signer_cert), None, None), critical=False)
        .add_extension(x509.CRLNumber(params.crl_number), critical=False)
    )
    if params.idp_url is not None:
        builder = builder.add_extension(_idp(params.idp_url, indirect=indirect), critical=True)
    for entry in entries:
        builder = builder.add_revoked_certificate(entry)
    return builder.sign(signer_key, hashes.SHA256()).public_bytes(Encoding.DER)


def _check(crl_der: bytes, signer_cert: x509.Certificate, scopes: Sequence[x509.Certificate | None]) -> None:
    raw = parse_crl(crl_der)
    if raw.issuer != _subject_der(signer_cert):
        raise IssuanceError("crl.issuer_mismatch", "the CRL issuer is not byte-for-byte the signer's subject")
    if raw.akid() != issuer_subject_key_id(signer_cert):
        raise IssuanceError("crl.akid_mismatch", "the CRL AKID is not the signer's SKID")
    for entry, ca in zip(raw.entries, scopes, strict=True):
        names = entry.certificate_issuer_names()
        expected = None if ca is None else [_subject_der(ca)]
        if names != expected:
            raise IssuanceError(
                "crl.issuer_mismatch", "a certificateIssuer entry extension is not byte-for-byte the CA subject"
            )
    public = signer_cert.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise IssuanceError("crl.signature_invalid", "the CRL signer certificate does not carry an EC key")
    try:
        public.verify(raw.signature, raw.tbs, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as e:
        raise IssuanceError(
            "crl.signature_invalid", "the CRL signature does not verify with the signer certificate (wrong key?)"
        ) from e


def build_direct_crl(
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    revocations: Sequence[Revocation],
    params: CrlParams,
) -> bytes:
    """A v2 CRL signed by the CA itself (DER), checked before it is returned."""
    entries = [_entry(r, None) for r in revocations]
    crl_der = _sign(ca, ca_key, params, entries, indirect=False)
    _check(crl_der, ca, [None] * len(entries))
    return crl_der


def build_indirect_crl(
    signer: x509.Certificate,
    signer_key: ec.EllipticCurvePrivateKey,
    scopes: Sequence[CrlScope],
    params: CrlParams,
) -> bytes:
    """A v2 indirect CRL signed by a delegated signer for one or more CAs (DER), checked before return."""
    if params.idp_url is None:
        raise ProfileError(
            "profile.crl_idp_url", "an indirect CRL needs an IssuingDistributionPoint URI (the DCL point's dataURL)"
        )
    entries: list[x509.RevokedCertificate] = []
    cas: list[x509.Certificate | None] = []
    for scope in scopes:
        for revocation in scope.revocations:
            entries.append(_entry(revocation, scope.ca))
            cas.append(scope.ca)
    crl_der = _sign(signer, signer_key, params, entries, indirect=True)
    _check(crl_der, signer, cas)
    return crl_der


__all__ = ["MAX_CRL_NUMBER", "CrlParams", "CrlScope", "Revocation", "build_direct_crl", "build_indirect_crl"]

"""The Matter SDK's revocation-set rules, one function each, with the script's exact semantics.

Source: project-chip/connectedhomeip credentials/generate_revocation_set.py (functions verify_cert,
is_self_signed_certificate, validate_cert_chain, parse_vid_pid_from_distinguished_name,
validate_vid_pid, get_certificate_authority_details). Written independently from the description;
where the script would crash on odd input, the function reports that instead.

Semantics worth knowing (they differ from OpenSSL and from the commissioner):

* names are compared with ``cryptography``'s ``Name.__eq__`` (attribute types and values; the string
  type is ignored), not as DER bytes;
* a certificate is self-signed only when its AKID equals its own SKID, its issuer equals its subject
  and its signature verifies: a PAA without an AKID is never "self-signed" to the script;
* VID/PID are read with ``int(value, 16)`` from exactly one attribute, falling back to ``Mvid:`` /
  ``Mpid:`` in the first CN only when neither attribute is present.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from matter_pki.oid import MatterOID, NameOID


class CertVerification(Enum):
    """``CertVerificationResult`` of the script."""

    SUCCESS = 1
    SKID_NOT_FOUND = 2
    AKID_NOT_FOUND = 3
    SIGNATURE_VERIFICATION_FAILED = 4
    ISSUER_MISMATCH = 5
    AKID_MISMATCH = 6


def get_skid(cert: x509.Certificate) -> bytes | None:
    """The SKID bytes, or None when the extension is absent (the script's ExtensionNotFound)."""
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.key_identifier
    except x509.ExtensionNotFound:
        return None


def get_akid(cert: x509.Certificate | x509.CertificateRevocationList) -> bytes | None:
    """The AKID keyIdentifier, or None when absent (an AKID without keyIdentifier also gives None)."""
    try:
        value = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except x509.ExtensionNotFound:
        return None
    return value.key_identifier


def verify_cert(cert: x509.Certificate, root: x509.Certificate) -> CertVerification:
    """Is ``cert`` signed by ``root``: AKID == root SKID, issuer == root subject, ECDSA signature."""
    akid = get_akid(cert)
    if akid is None:
        return CertVerification.AKID_NOT_FOUND
    skid = get_skid(root)
    if skid is None:
        return CertVerification.SKID_NOT_FOUND
    if akid != skid:
        return CertVerification.AKID_MISMATCH
    if cert.issuer != root.subject:
        return CertVerification.ISSUER_MISMATCH
    try:
        key = root.public_key()
        algorithm = cert.signature_hash_algorithm
        if not isinstance(key, ec.EllipticCurvePublicKey) or algorithm is None:
            return CertVerification.SIGNATURE_VERIFICATION_FAILED
        key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(algorithm))
    except Exception:  # noqa: BLE001 - the script maps every failure here to SIGNATURE_VERIFICATION_FAILED
        return CertVerification.SIGNATURE_VERIFICATION_FAILED
    return CertVerification.SUCCESS


def is_self_signed(cert: x509.Certificate) -> bool:
    """``is_self_signed_certificate``: ``verify_cert(cert, cert)`` succeeds."""
    return verify_cert(cert, cert) is CertVerification.SUCCESS


def validate_cert_chain(
    signer: x509.Certificate, delegator: x509.Certificate | None, paa: x509.Certificate
) -> tuple[bool, str]:
    """Signer → PAA, or signer → delegator → PAA (the script's four scenarios)."""
    if delegator is not None:
        first = verify_cert(signer, delegator)
        if first is not CertVerification.SUCCESS:
            return False, f"the CRL signer is not issued by the delegator ({first.name})"
        second = verify_cert(delegator, paa)
        if second is not CertVerification.SUCCESS:
            return False, f"the delegator is not issued by the PAA ({second.name})"
        return True, "signer -> delegator -> PAA"
    result = verify_cert(signer, paa)
    if result is not CertVerification.SUCCESS:
        return False, f"the CRL signer is not issued by (or is not) the PAA ({result.name})"
    return True, "signer -> PAA"


class ScriptCrash(ValueError):
    """Input on which generate_revocation_set.py raises instead of skipping the point."""


def script_vid_pid(name: x509.Name) -> tuple[int | None, int | None]:
    """``parse_vid_pid_from_distinguished_name``: VID/PID from the OIDs, else ``Mvid:``/``Mpid:`` in the CN."""

    def single(oid: x509.ObjectIdentifier) -> int | None:
        found = name.get_attributes_for_oid(oid)
        if len(found) != 1:
            return None
        try:
            return int(str(found[0].value), 16)
        except ValueError as e:
            raise ScriptCrash(f"{oid.dotted_string} value {found[0].value!r} is not hexadecimal") from e

    vid, pid = single(MatterOID.VENDOR_ID), single(MatterOID.PRODUCT_ID)
    if vid is None and pid is None:
        cns = name.get_attributes_for_oid(NameOID.COMMON_NAME)
        if not cns:
            raise ScriptCrash("the subject has neither VID/PID attributes nor a CN")
        cn = str(cns[0].value)

        def fallback(marker: str) -> int | None:
            at = cn.find(marker)
            if at < 0:
                return None
            text = cn[at + len(marker) : at + len(marker) + 4]
            if len(text) != 4:
                return None
            try:
                return int(text, 16)
            except ValueError as e:
                raise ScriptCrash(f"{marker}{text!r} in the CN is not hexadecimal") from e

        vid, pid = fallback("Mvid:"), fallback("Mpid:")
    return vid, pid


@dataclass(frozen=True, slots=True)
class PointIds:
    """The revocation point fields the VID/PID rule reads."""

    vid: int
    pid: int
    is_paa: bool


def validate_vid_pid(point: PointIds, signer: x509.Certificate, delegator: x509.Certificate | None) -> tuple[bool, str]:
    """Steps 3 and 4: the VID/PID of the signer (or, on a delegated PAI point, of the delegator)."""
    signer_vid, _signer_pid = script_vid_pid(signer.subject)
    if point.is_paa:
        if signer_vid is not None and signer_vid != point.vid:
            return False, f"the CRL signer VID {signer_vid:04X} differs from the point's VID {point.vid:04X}"
        return True, "PAA point: signer VID absent or equal"
    vid, pid = script_vid_pid((delegator or signer).subject)
    whose = "delegator" if delegator is not None else "CRL signer"
    if vid is None or vid != point.vid:
        shown = "absent" if vid is None else f"{vid:04X}"
        return False, f"the {whose} VID ({shown}) does not equal the point's VID {point.vid:04X}"
    if pid is not None and pid != point.pid:
        return False, f"the {whose} PID {pid:04X} differs from the point's PID {point.pid:04X}"
    return True, f"PAI point: {whose} VID/PID match"


def authority_certificate(
    signer: x509.Certificate, delegator: x509.Certificate | None, paa: x509.Certificate, is_paa: bool
) -> x509.Certificate:
    """Step 9 (spec 6.2.4.1 point 9): whose subject and SKID name the revoked certificates' issuer."""
    if is_paa and not is_self_signed(signer):
        return paa
    if delegator is not None:
        return delegator
    return signer


__all__ = [
    "CertVerification",
    "PointIds",
    "ScriptCrash",
    "authority_certificate",
    "get_akid",
    "get_skid",
    "is_self_signed",
    "script_vid_pid",
    "validate_cert_chain",
    "validate_vid_pid",
    "verify_cert",
]

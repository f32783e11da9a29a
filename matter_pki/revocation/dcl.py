"""DCL revocation points: the exact ``add-revocation-point`` / ``update-revocation-point`` payload, checked.

The payload is ``MsgAddPkiRevocationDistributionPoint`` of the Distributed Compliance Ledger
(zigbee-alliance/distributed-compliance-ledger, proto pki/tx.proto; JSON names as in
x/pki/types/tx.pb.go). ``check_revocation_point`` applies, before anything is printed:

* the DCL's own rules: the ``validate`` tags of tx.pb.go (vid 1..65535, pid 0..65535, label 1..64,
  certificates ≤ 2048 characters, issuerSubjectKeyID ≤ 64, dataURL http(s) ≤ 256, schemaVersion 0),
  ``verifyFields`` of x/pki/types/message_add_pki_revocation_distribution_point.go (revocationType 1,
  no dataFileSize/dataDigest/dataDigestType for a CRL, issuerSubjectKeyID even-length upper-case
  hex), and the keeper of x/pki/keeper/msg_server_add_pki_revocation_distribution_point.go
  (verifyPAA / verifyPAI VID and PID rules, VerifyCRLSignerCertFormat for a non-self-signed signer,
  the signer chained to the ledger, (vid, label, issuerSubjectKeyID) and (vid, issuerSubjectKeyID,
  dataURL) unique); docs/transactions/pki.md ADD/UPDATE_REVOCATION_DISTRIBUTION_POINT;
* the rules the SDK's revocation-set script and the commissioner's revocation delegate add
  (credentials/generate_revocation_set.py validate_vid_pid and step 9; TestDACRevocationDelegateImpl.cpp
  CrossValidateCert): a delegator exactly when the signer is a delegate (the PAA itself for a PAA
  delegate), the VID/PID of the delegator on a delegated PAI point, the issuerSubjectKeyID the script
  derives, a PAA with an AKID when it signs its own CRL, and certificates the delegate can decode.
"""

from __future__ import annotations

import json
import shlex
from typing import TYPE_CHECKING, Any, TypedDict

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from matter_pki.certparse import parse_certificate
from matter_pki.der import DerError
from matter_pki.errors import InputError
from matter_pki.findings import Finding, finding
from matter_pki.revocation import sdk
from matter_pki.revocation.rules import (
    CRL_REVOCATION_TYPE,
    ISSUER_SKID_RE,
    MAX_CERT_PEM,
    MAX_CROSS_CHECK_CERT,
    MAX_ISSUER_SKID,
    MAX_LABEL,
    data_url_problem,
)
from matter_pki.vidpid import VidPidError, extract_vid_pid

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

ROLE = "dcl"
#: MsgAddPkiRevocationDistributionPoint fields, in proto order (without ``signer``, the account).
FIELDS = (
    "vid", "pid", "isPAA", "label", "crlSignerCertificate", "issuerSubjectKeyID", "dataURL", "dataFileSize",
    "dataDigest", "dataDigestType", "revocationType", "schemaVersion", "crlSignerDelegator",
)  # fmt: skip


class RevocationPoint(TypedDict, total=False):
    """A DCL revocation point (the add message without the signer account)."""

    vid: int
    pid: int
    isPAA: bool
    label: str
    crlSignerCertificate: str
    issuerSubjectKeyID: str
    dataURL: str
    dataFileSize: int
    dataDigest: str
    dataDigestType: int
    revocationType: int
    schemaVersion: int
    crlSignerDelegator: str


def pem(cert: x509.Certificate) -> str:
    """A certificate as the DCL stores it: PEM text."""
    return cert.public_bytes(Encoding.PEM).decode()


def skid_hex(cert: x509.Certificate) -> str:
    """The SKID as the DCL and revocation sets spell it (upper-case hex), empty when absent."""
    skid = sdk.get_skid(cert)
    return skid.hex().upper() if skid else ""


def default_label(authority: x509.Certificate) -> str:
    """``<CN> CRL``, at most 64 characters."""
    cns = authority.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    text = f"{cns[0].value!s} CRL" if cns else f"CRL {skid_hex(authority)[:16]}"
    return text[:MAX_LABEL].strip()


def build_revocation_point(
    *,
    signer: x509.Certificate,
    delegator: x509.Certificate | None,
    paa: x509.Certificate,
    is_paa: bool,
    data_url: str,
    label: str | None = None,
    vid: int | None = None,
) -> RevocationPoint:
    """The point for this signer, derived as the DCL and the SDK expect; check it before use.

    ``vid`` is needed only for a non-VID-scoped PAA (the VID it is registered under on the DCL).
    """
    signer_ids = _chip_ids(signer)
    if is_paa:
        point_vid = _chip_ids(paa).vid if _chip_ids(paa).vid is not None else vid
        point_pid = 0
    else:
        point_vid = _chip_ids(delegator or signer).vid
        point_pid = signer_ids.pid or 0
    if point_vid is None:
        raise InputError("input.vid_required", "the PAA is not VID-scoped: give the VID it is registered under (--vid)")
    authority = sdk.authority_certificate(signer, delegator, paa, is_paa)
    point: RevocationPoint = {
        "vid": point_vid,
        "isPAA": is_paa,
        "label": label if label is not None else default_label(authority),
        "crlSignerCertificate": pem(signer),
        "issuerSubjectKeyID": skid_hex(authority),
        "dataURL": data_url,
        "revocationType": CRL_REVOCATION_TYPE,
        "schemaVersion": 0,
    }
    if point_pid:
        point["pid"] = point_pid
    if delegator is not None:
        point["crlSignerDelegator"] = pem(delegator)
    return _ordered(point)


def _ordered(point: RevocationPoint) -> RevocationPoint:
    data: dict[str, Any] = {key: point[key] for key in FIELDS if key in point}  # type: ignore[literal-required]
    return data  # type: ignore[return-value]


# -- checks --------------------------------------------------------------------------------------
class _Ids:
    __slots__ = ("pid", "vid")

    def __init__(self, vid: int | None, pid: int | None) -> None:
        self.vid, self.pid = vid, pid


def _chip_ids(cert: x509.Certificate) -> _Ids:
    try:
        ids = extract_vid_pid(parse_certificate(cert.public_bytes(Encoding.DER)).subject)
    except (VidPidError, DerError):
        return _Ids(None, None)
    return _Ids(ids.vid, ids.pid)


def _dcl_self_signed(cert: x509.Certificate) -> bool:
    """The DCL's IsSelfSigned (x/pki/x509/x509.go): raw issuer == raw subject and AKID == SKID when present."""
    raw = parse_certificate(cert.public_bytes(Encoding.DER))
    if raw.issuer.der != raw.subject.der:
        return False
    akid, skid = sdk.get_akid(cert), sdk.get_skid(cert)
    return akid is None or akid == skid


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def signer_format_problem(cert: x509.Certificate) -> str | None:
    """VerifyCRLSignerCertFormat: why a non-self-signed CRL signer is refused by the DCL, or None."""
    from cryptography.hazmat.primitives.asymmetric import ec

    if sdk.get_skid(cert) is None:
        return "it has no subjectKeyIdentifier"
    if cert.version is not x509.Version.v3:
        return "it is not a v3 certificate"
    if cert.signature_algorithm_oid != x509.SignatureAlgorithmOID.ECDSA_WITH_SHA256:
        return "it is not signed with ecdsa-with-SHA256"
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        return "its key is not on prime256v1"
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    except x509.ExtensionNotFound:
        return "basicConstraints and keyUsage must both be present"
    if bc.value.ca:
        return "basicConstraints cA must be FALSE"
    if not bc.critical or not ku.critical:
        return "basicConstraints and keyUsage must be critical"
    if not ku.value.crl_sign:
        return "keyUsage must include cRLSign"
    for bit in ("content_commitment", "key_encipherment", "data_encipherment", "key_agreement", "key_cert_sign"):
        if getattr(ku.value, bit):
            return f"keyUsage may hold only cRLSign and digitalSignature (found {bit})"
    return None


def _load_pem(text: object, what: str, out: list[Finding]) -> x509.Certificate | None:
    if not isinstance(text, str) or not text.strip():
        out.append(finding("dcl.certificate_unreadable", f"{what} is missing", ROLE))
        return None
    if len(text) > MAX_CERT_PEM:
        out.append(finding("dcl.certificate_too_large", f"{what} is {len(text)} characters, over {MAX_CERT_PEM}", ROLE))
    try:
        return x509.load_pem_x509_certificate(text.encode())
    except ValueError as e:
        out.append(finding("dcl.certificate_unreadable", f"{what} is not a PEM certificate: {e}", ROLE))
        return None


def _int_field(point: RevocationPoint, key: str, low: int, high: int, code: str, out: list[Finding], *, required: bool) -> int:
    value: object = point.get(key)
    if value is None:
        if required:
            out.append(finding(code, f"{key} is required", ROLE))
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        out.append(finding(code, f"{key} is {value!r}, must be an integer in {low}..{high}", ROLE))
        return 0
    return value


def _static_checks(point: RevocationPoint, out: list[Finding], *, update: bool) -> None:
    unknown = sorted(set(point) - set(FIELDS))
    if unknown:
        out.append(finding("dcl.unknown_field", f"fields the message does not have: {', '.join(unknown)}", ROLE))
    label = point.get("label")
    if not isinstance(label, str) or not 1 <= len(label) <= MAX_LABEL:
        out.append(finding("dcl.label_length", f"label must be 1..{MAX_LABEL} characters, got {label!r}", ROLE))
    skid = point.get("issuerSubjectKeyID")
    if not isinstance(skid, str) or len(skid) > MAX_ISSUER_SKID or not ISSUER_SKID_RE.fullmatch(skid):
        out.append(finding(
            "dcl.issuer_skid_format",
            f"issuerSubjectKeyID {skid!r} must be even-length upper-case hex of at most {MAX_ISSUER_SKID} characters",
            ROLE,
        ))  # fmt: skip
    url = point.get("dataURL")
    if url is not None or not update:
        problem = data_url_problem(url)
        if problem:
            out.append(finding("dcl.data_url", f"dataURL: {problem}", ROLE))
    if not update and point.get("revocationType") != CRL_REVOCATION_TYPE:
        out.append(finding(
            "dcl.revocation_type", f"revocationType is {point.get('revocationType')!r}, the only type is 1 (CRL)", ROLE
        ))  # fmt: skip
    present = [k for k in ("dataFileSize", "dataDigest", "dataDigestType") if point.get(k) not in (None, 0, "")]
    if present:
        out.append(finding("dcl.data_fields_present", f"{', '.join(present)} must be omitted for a CRL point", ROLE))
    if point.get("schemaVersion", 0) != 0:
        out.append(finding("dcl.schema_version", f"schemaVersion is {point.get('schemaVersion')!r}, must be 0", ROLE))


def check_revocation_point(
    point: RevocationPoint,
    *,
    paa: x509.Certificate,
    registered_vid: int | None = None,
    existing: Iterable[RevocationPoint] = (),
    update: bool = False,
) -> list[Finding]:
    """Every DCL and SDK rule the point breaks (empty when it may be submitted).

    ``paa`` is the PAA on the ledger the signer chains to; ``registered_vid`` the VID a non-VID PAA is
    registered under; ``existing`` the points already on the ledger (for uniqueness; an update must
    name one of them).
    """
    out: list[Finding] = []
    _static_checks(point, out, update=update)
    vid = _int_field(point, "vid", 1, 0xFFFF, "dcl.vid_range", out, required=True)
    pid = _int_field(point, "pid", 0, 0xFFFF, "dcl.pid_range", out, required=False)
    is_paa = point.get("isPAA", False)
    if not isinstance(is_paa, bool):
        out.append(finding("dcl.unknown_field", f"isPAA must be a boolean, got {is_paa!r}", ROLE))
        is_paa = False
    signer = _load_pem(point.get("crlSignerCertificate"), "crlSignerCertificate", out)
    delegator: x509.Certificate | None = None
    if point.get("crlSignerDelegator"):
        delegator = _load_pem(point.get("crlSignerDelegator"), "crlSignerDelegator", out)
    if signer is not None and (delegator is not None or not point.get("crlSignerDelegator")):
        _signer_rules(point, signer, delegator, paa, vid, pid, is_paa, registered_vid, out)
    _uniqueness(point, vid, existing, update, out)
    return out


def _signer_rules(
    point: RevocationPoint, signer: x509.Certificate, delegator: x509.Certificate | None, paa: x509.Certificate,
    vid: int, pid: int, is_paa: bool, registered_vid: int | None, out: list[Finding],
) -> None:  # fmt: skip
    self_signed = _dcl_self_signed(signer)
    signer_ids = _chip_ids(signer)
    delegated = not self_signed and not _is_ca(signer)
    # -- DCL: verifyPAA / verifyPAI and the chain to the ledger.
    if signer_ids.vid is not None and vid and signer_ids.vid != vid:
        out.append(finding("dcl.vid_mismatch", f"the CRL signer's VID {signer_ids.vid:04X} differs from vid {vid:04X}", ROLE))
    if is_paa:
        if pid or signer_ids.pid is not None:
            out.append(finding("dcl.pid_on_paa_point", "a PAA point carries no pid, and its signer no PID", ROLE))
        if self_signed:
            if signer.public_bytes(Encoding.DER) != paa.public_bytes(Encoding.DER):
                out.append(finding("dcl.paa_point_not_paa", "the self-signed CRL signer is not the PAA on the ledger", ROLE))
            elif signer_ids.vid is None:
                if registered_vid is None:
                    out.append(finding("dcl.vid_unverified", "non-VID PAA: vid must be the VID it is registered under", ROLE))
                elif vid and registered_vid != vid:
                    out.append(finding(
                        "dcl.vid_mismatch", f"the PAA is registered under VID {registered_vid:04X}, not {vid:04X}", ROLE
                    ))  # fmt: skip
            if sdk.get_akid(signer) is None:
                out.append(finding(
                    "dcl.paa_without_akid",
                    "a PAA without an AKID cannot sign its own CRL: generate_revocation_set.py's chain check needs it",
                    ROLE,
                ))  # fmt: skip
        else:
            _format(signer, out)
            _chain(signer, None, paa, out)
    else:
        if self_signed:
            out.append(finding("dcl.pai_point_self_signed", "the CRL signer of a PAI point must not be self-signed", ROLE))
            return
        if signer_ids.pid is None and pid:
            out.append(finding("dcl.pid_mismatch", "pid must be omitted: the CRL signer carries no PID", ROLE))
        elif signer_ids.pid is not None and signer_ids.pid != pid:
            out.append(finding(
                "dcl.pid_mismatch", f"pid must equal the CRL signer's PID {signer_ids.pid:04X} (got {pid:04X})", ROLE
            ))  # fmt: skip
        if delegator is not None:
            _format(signer, out)
        _chain(signer, delegator, paa, out)
    # -- SDK and commissioner: delegator presence, VID/PID source, issuerSubjectKeyID, sizes.
    if delegated and delegator is None:
        out.append(finding(
            "dcl.delegator_missing",
            "a delegated CRL signer needs crlSignerDelegator (the "
            + ("PAA" if is_paa else "PAI")
            + "): without it the point fails the SDK's VID check or the commissioner's cross-check",
            ROLE,
        ))  # fmt: skip
    if delegator is not None and not delegated:
        out.append(finding("dcl.delegator_unexpected", "crlSignerDelegator is only for a delegated (non-CA) CRL signer", ROLE))
    if is_paa and delegator is not None and delegator.public_bytes(Encoding.DER) != paa.public_bytes(Encoding.DER):
        out.append(finding("dcl.delegator_not_paa", "on a PAA point the delegator must be the PAA itself", ROLE))
    if not is_paa and vid:
        ok, message = _sdk_vid_pid(vid, pid, signer, delegator)
        if not ok:
            code = "dcl.pid_sdk_conflict" if "PID" in message else "dcl.vid_mismatch"
            out.append(finding(code, f"generate_revocation_set.py: {message}", ROLE))
    expected = skid_hex(sdk.authority_certificate(signer, delegator, paa, is_paa))
    if point.get("issuerSubjectKeyID") != expected:
        out.append(finding(
            "dcl.issuer_skid_mismatch",
            f"issuerSubjectKeyID must be {expected} (the SKID of the "
            + ("PAA" if is_paa and not sdk.is_self_signed(signer) else "delegator" if delegator else "CRL signer")
            + f"), got {point.get('issuerSubjectKeyID')!r}",
            ROLE,
        ))  # fmt: skip
    checked = delegator if delegator is not None else signer
    size = len(checked.public_bytes(Encoding.DER))
    if size > MAX_CROSS_CHECK_CERT:
        out.append(finding(
            "dcl.cross_check_size",
            f"the {'delegator' if delegator is not None else 'CRL signer'} is {size} bytes DER: the revocation "
            f"delegate decodes at most {MAX_CROSS_CHECK_CERT} and then never matches",
            ROLE,
        ))  # fmt: skip


def _sdk_vid_pid(vid: int, pid: int, signer: x509.Certificate, delegator: x509.Certificate | None) -> tuple[bool, str]:
    try:
        return sdk.validate_vid_pid(sdk.PointIds(vid=vid, pid=pid, is_paa=False), signer, delegator)
    except sdk.ScriptCrash as e:
        return False, f"VID/PID cannot be read ({e})"


def _format(signer: x509.Certificate, out: list[Finding]) -> None:
    problem = signer_format_problem(signer)
    if problem:
        out.append(finding("dcl.signer_format", f"the CRL signer certificate is refused: {problem}", ROLE))


def _chain(signer: x509.Certificate, delegator: x509.Certificate | None, paa: x509.Certificate, out: list[Finding]) -> None:
    ok, message = sdk.validate_cert_chain(signer, delegator, paa)
    if not ok and delegator is None and not _is_ca(signer):
        # A PAI-issued delegate without its delegator cannot chain to the PAA directly.
        message += "; a PAI-issued delegate needs crlSignerDelegator"
    if not ok:
        out.append(finding("dcl.not_chained", message, ROLE))


def _uniqueness(point: RevocationPoint, vid: int, existing: Iterable[RevocationPoint], update: bool, out: list[Finding]) -> None:
    skid, label, url = point.get("issuerSubjectKeyID"), point.get("label"), point.get("dataURL")
    same_issuer = [p for p in existing if p.get("vid") == vid and p.get("issuerSubjectKeyID") == skid]
    labelled = [p for p in same_issuer if p.get("label") == label]
    if update and not labelled:
        out.append(finding("dcl.point_unknown", f"no point with vid {vid}, label {label!r} and this issuer to update", ROLE))
    if not update and labelled:
        out.append(finding("dcl.label_taken", f"label {label!r} is already used for this VID and issuer", ROLE))
    if url and any(p.get("dataURL") == url and p.get("label") != label for p in same_issuer):
        out.append(finding("dcl.data_url_taken", f"dataURL {url!r} is already used for this VID and issuer", ROLE))


# -- input / output --------------------------------------------------------------------------------
def load_points(data: bytes, what: str = "revocation points") -> list[RevocationPoint]:
    """Points from JSON: one point, a list, or ``dcld query pki (all-)revocation-points`` output."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError("input.json", f"{what} is not JSON: {e}") from e
    if isinstance(doc, dict):
        if "PkiRevocationDistributionPoint" in doc:
            doc = doc["PkiRevocationDistributionPoint"]
        elif "pkiRevocationDistributionPointsByIssuerSubjectKeyID" in doc:
            doc = (doc["pkiRevocationDistributionPointsByIssuerSubjectKeyID"] or {}).get("points", [])
        elif "pkiRevocationDistributionPoint" in doc:
            doc = [doc["pkiRevocationDistributionPoint"]]
        elif "point" in doc and isinstance(doc["point"], dict):
            doc = [doc["point"]]
        else:
            doc = [doc]
    if not isinstance(doc, list) or not all(isinstance(p, dict) for p in doc):
        raise InputError("input.json", f"{what} must be a point object or a list of them")
    points: list[RevocationPoint] = []
    for raw in doc:
        point = {k: v for k, v in raw.items() if k != "signer"}
        for key in ("vid", "pid", "revocationType", "schemaVersion", "dataFileSize", "dataDigestType"):
            if isinstance(point.get(key), str) and point[key].isdigit():
                point[key] = int(point[key])  # dcld prints 64-bit integers as strings
        points.append(point)  # type: ignore[arg-type]
    return points


def point_json(point: RevocationPoint) -> str:
    """The payload as pretty JSON (DCL field names and order)."""
    return json.dumps(_ordered(point), indent=2)


def dcld_command(
    point: RevocationPoint,
    *,
    update: bool = False,
    certificate: str | None = None,
    delegator: str | None = None,
    from_account: str = "$DCL_ACCOUNT",
) -> str:
    """The ``dcld tx pki add-revocation-point`` (or ``update-``) command line for the point.

    ``certificate`` / ``delegator`` are file paths holding the PEMs (dcld accepts a path or the PEM
    text); without them the PEM text is passed inline. ``--is-paa`` is always explicit: dcld defaults
    it to true (x/pki/client/cli/tx_add_pki_revocation_distribution_point.go).
    """
    args: list[str] = ["dcld", "tx", "pki", "update-revocation-point" if update else "add-revocation-point"]
    args.append(f"--vid={point.get('vid')}")
    if not update:
        if point.get("pid"):
            args.append(f"--pid={point.get('pid')}")
        args.append(f"--is-paa={'true' if point.get('isPAA') else 'false'}")
    args.append(f"--label={point.get('label')}")
    args.append(f"--certificate={certificate or point.get('crlSignerCertificate', '')}")
    if point.get("crlSignerDelegator"):
        args.append(f"--certificate-delegator={delegator or point.get('crlSignerDelegator')}")
    args.append(f"--issuer-subject-key-id={point.get('issuerSubjectKeyID')}")
    args.append(f"--data-url={point.get('dataURL')}")
    if not update:
        args.append(f"--revocation-type={point.get('revocationType', CRL_REVOCATION_TYPE)}")
    words = [shlex.quote(a) for a in args]
    words.append(f'--from="{from_account}"' if from_account.startswith("$") else shlex.quote(f"--from={from_account}"))
    return " ".join(words)


def certificates_of(point: RevocationPoint) -> tuple[x509.Certificate, x509.Certificate | None]:
    """The signer and (optional) delegator certificates of a point; ``input.certificate`` when unreadable."""
    try:
        signer = x509.load_pem_x509_certificate(str(point.get("crlSignerCertificate", "")).encode())
        text = point.get("crlSignerDelegator")
        delegator = x509.load_pem_x509_certificate(text.encode()) if text else None
    except ValueError as e:
        raise InputError("input.certificate", f"a certificate of point {point.get('label')!r} is unreadable: {e}") from e
    return signer, delegator


def points_sharing_issuer(points: Sequence[RevocationPoint], point: RevocationPoint) -> int:
    """How many points share this point's VID and issuerSubjectKeyID (itself included)."""
    return sum(
        1 for p in points if p.get("vid") == point.get("vid") and p.get("issuerSubjectKeyID") == point.get("issuerSubjectKeyID")
    )


__all__ = [
    "FIELDS",
    "RevocationPoint",
    "build_revocation_point",
    "certificates_of",
    "check_revocation_point",
    "dcld_command",
    "default_label",
    "load_points",
    "pem",
    "point_json",
    "points_sharing_issuer",
    "signer_format_problem",
    "skid_hex",
]

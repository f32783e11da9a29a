"""A dry run of the SDK's revocation-set algorithm on revocation points and their CRLs, step by step.

Follows ``from_dcl`` of project-chip/connectedhomeip credentials/generate_revocation_set.py (spec
6.2.4.1, the step numbers are the script's): 1 revocation type; 2 signer (and delegator) readable;
3-4 VID/PID; 5 PAA found and signer chain; 6 the CRL obtained as DER; 7a CRL AKID = signer SKID;
7b the IDP URI equals the dataURL when several points of the VID share the CRL's AKID as issuer
SKID; 9 issuerSubjectKeyID as derived; 10 entries, skipping those whose certificateIssuer names
another CA. A point failing an SDK step is dropped, as the script drops it.

The script leaves step 8 (RFC 5280 6.3 CRL validation) as a TODO and checks neither CRL signatures,
dates, CRL Number nor the signer's keyUsage. Those checks run here as step 8 ``extra``
(matter_pki.revocation.lint), with three more ``extra`` checks: the stricter IDP rule (several
points with the same VID and issuer SKID), the issuer name the script would write (it re-encodes
names; commissioners compare raw bytes), and the commissioner's cross-check of the resulting entry
(TestDACRevocationDelegateImpl.cpp CrossValidateCert). With the PAA known, the point's DCL rules run
as step ``dcl``.

The revocation-set entries written here carry the issuer name's raw DER and omit
``crl_signer_delegator`` when there is none: the script writes ``null`` there, which the
commissioner's delegate reads as a (broken) delegator.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, NoReturn, TypedDict

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from matter_pki.certparse import parse_certificate
from matter_pki.errors import InputError, IssuanceError
from matter_pki.findings import Finding, Severity, finding
from matter_pki.revocation import sdk
from matter_pki.revocation.dcl import (
    build_revocation_point,
    check_revocation_point,
    points_sharing_issuer,
    skid_hex,
)
from matter_pki.revocation.lint import lint_crl
from matter_pki.revocation.rules import CRL_REVOCATION_TYPE, MAX_CROSS_CHECK_CERT, MAX_ISSUER_NAME

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import datetime

    from matter_pki.revocation.dcl import RevocationPoint

ROLE = "revset"
Origin = Literal["sdk", "extra", "dcl"]
MAX_CHAIN_WALK = 8


class RevocationSetEntry(TypedDict, total=False):
    """One revocation-set entry, as the commissioner's revocation delegate reads it."""

    type: str
    issuer_subject_key_id: str
    issuer_name: str
    revoked_serial_numbers: list[str]
    crl_signer_cert: str
    crl_signer_delegator: str


@dataclass(frozen=True, slots=True)
class StepResult:
    """One step for one point: the script's number (or ``8``/``x``/``dcl``), origin, verdict, findings."""

    step: str
    origin: Origin
    title: str
    ok: bool
    findings: tuple[Finding, ...] = ()
    detail: str = ""

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "step": self.step, "origin": self.origin, "title": self.title, "ok": self.ok, "detail": self.detail,
            "findings": [f.to_dict() for f in self.findings],
        }  # fmt: skip


@dataclass
class PointReport:
    """The dry run of one revocation point: every step reached, and the entry the SDK would produce."""

    point: RevocationPoint
    steps: list[StepResult] = field(default_factory=list)
    entry: RevocationSetEntry | None = None

    @property
    def accepted(self) -> bool:
        """True when the SDK's algorithm keeps this point."""
        return self.entry is not None

    @property
    def failed(self) -> list[StepResult]:
        """Steps that failed (SDK steps drop the point; extra and dcl steps are ours)."""
        return [s for s in self.steps if not s.ok]

    def findings(self) -> list[Finding]:
        """Every finding of every step."""
        return [f for s in self.steps for f in s.findings]

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "label": self.point.get("label"), "vid": self.point.get("vid"), "isPAA": self.point.get("isPAA"),
            "issuerSubjectKeyID": self.point.get("issuerSubjectKeyID"), "dataURL": self.point.get("dataURL"),
            "accepted": self.accepted, "steps": [s.to_dict() for s in self.steps], "entry": self.entry,
        }  # fmt: skip


class _Stop(Exception):
    """An SDK step failed: the script continues with the next point."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


@dataclass
class _Run:
    report: PointReport

    def ok(self, step: str, title: str, detail: str = "", origin: Origin = "sdk", findings: Sequence[Finding] = ()) -> None:
        self.report.steps.append(StepResult(step, origin, title, True, tuple(findings), detail))

    def fail(self, step: str, title: str, code: str, message: str) -> NoReturn:
        f = finding(code, message, ROLE)
        self.report.steps.append(StepResult(step, "sdk", title, False, (f,), message))
        raise _Stop

    def extra(self, step: str, title: str, findings: Sequence[Finding], origin: Origin = "extra") -> None:
        bad = any(f.severity >= Severity.ERROR for f in findings)
        detail = "; ".join(f"{f.code}: {f.message}" for f in findings if f.severity >= Severity.WARNING) or "no findings"
        self.report.steps.append(StepResult(step, origin, title, not bad, tuple(findings), detail))


class _Certificates:
    """The certificates the algorithm may look issuers up in (the DCL's approved certificates)."""

    def __init__(self, roots: Sequence[x509.Certificate], others: Sequence[x509.Certificate]) -> None:
        self.roots = {_der(c) for c in roots}
        self.by_key: dict[tuple[bytes, bytes], x509.Certificate] = {}
        for cert in [*others, *roots]:
            skid = sdk.get_skid(cert)
            if skid is not None:
                self.by_key[(cert.subject.public_bytes(), skid)] = cert

    def paa_for(self, cert: x509.Certificate) -> tuple[x509.Certificate | None, str]:
        """``get_paa_cert``: walk issuer name + AKID up to a root."""
        name, akid = cert.issuer, sdk.get_akid(cert)
        if akid is None:
            return None, "the CRL signer has no AKID: its issuer cannot be looked up"
        for _ in range(MAX_CHAIN_WALK):
            found = self.by_key.get((name.public_bytes(), akid))
            if found is None:
                return None, f"no approved certificate with subject {name.rfc4514_string()} and SKID {akid.hex().upper()}"
            if _der(found) in self.roots or sdk.is_self_signed(found):
                return found, f"PAA {found.subject.rfc4514_string()}"
            name = found.issuer
            akid = sdk.get_akid(found) or akid
        return None, "no root within a few issuer links"


def _step1_to_5(run: _Run, point: RevocationPoint, certs: _Certificates) -> tuple[x509.Certificate, x509.Certificate | None, x509.Certificate]:
    if point.get("revocationType") != CRL_REVOCATION_TYPE:
        run.fail("1", "revocation type", "revset.revocation_type", f"revocationType {point.get('revocationType')!r} is not 1 (CRL)")
    run.ok("1", "revocation type", "CRL")
    try:
        signer = x509.load_pem_x509_certificate(str(point.get("crlSignerCertificate", "")).encode())
    except ValueError as e:
        run.fail("2", "CRL signer certificate", "revset.signer_unreadable", f"crlSignerCertificate is not a PEM certificate: {e}")
    delegator: x509.Certificate | None = None
    notes: list[Finding] = []
    if point.get("crlSignerDelegator"):
        try:
            delegator = x509.load_pem_x509_certificate(str(point.get("crlSignerDelegator")).encode())
        except ValueError as e:
            notes.append(finding("revset.delegator_unreadable", f"crlSignerDelegator unreadable, ignored as the script does: {e}", ROLE))
    run.ok("2", "CRL signer certificate", signer.subject.rfc4514_string(), findings=notes)
    ids = sdk.PointIds(vid=int(point.get("vid") or 0), pid=int(point.get("pid") or 0), is_paa=bool(point.get("isPAA")))
    try:
        good, message = sdk.validate_vid_pid(ids, signer, delegator)
    except sdk.ScriptCrash as e:
        run.fail("3-4", "VID/PID", "revset.script_crash", f"generate_revocation_set.py raises here: {e}")
    if not good:
        run.fail("3-4", "VID/PID", "revset.vid_pid", message)
    run.ok("3-4", "VID/PID", message)
    paa, how = certs.paa_for(signer)
    if paa is None:
        run.fail("5", "signer chain to the PAA", "revset.paa_not_found", how)
    good, message = sdk.validate_cert_chain(signer, delegator, paa)
    if not good:
        run.fail("5", "signer chain to the PAA", "revset.signer_chain", message)
    run.ok("5", "signer chain to the PAA", f"{message}; {how}")
    return signer, delegator, paa


def _entries(crl: x509.CertificateRevocationList, authority_name: x509.Name) -> tuple[list[str], int]:
    serials: list[str] = []
    skipped = 0
    for revoked in crl:
        try:
            ext = revoked.extensions.get_extension_for_class(x509.CertificateIssuer)
            named = ext.value.get_values_for_type(x509.DirectoryName)[0]
            if named is not None and named != authority_name:
                skipped += 1
                continue
        except Exception:  # noqa: BLE001, S110 - the script ignores every failure here and keeps the entry
            pass
        text = f"{revoked.serial_number:02X}"
        serials.append(text if len(text) % 2 == 0 else "0" + text)
    return serials, skipped


def _check_point(
    point: RevocationPoint,
    all_points: Sequence[RevocationPoint],
    fetch_crl: Callable[[RevocationPoint], bytes | None],
    certs: _Certificates,
    at: datetime | None,
    check_dcl: bool,
) -> PointReport:
    run = _Run(PointReport(point))
    try:
        signer, delegator, paa = _step1_to_5(run, point, certs)
        try:
            data = fetch_crl(point)
        except InputError as e:  # the dataURL does not answer: the SDK skips the point
            run.fail("6", "obtain the CRL", "revset.crl_unavailable", f"{point.get('dataURL')!r}: {e.message}")
        if data is None:
            run.fail("6", "obtain the CRL", "revset.crl_unavailable", f"no CRL at {point.get('dataURL')!r}")
        try:
            crl = x509.load_der_x509_crl(data)
        except ValueError as e:
            hint = " (it is PEM: the dataURL must serve DER)" if b"-----BEGIN" in data else ""
            run.fail("6", "obtain the CRL", "revset.crl_unavailable", f"not a DER CRL cryptography loads{hint}: {e}")
        run.ok("6", "obtain the CRL", f"{len(data)} bytes, {len(crl)} entries")
        signer_skid, crl_akid = sdk.get_skid(signer), sdk.get_akid(crl)
        if signer_skid is None or crl_akid is None or crl_akid != signer_skid:
            run.fail(
                "7a", "CRL AKID = signer SKID", "revset.crl_akid",
                f"CRL AKID {crl_akid.hex().upper() if crl_akid else '(none)'} vs signer SKID "
                f"{signer_skid.hex().upper() if signer_skid else '(none)'}",
            )  # fmt: skip
        run.ok("7a", "CRL AKID = signer SKID", crl_akid.hex().upper())
        same = [p for p in all_points if p.get("issuerSubjectKeyID") == crl_akid.hex().upper() and p.get("vid") == point.get("vid")]
        idp = _idp_uris(crl)
        if len(same) > 1:
            if idp is None or len(idp) != 1 or idp[0] != point.get("dataURL"):
                run.fail(
                    "7b", "IDP for several points", "revset.idp_mismatch",
                    f"{len(same)} points of VID {int(point.get('vid') or 0):04X} have issuer SKID = this CRL's AKID: "
                    f"the CRL needs an IDP whose one URI is {point.get('dataURL')!r} (found {idp})",
                )  # fmt: skip
            run.ok("7b", "IDP for several points", f"IDP URI matches the dataURL ({len(same)} points)")
        else:
            run.ok("7b", "IDP for several points", "not required (one point)")
        # Step 8 is a TODO in the script: RFC 5280 CRL validation is ours.
        extra = lint_crl(data, signer=signer, at=at)
        sharing = points_sharing_issuer(all_points, point)
        if sharing > 1 and (idp is None or idp != [point.get("dataURL")]):
            extra.append(finding(
                "revset.idp_recommended",
                f"{sharing} points share VID and issuer SKID: give each CRL an IDP whose URI is its dataURL",
                ROLE,
            ))  # fmt: skip
        run.extra("8", "RFC 5280 CRL checks (not done by the SDK)", extra)
        authority = sdk.authority_certificate(signer, delegator, paa, bool(point.get("isPAA")))
        authority_skid = skid_hex(authority)
        if point.get("issuerSubjectKeyID") != authority_skid:
            run.fail(
                "9", "issuerSubjectKeyID", "revset.issuer_skid",
                f"issuerSubjectKeyID {point.get('issuerSubjectKeyID')!r} is not {authority_skid or '(no SKID)'}, the SKID of "
                f"{authority.subject.rfc4514_string()}",
            )  # fmt: skip
        run.ok("9", "issuerSubjectKeyID", f"{authority_skid} ({authority.subject.rfc4514_string()})")
        serials, skipped = _entries(crl, authority.subject)
        notes = [finding("revset.entry_skipped", f"{skipped} entries name another certificate issuer", ROLE)] if skipped else []
        run.ok("10", "revoked serial numbers", f"{len(serials)} listed, {skipped} skipped", findings=notes)
        raw_name = parse_certificate(_der(authority)).subject.der
        entry: RevocationSetEntry = {
            "type": "revocation_set",
            "issuer_subject_key_id": authority_skid,
            "issuer_name": _b64(raw_name),
            "revoked_serial_numbers": serials,
            "crl_signer_cert": _b64(_der(signer)),
        }
        if delegator is not None:
            entry["crl_signer_delegator"] = _b64(_der(delegator))
        run.report.entry = entry
        checks: list[Finding] = []
        if authority.subject.public_bytes() != raw_name:
            checks.append(finding(
                "revset.name_reencoded",
                "generate_revocation_set.py would write a re-encoded issuer_name that commissioners never match "
                "(they compare raw DER); the project's set carries the raw bytes",
                ROLE,
            ))  # fmt: skip
        checks.extend(cross_check_findings(entry))
        run.extra("x", "the entry as the commissioner will use it", checks)
        if check_dcl:
            run.extra("dcl", "DCL rules of the point", check_revocation_point(point, paa=paa), origin="dcl")
    except _Stop:
        pass
    return run.report


def _idp_uris(crl: x509.CertificateRevocationList) -> list[str] | None:
    try:
        idp = crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint).value
    except (x509.ExtensionNotFound, ValueError):
        return None
    names = idp.full_name or []
    return [n.value if isinstance(n, x509.UniformResourceIdentifier) else repr(n) for n in names]


def cross_check_findings(entry: RevocationSetEntry) -> list[Finding]:
    """Would the commissioner's CrossValidateCert accept this entry (else it never matches anything)."""
    out: list[Finding] = []
    text = entry.get("crl_signer_delegator") or entry.get("crl_signer_cert", "")
    whose = "crl_signer_delegator" if entry.get("crl_signer_delegator") else "crl_signer_cert"
    if len(text) * 3 // 4 > MAX_CROSS_CHECK_CERT:
        out.append(finding("revset.cross_check", f"{whose} is over {MAX_CROSS_CHECK_CERT} bytes: the delegate cannot decode it", ROLE))
        return out
    try:
        raw = parse_certificate(base64.b64decode(text, validate=True))
        cert = x509.load_der_x509_certificate(raw.der)
    except Exception as e:  # noqa: BLE001 - any unreadable certificate fails the cross-check
        out.append(finding("revset.cross_check", f"{whose} is unreadable: {e}", ROLE))
        return out
    if _b64(raw.subject.der) != entry.get("issuer_name") or skid_hex(cert) != entry.get("issuer_subject_key_id"):
        out.append(finding(
            "revset.cross_check",
            f"the {whose} subject/SKID is not the entry's issuer: the commissioner ignores this entry",
            ROLE,
        ))  # fmt: skip
    if len(raw.subject.der) > MAX_ISSUER_NAME:
        out.append(finding("revset.cross_check", f"issuer name is {len(raw.subject.der)} bytes, over {MAX_ISSUER_NAME}", ROLE))
    return out


def generate_revocation_set(
    points: Sequence[RevocationPoint],
    *,
    fetch_crl: Callable[[RevocationPoint], bytes | None],
    trusted_paas: Sequence[x509.Certificate],
    known_certificates: Sequence[x509.Certificate] = (),
    other_points: Sequence[RevocationPoint] = (),
    at: datetime | None = None,
    check_dcl: bool = True,
) -> list[PointReport]:
    """Run the SDK's algorithm (plus the extra checks) over every point; one report per point.

    ``other_points`` are the rest of the DCL: they count for the IDP rule (step 7b) and lend their
    certificates to the PAA lookup, but are not checked themselves.
    """
    from matter_pki.revocation.dcl import certificates_of

    others = list(known_certificates)
    everything = [*points, *other_points]
    for point in everything:
        try:
            signer, delegator = certificates_of(point)
        except Exception:  # noqa: BLE001, S112 - an unreadable point fails at its own step 2
            continue
        others.append(delegator if delegator is not None else signer)
    certs = _Certificates(trusted_paas, others)
    return [_check_point(p, everything, fetch_crl, certs, at, check_dcl) for p in points]


#: The dataURL used for the pre-publication check of a CRL published without ``--url``.
UNANNOUNCED_URL = "https://unannounced.invalid/crl"


def check_before_publishing(
    crl_der: bytes,
    *,
    signer: x509.Certificate,
    delegator: x509.Certificate | None,
    paa: x509.Certificate,
    is_paa: bool,
    url: str | None,
    vid: int | None,
    now: datetime,
) -> PointReport:
    """Run the SDK's revocation-set algorithm (and the extra checks) on the CRL about to be published.

    Raises ``crl.check_failed`` naming each failed step; returns the report (its entry is the set).
    """
    point = build_revocation_point(
        signer=signer, delegator=delegator, paa=paa, is_paa=is_paa, data_url=url or UNANNOUNCED_URL,
        # A non-VID PAA's registered VID is not known here; 'dcl revocation-point --vid' checks it.
        vid=vid if vid is not None else 0xFFFF,
    )  # fmt: skip
    [report] = generate_revocation_set(
        [point], fetch_crl=lambda _p: crl_der, trusted_paas=[paa], at=now, check_dcl=url is not None
    )
    problems = [
        f"step {s.step} ({s.origin}) {f.code}: {f.message}"
        for s in report.steps
        for f in s.findings
        if f.severity >= Severity.ERROR
    ]
    if problems or not report.accepted:
        raise IssuanceError(
            "crl.check_failed", "the CRL fails the SDK's revocation-set rules: " + "; ".join(problems[:5] or ["dropped"])
        )
    return report


def revocation_set(reports: Sequence[PointReport]) -> list[RevocationSetEntry]:
    """The entries of the points the algorithm keeps, in point order."""
    return [r.entry for r in reports if r.entry is not None]


__all__ = [
    "UNANNOUNCED_URL",
    "PointReport",
    "RevocationSetEntry",
    "StepResult",
    "check_before_publishing",
    "cross_check_findings",
    "generate_revocation_set",
    "revocation_set",
]

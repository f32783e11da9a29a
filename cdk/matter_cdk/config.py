"""CDK context of the Matter PKI app, parsed and validated once at synth time.

Keys follow the public sample (aws-samples/aws-private-ca-matter-infrastructure): ``generatePaa``,
``generatePaiCnt``, ``stackNamePrefix``, ``crlBucketName``, ``vendorId``, ``validityInDays``,
``validityEndDate``, ``paaCommonName``, ``paaOrganization``, ``paaOU``, ``paaArn``, ``paaRegion``,
``productIds``, ``paiCommonNames``, ``paiOrganizations``, ``paiOrganizationalUnits``,
``dacValidityInDays``. The sample took several of them as CloudFormation parameters; here every
one is a context value (``-c key=value``) because subjects are rendered and VID/PID checked at
synth time. Extra keys: ``pcaIssueRateLimit``, ``auditLockMode``, ``alarmTopicArn``, ``crlDistribution``.

The parser is a pure function of the context and environment mappings, so tests need no CDK.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from matter_pki.errors import MatterPkiError, ProfileError
from matter_pki.idrules import check_pid, check_vid, vid_note
from matter_pki.profiles import PaaProfile, PaiProfile, Validity
from matter_pki.validity import WORDS as DAC_VALIDITY_WORDS
from matter_pki.validity import ValidityPolicy
from matter_pki.vidpid import format_hex16

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path

#: Matter test vendor ID used when a development synth gives none (Matter Core spec: FFF1..FFF4).
DEV_VENDOR_ID = 0xFFF1
#: Placeholder PAA for a development synth of the PAI stacks; never deployable (account 000000000000).
DEV_PAA_ARN = (
    "arn:aws:acm-pca:us-east-1:000000000000:certificate-authority/00000000-0000-0000-0000-000000000000"
)
DEFAULT_PAA_VALIDITY_DAYS = 3650
DEFAULT_PAI_VALIDITY_DAYS = 3600
#: The signer's policy when dacValidityInDays is not given: a DAC ends with its PAI.
DEFAULT_DAC_VALIDITY = "issuer"
#: Private CA default quota for IssueCertificate, requests per second per account and Region.
DEFAULT_PCA_ISSUE_RATE_LIMIT = 25
MAX_PAI_COUNT = 20

# Profiles render subjects and extensions here; the CA certificates' validity is given to Private CA
# relative to deployment time (DAYS / END_DATE), so the profile's own Validity is never rendered.
_PROFILE_VALIDITY = Validity.no_expiry(datetime(2000, 1, 1, tzinfo=UTC))

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}
_HEX4 = re.compile(r"[0-9A-Fa-f]{4}")
_PCA_ARN = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):acm-pca:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"certificate-authority/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
)
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d")
_END_DATE = re.compile(r"\d{14}")
_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,31}")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_TOPIC_ARN = re.compile(r"arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}")


class ContextError(ValueError):
    """A context value is missing, malformed or inconsistent; names the key and the expected form."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"context {key}: {message}")
        self.key = key


class Mode(StrEnum):
    """What this synth builds: the PAA side (roles, audit, optional new PAA) or PAIs + DAC pipeline."""

    PAA = "paa"
    PAI = "pai"


@dataclass(frozen=True, slots=True)
class CaValidity:
    """Validity of a CA certificate as Private CA takes it: days from issuance, or a fixed end date."""

    days: int | None = None
    end_date: str | None = None  # YYYYMMDDHHMMSS, UTC

    def pca(self) -> dict[str, str | int]:
        """``Validity`` of IssueCertificate / AWS::ACMPCA::Certificate."""
        if self.end_date is not None:
            return {"Type": "END_DATE", "Value": int(self.end_date)}
        return {"Type": "DAYS", "Value": int(self.days or 0)}

    def describe(self) -> str:
        """Human form for outputs and warnings."""
        return f"until {self.end_date} UTC" if self.end_date else f"{self.days} days"


@dataclass(frozen=True, slots=True, kw_only=True)
class PaaSettings:
    """A new PAA created on Private CA."""

    vid: int
    common_name: str
    organization: str | None
    organizational_unit: str | None
    validity: CaValidity

    def profile(self) -> PaaProfile:
        """The PAA profile the root template produces (no pathLen, no AKID)."""
        return PaaProfile.for_private_ca(
            vid=self.vid,
            common_name=self.common_name,
            organization=self.organization,
            organizational_unit=self.organizational_unit,
            validity=_PROFILE_VALIDITY,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PaiSettings:
    """One PAI to create under the PAA."""

    index: int
    vid: int
    pid: int | None
    common_name: str
    organization: str | None
    organizational_unit: str | None

    def profile(self) -> PaiProfile:
        """The PAI profile (VID of the PAA, optional PID)."""
        return PaiProfile(
            vid=self.vid,
            pid=self.pid,
            common_name=self.common_name,
            organization=self.organization,
            organizational_unit=self.organizational_unit,
            validity=_PROFILE_VALIDITY,
        )

    def describe(self) -> str:
        """``VID=FFF1 PID=8000 CN=...`` as the sample's outputs show it."""
        pid = f" PID={format_hex16(self.pid)}" if self.pid is not None else ""
        return f"VID={format_hex16(self.vid)}{pid} CN={self.common_name}"


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineSettings:
    """The CSR → DAC pipeline next to the PAIs."""

    dac_validity: str  # MATTER_DAC_VALIDITY: a number of days, "issuer" or "no-expiry"
    issue_rate_limit: int
    alarm_topic_arn: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class MatterConfig:
    """Everything the app needs, validated."""

    mode: Mode
    prefix: str = ""
    crl_bucket_name: str | None = None
    crl_distribution: bool = False
    paa: PaaSettings | None = None
    paa_arn: str | None = None
    paa_region: str | None = None
    pais: tuple[PaiSettings, ...] = ()
    pai_validity: CaValidity | None = None
    pipeline: PipelineSettings | None = None
    account: str | None = None
    region: str | None = None
    audit_lock_mode: Literal["GOVERNANCE", "COMPLIANCE"] = "GOVERNANCE"
    #: ``delegatedCrlSigner``: a KMS-backed delegated CRL signer for the PAIs (revocation/KmsCrlSigner).
    delegated_crl_signer: bool = False
    dev_defaults: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def generate_paa(self) -> bool:
        """True when this synth creates a new PAA."""
        return self.paa is not None

    @property
    def cross_region(self) -> bool:
        """PAIs live in another Region than their PAA (the sample's ``paaRegion`` vs stack Region)."""
        return self.mode is Mode.PAI and self.region is not None and self.region != self.paa_region

    def warnings(self) -> list[str]:
        """Lines to print on stderr at synth."""
        out = list(self.notes)
        if self.dev_defaults:
            out.append(
                "DEVELOPMENT DEFAULTS used for "
                + ", ".join(self.dev_defaults)
                + ": the templates need the parameter DevDefaultsAcknowledged=yes to deploy. "
                "Pass real values with -c key=value for anything but a test account."
            )
        return out


def load_or_exit(context: Mapping[str, object], environ: Mapping[str, str] | None = None) -> MatterConfig:
    """``load`` for the app: a bad context value ends the synth with one line on stderr (exit 2), no traceback."""
    try:
        return load(context, environ)
    except ContextError as e:
        print(f"error[cdk.context]: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def load(context: Mapping[str, object], environ: Mapping[str, str] | None = None) -> MatterConfig:
    """Parse the app context (``-c`` / cdk.json / CDK_CONTEXT_JSON); ``environ`` gives CDK_DEFAULT_*."""
    env = environ or {}
    ctx = _Context(context)
    prefix = ctx.text("stackNamePrefix") or ""
    if prefix and not _PREFIX.fullmatch(prefix):
        raise ContextError(
            "stackNamePrefix", f"must be a letter then up to 31 letters, digits or '-', got {prefix!r}"
        )
    crl_bucket = ctx.text("crlBucketName")
    if crl_bucket is not None and (not _BUCKET.fullmatch(crl_bucket) or ".." in crl_bucket):
        raise ContextError("crlBucketName", f"{crl_bucket!r} is not a valid S3 bucket name")
    lock_mode = (ctx.text("auditLockMode") or "GOVERNANCE").upper()
    if lock_mode not in ("GOVERNANCE", "COMPLIANCE"):
        raise ContextError("auditLockMode", f"must be GOVERNANCE or COMPLIANCE, got {lock_mode!r}")
    distribution = ctx.flag("crlDistribution")
    if distribution and crl_bucket is not None and ctx.present("generatePaiCnt"):
        raise ContextError(
            "crlDistribution",
            "needs the CRL bucket this stack creates (its policy admits the distribution): omit crlBucketName, "
            "or put the distribution in front of the existing bucket where it was created",
        )
    common: dict[str, Any] = {
        "prefix": prefix, "crl_bucket_name": crl_bucket, "crl_distribution": distribution, "audit_lock_mode": lock_mode,
        "delegated_crl_signer": ctx.flag("delegatedCrlSigner"),
    }  # fmt: skip
    if ctx.present("generatePaiCnt"):
        return _load_pai(ctx, env, common)
    return _load_paa(ctx, env, common)


def _load_paa(ctx: _Context, env: Mapping[str, str], common: dict[str, Any]) -> MatterConfig:
    generate = ctx.flag("generatePaa")
    paa_arn = ctx.text("paaArn")
    account, region = env.get("CDK_DEFAULT_ACCOUNT") or None, env.get("CDK_DEFAULT_REGION") or None
    if not generate:
        if paa_arn is None:
            raise ContextError(
                "generatePaa",
                "nothing to build: pass -c generatePaa=1 (new PAA), -c paaArn=<PAA ARN> (roles and audit "
                "around an existing PAA) or -c generatePaiCnt=<N> (PAIs under paaArn)",
            )
        _parse_arn(paa_arn, "paaArn")
        return MatterConfig(mode=Mode.PAA, paa_arn=paa_arn, account=account, region=region, **common)
    notes: list[str] = []
    if paa_arn is not None:
        notes.append("paaArn is ignored with generatePaa=1 (a new PAA is created)")
    dev: list[str] = []
    vid = ctx.hex16("vendorId", what="vendor ID")
    notes.extend(filter(None, [vid_note(vid)]))
    if vid is None:
        vid = DEV_VENDOR_ID
        dev.append(f"vendorId={format_hex16(DEV_VENDOR_ID)} (Matter test vendor)")
    settings = PaaSettings(
        vid=vid,
        common_name=ctx.text("paaCommonName") or f"Matter PAA {format_hex16(vid)}",
        organization=ctx.text("paaOrganization"),
        organizational_unit=ctx.text("paaOU") or ctx.text("paaOrganizationalUnit"),
        validity=_validity(ctx, DEFAULT_PAA_VALIDITY_DAYS),
    )
    _check_profile(settings.profile, "paaCommonName/paaOrganization/paaOU")
    return MatterConfig(
        mode=Mode.PAA,
        paa=settings,
        account=account,
        region=region,
        dev_defaults=tuple(dev),
        notes=tuple(notes),
        **common,
    )


def _load_pai(ctx: _Context, env: Mapping[str, str], common: dict[str, Any]) -> MatterConfig:
    count = ctx.integer("generatePaiCnt", minimum=1, maximum=MAX_PAI_COUNT)
    assert count is not None
    notes: list[str] = []
    if ctx.flag("generatePaa"):
        notes.append("generatePaa is ignored with generatePaiCnt (PAIs are created under paaArn)")
    dev: list[str] = []
    paa_arn = ctx.text("paaArn")
    vid = ctx.hex16("vendorId", what="vendor ID")
    notes.extend(filter(None, [vid_note(vid)]))
    if paa_arn is None:
        paa_arn = DEV_PAA_ARN
        dev.append("paaArn (placeholder in account 000000000000)")
        if vid is None:
            vid = DEV_VENDOR_ID
            dev.append(f"vendorId={format_hex16(DEV_VENDOR_ID)} (Matter test vendor)")
    elif vid is None:
        raise ContextError(
            "vendorId",
            "required with paaArn: PAI subjects are rendered at synth time (4 hex digits, the PAA's VID; "
            "the deployment checks it against the PAA)",
        )
    partition_region_account = _parse_arn(paa_arn, "paaArn")
    arn_region, arn_account = partition_region_account[1], partition_region_account[2]
    paa_region = ctx.text("paaRegion") or arn_region
    if not _REGION.fullmatch(paa_region):
        raise ContextError("paaRegion", f"{paa_region!r} is not an AWS Region name")
    if paa_region != arn_region:
        raise ContextError("paaRegion", f"{paa_region} differs from the Region in paaArn ({arn_region})")
    account = env.get("CDK_DEFAULT_ACCOUNT") or arn_account
    if account != arn_account:
        raise ContextError(
            "paaArn",
            f"the PAA is in account {arn_account} but the deployment account is {account}; "
            "PAIs must be in the PAA's account",
        )
    region = env.get("CDK_DEFAULT_REGION") or paa_region
    if region != paa_region:
        notes.append(
            f"PAIs in {region} under a PAA in {paa_region}: signed across Regions by a custom resource, "
            f"and {region} gets its own audit stack (the Region comes from the CLI profile / CDK_DEFAULT_REGION)"
        )

    pids = ctx.hex_list("productIds", count, what="product ID")
    names = ctx.text_list("paiCommonNames", count)
    orgs = ctx.text_list("paiOrganizations", count)
    ous = ctx.text_list("paiOrganizationalUnits", count)
    if pids is not None and len(set(pids)) != len(pids):
        raise ContextError("productIds", "product IDs must be distinct (one product-scoped PAI per PID)")
    pais = tuple(
        PaiSettings(
            index=i,
            vid=vid,
            pid=pids[i] if pids else None,
            common_name=names[i] if names else f"Matter PAI {format_hex16(vid)} {i}",
            organization=orgs[i] if orgs else None,
            organizational_unit=ous[i] if ous else None,
        )
        for i in range(count)
    )
    for pai in pais:
        _check_profile(pai.profile, f"paiCommonNames/paiOrganizations/paiOrganizationalUnits[{pai.index}]")
    pai_validity = _validity(ctx, DEFAULT_PAI_VALIDITY_DAYS)
    dac_validity = _dac_validity(ctx, pai_validity)
    topic = ctx.text("alarmTopicArn")
    if topic is not None and not _TOPIC_ARN.fullmatch(topic):
        raise ContextError("alarmTopicArn", f"{topic!r} is not an SNS topic ARN")
    pipeline = PipelineSettings(
        dac_validity=dac_validity,
        issue_rate_limit=ctx.integer("pcaIssueRateLimit", minimum=1, maximum=1000)
        or DEFAULT_PCA_ISSUE_RATE_LIMIT,
        alarm_topic_arn=topic,
    )
    return MatterConfig(
        mode=Mode.PAI,
        paa_arn=paa_arn,
        paa_region=paa_region,
        pais=pais,
        pai_validity=pai_validity,
        pipeline=pipeline,
        account=account,
        region=region,
        dev_defaults=tuple(dev),
        notes=tuple(notes),
        **common,
    )


def _dac_validity(ctx: _Context, pai_validity: CaValidity) -> str:
    """``dacValidityInDays`` through the one validity policy (``matter_pki.validity``), fitted under the PAI."""
    text = ctx.text("dacValidityInDays") or DEFAULT_DAC_VALIDITY
    if text.lower() not in DAC_VALIDITY_WORDS:
        ctx.integer("dacValidityInDays", minimum=1)  # a whole number of days, with the usual message
    try:
        policy = ValidityPolicy.parse(text)
    except MatterPkiError as e:
        raise ContextError("dacValidityInDays", e.message) from e
    end = None if pai_validity.end_date is None else datetime.strptime(pai_validity.end_date, "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    problem = policy.fits_under(ca_days=pai_validity.days, ca_end=end)
    if problem is not None:
        raise ContextError("dacValidityInDays", problem)
    return str(policy)


def _validity(ctx: _Context, default_days: int) -> CaValidity:
    end = ctx.text("validityEndDate")
    days = ctx.integer("validityInDays", minimum=1)
    if end is not None:
        if not _END_DATE.fullmatch(end):
            raise ContextError("validityEndDate", f"must be YYYYMMDDHHMMSS (UTC), got {end!r}")
        try:
            datetime.strptime(end, "%Y%m%d%H%M%S")
        except ValueError as e:
            raise ContextError("validityEndDate", f"{end!r} is not a calendar date and time") from e
        return CaValidity(end_date=end)  # overrides validityInDays, as in the sample
    return CaValidity(days=days or default_days)


def _parse_arn(arn: str, key: str) -> tuple[str, str, str]:
    match = _PCA_ARN.fullmatch(arn)
    if match is None:
        raise ContextError(
            key,
            f"{arn!r} is not a Private CA ARN (arn:aws:acm-pca:<region>:<account>:certificate-authority/<uuid>)",
        )
    return match["partition"], match["region"], match["account"]


def _check_profile(build: Callable[[], object], key: str) -> None:
    try:
        build()
    except ProfileError as e:
        raise ContextError(key, e.message) from e


class _Context:
    """Typed reads of context values given as strings (``-c``) or JSON values (cdk.json)."""

    def __init__(self, values: Mapping[str, object]) -> None:
        self._values = values

    def present(self, key: str) -> bool:
        value = self._values.get(key)
        return value is not None and str(value).strip() != ""

    def text(self, key: str) -> str | None:
        value = self._values.get(key)
        if value is None:
            return None
        if not isinstance(value, str | int):
            raise ContextError(key, f"expected a string, got {type(value).__name__}")
        text = str(value).strip()
        return text or None

    def flag(self, key: str) -> bool:
        value = self._values.get(key)
        if isinstance(value, bool):
            return value
        text = "" if value is None else str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ContextError(key, f"expected 1 or 0, got {value!r}")

    def integer(self, key: str, *, minimum: int, maximum: int | None = None) -> int | None:
        text = self.text(key)
        if text is None:
            return None
        if not re.fullmatch(r"\d+", text):
            raise ContextError(key, f"expected a whole number, got {text!r}")
        number = int(text)
        if number < minimum or (maximum is not None and number > maximum):
            bound = f"{minimum}..{maximum}" if maximum is not None else f">= {minimum}"
            raise ContextError(key, f"must be {bound}, got {number}")
        return number

    def hex16(self, key: str, *, what: str) -> int | None:
        text = self.text(key)
        return None if text is None else _hex16(text, key, what)

    def items(self, key: str, count: int) -> list[str] | None:
        value = self._values.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, str) and value.strip().startswith("["):
            value = json.loads(value)
        raw = [str(v) for v in value] if isinstance(value, list) else str(value).split(",")
        items = [v.strip() for v in raw]
        if any(not v for v in items):
            raise ContextError(key, f"empty entry in {value!r} (comma-separated, one per PAI)")
        if len(items) != count:
            raise ContextError(
                key, f"expected {count} comma-separated values (generatePaiCnt={count}), got {len(items)}"
            )
        return items

    def hex_list(self, key: str, count: int, *, what: str) -> list[int] | None:
        items = self.items(key, count)
        return None if items is None else [_hex16(item, key, what) for item in items]

    def text_list(self, key: str, count: int) -> list[str] | None:
        return self.items(key, count)


def _hex16(text: str, key: str, what: str) -> int:
    if not _HEX4.fullmatch(text):
        raise ContextError(key, f"{what} must be exactly 4 hex digits (e.g. FFF1), got {text!r}")
    check = check_vid if what == "vendor ID" else check_pid
    try:
        return check(int(text, 16))  # the local CA's rule: 0000 reserved, test VIDs noted
    except ProfileError as e:
        raise ContextError(key, e.message) from e


#: Every context key the app reads (sample-compatible names first).
CONTEXT_KEYS = (
    "generatePaa",
    "generatePaiCnt",
    "stackNamePrefix",
    "crlBucketName",
    "crlDistribution",
    "vendorId",
    "validityInDays",
    "validityEndDate",
    "paaCommonName",
    "paaOrganization",
    "paaOU",
    "paaOrganizationalUnit",
    "paaArn",
    "paaRegion",
    "productIds",
    "paiCommonNames",
    "paiOrganizations",
    "paiOrganizationalUnits",
    "dacValidityInDays",
    "pcaIssueRateLimit",
    "auditLockMode",
    "alarmTopicArn",
    "delegatedCrlSigner",
)


def feature_flags(cdk_json: Path) -> dict[str, object]:
    """cdk.json's context, so ``python app.py`` and tests synthesize like ``cdk synth``."""
    return dict(json.loads(cdk_json.read_text(encoding="utf-8")).get("context", {}))

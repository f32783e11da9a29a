"""Validate CloudTrail log files with their digest files, as ``aws cloudtrail validate-logs`` does.

Per the CloudTrail User Guide ("CloudTrail digest file structure", "Custom implementations of
CloudTrail log file integrity validation"):

- digests live at ``<prefix>/AWSLogs/[<org id>/]<account>/CloudTrail-Digest/<region>/<y>/<m>/<d>/
  <account>_CloudTrail-Digest_<region>_<trail>_<home region>_<YYYYMMDDTHHMMSSZ>.json.gz``;
- a digest is gzipped JSON; its signature is hex in the S3 object metadata ``signature`` with
  ``signature-algorithm`` ``SHA256withRSA`` (RSASSA-PKCS1-v1_5 with SHA-256), over the string
  ``digestEndTime \\n digestS3Bucket/digestS3Object \\n hex(SHA-256(uncompressed digest)) \\n
  previousDigestSignature`` (``null`` for a starting digest);
- each digest names the previous one (``previousDigestS3Bucket/Object``) with its hash
  (``previousDigestHashValue``, SHA-256 of the uncompressed previous digest) and signature;
- each ``logFiles[].hashValue`` is the SHA-256 of the log file's uncompressed content;
- public keys come from ``ListPublicKeys`` (DER PKCS#1 ``Value`` and ``Fingerprint``) of the
  region the digest was delivered from.

Digests are walked newest first along the chain. A referenced digest that is absent is a gap in
the chain (``trail.digest_missing``); a digest the chain skips over is reported as unchained.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from matter_pki.aws_errors import reader_error
from matter_pki.errors import InputError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

SIGNATURE_ALGORITHM = "SHA256withRSA"
DIGEST_MARK = "/CloudTrail-Digest/"
_NAME_RE = re.compile(r"(?P<chain>.+)_(?P<ts>\d{8}T\d{6}Z)(?P<backfill>_backfill)?\.json\.gz")
REQUIRED_FIELDS = (
    "digestStartTime",
    "digestEndTime",
    "digestS3Bucket",
    "digestS3Object",
    "digestPublicKeyFingerprint",
    "previousDigestSignature",
    "logFiles",
)


# -- pure helpers ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, order=True)
class DigestKey:
    """Where a digest is, parsed from its S3 key (ordered by end timestamp)."""

    ts: str
    key: str
    chain: str
    region: str
    backfill: bool

    @property
    def end(self) -> datetime:
        """The digest end time from the file name."""
        return datetime.strptime(self.ts, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def parse_digest_key(key: str) -> DigestKey | None:
    """Parse a digest object key; None when it is not a CloudTrail digest."""
    if DIGEST_MARK not in key:
        return None
    folder, _, name = key.rpartition("/")
    match = _NAME_RE.fullmatch(name)
    if not match:
        return None
    region = key.split(DIGEST_MARK, 1)[1].split("/", 1)[0]
    base = key.split(DIGEST_MARK, 1)[0]
    return DigestKey(match["ts"], key, f"{base}{DIGEST_MARK}{region}/{match['chain']}", region, bool(match["backfill"]))


def data_to_sign(digest: Mapping[str, Any], uncompressed: bytes) -> bytes:
    """The string CloudTrail signs for a digest ("Recreate the data signing string")."""
    previous = digest.get("previousDigestSignature")
    return (
        f"{digest['digestEndTime']}\n{digest['digestS3Bucket']}/{digest['digestS3Object']}\n"
        f"{hashlib.sha256(uncompressed).hexdigest()}\n{'null' if previous is None else previous}"
    ).encode()


def load_rsa_public_key(data: bytes) -> rsa.RSAPublicKey:
    """An RSA public key from PEM, DER (SubjectPublicKeyInfo or PKCS#1), or base64 of that DER."""
    text = data.strip()
    try:
        if text.startswith(b"-----"):
            key = serialization.load_pem_public_key(text)
        else:
            try:
                key = serialization.load_der_public_key(data)
            except ValueError:
                key = serialization.load_der_public_key(base64.b64decode(text, validate=True))
    except ValueError as e:
        raise InputError("input.public_key", f"not an RSA public key (PEM/DER): {e}") from e
    if not isinstance(key, rsa.RSAPublicKey):
        raise InputError("input.public_key", "CloudTrail digest keys are RSA; this key is not")
    return key


def verify_rsa(key: rsa.RSAPublicKey, data: bytes, signature_hex: str) -> bool:
    """True when ``signature_hex`` is a SHA256withRSA (PKCS#1 v1.5) signature of ``data``."""
    try:
        key.verify(bytes.fromhex(signature_hex), data, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


# -- public keys ----------------------------------------------------------------------------------
class KeySource(Protocol):
    """Candidate public keys for a digest signed in ``region`` with key ``fingerprint``."""

    def lookup(self, region: str, fingerprint: str, start: datetime, end: datetime) -> list[rsa.RSAPublicKey]: ...  # noqa: D102


@dataclass(frozen=True, slots=True)
class StaticKeys:
    """Keys given as files: fingerprints are not known, so every key is tried."""

    keys: tuple[rsa.RSAPublicKey, ...]

    @classmethod
    def from_bytes(cls, blobs: Iterable[bytes]) -> StaticKeys:
        """Load PEM/DER keys."""
        return cls(tuple(load_rsa_public_key(b) for b in blobs))

    def lookup(self, region: str, fingerprint: str, start: datetime, end: datetime) -> list[rsa.RSAPublicKey]:
        """Every key."""
        return list(self.keys)


class CloudTrailClient(Protocol):
    """The CloudTrail call used here."""

    def list_public_keys(self, **kwargs: Any) -> Mapping[str, Any]: ...  # noqa: D102


class CloudTrailKeys:
    """Keys from ``ListPublicKeys`` in the digest's region, matched by fingerprint."""

    def __init__(self, client_for_region: Callable[[str], CloudTrailClient]) -> None:
        self._client_for_region = client_for_region
        self._cache: dict[tuple[str, datetime, datetime], dict[str, rsa.RSAPublicKey]] = {}

    def lookup(self, region: str, fingerprint: str, start: datetime, end: datetime) -> list[rsa.RSAPublicKey]:
        """The key with this fingerprint, if CloudTrail lists it for the time range."""
        cache_key = (region, start, end)
        if cache_key not in self._cache:
            self._cache[cache_key] = self._fetch(region, start, end)
        found = self._cache[cache_key].get(fingerprint)
        return [found] if found else []

    def _fetch(self, region: str, start: datetime, end: datetime) -> dict[str, rsa.RSAPublicKey]:
        client = self._client_for_region(region)
        keys: dict[str, rsa.RSAPublicKey] = {}
        kwargs: dict[str, Any] = {"StartTime": start, "EndTime": end}
        while True:
            page = _aws("cloudtrail", client.list_public_keys, **kwargs)
            for item in page.get("PublicKeyList", []):
                value = item["Value"]
                keys[str(item["Fingerprint"])] = load_rsa_public_key(value if isinstance(value, bytes) else value.encode())
            token = page.get("NextToken")
            if not token:
                return keys
            kwargs["NextToken"] = token


# -- the walk -------------------------------------------------------------------------------------
class S3Client(Protocol):
    """The S3 calls used here."""

    def get_object(self, **kwargs: Any) -> Mapping[str, Any]: ...  # noqa: D102

    def get_paginator(self, operation_name: str) -> Any: ...  # noqa: D102


@dataclass(frozen=True, slots=True)
class TrailEntry:
    """One file checked (or one gap noticed)."""

    kind: str  # digest | log | gap
    bucket: str
    key: str
    valid: bool
    code: str = ""
    reason: str = ""

    @property
    def url(self) -> str:
        """``s3://bucket/key``."""
        return f"s3://{self.bucket}/{self.key}"

    def line(self) -> str:
        """The aws-cli style status line."""
        if self.kind == "gap":
            return f"Gap\t{self.url}\t{self.reason}"
        status = "valid" if self.valid else f"INVALID: {self.reason}"
        return f"{'Digest' if self.kind == 'digest' else 'Log'} file\t{self.url}\t{status}"

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {"kind": self.kind, "url": self.url, "valid": self.valid, "code": self.code or None, "reason": self.reason or None}


@dataclass(slots=True)
class TrailReport:
    """Every digest and log file checked."""

    entries: list[TrailEntry] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when at least one digest was found and nothing is invalid."""
        return any(e.kind == "digest" for e in self.entries) and all(e.valid for e in self.entries)

    def count(self, kind: str, valid: bool) -> int:
        """How many entries of ``kind`` are (in)valid."""
        return sum(1 for e in self.entries if e.kind == kind and e.valid is valid)

    def problems(self) -> list[TrailEntry]:
        """The invalid entries."""
        return [e for e in self.entries if not e.valid]


@dataclass(frozen=True, slots=True)
class _Expect:
    signature: str | None
    hash: str | None
    newer: str


class _Walker:
    def __init__(self, s3: S3Client, bucket: str, keys: KeySource, start: datetime, end: datetime) -> None:
        self.s3, self.bucket, self.keys, self.start, self.end = s3, bucket, keys, start, end
        self.report = TrailReport()

    def add(self, kind: str, bucket: str, key: str, code: str = "", reason: str = "") -> None:
        self.report.entries.append(TrailEntry(kind, bucket, key, not code or code == "trail.gap", code, reason))

    def chain(self, digests: list[DigestKey]) -> None:
        """Walk one trail's chain newest first; every listed digest is checked once."""
        listed = {d.key: d for d in digests}
        newest_first = sorted(digests, reverse=True)
        visited: set[str] = set()
        current: DigestKey | None = None
        bucket = self.bucket
        expect: _Expect | None = None
        while True:
            if current is None:
                current = next((d for d in newest_first if d.key not in visited), None)
                if current is None:
                    return
                bucket, expect = self.bucket, None
            visited.add(current.key)
            digest = self.digest(bucket, current, expect)
            if digest is None:
                current = None
                continue
            prev_bucket, prev_key = digest.get("previousDigestS3Bucket"), digest.get("previousDigestS3Object")
            if not prev_key or not prev_bucket:
                older = [d for d in newest_first if d.key not in visited and d.ts < current.ts]
                if older:
                    self.add("gap", bucket, current.key, "trail.gap",
                             f"starting digest: no digests (logging or validation off) between {older[0].ts} and this one")
                current = None
                continue
            prev = parse_digest_key(str(prev_key)) or DigestKey("", str(prev_key), "", current.region, False)
            for skipped in newest_first:
                if prev.ts and skipped.key not in visited and prev.ts < skipped.ts < current.ts:
                    visited.add(skipped.key)
                    self.add("digest", self.bucket, skipped.key, "trail.digest_unchained",
                             f"not referenced by the digest chain ({current.key} points to {prev.key})")
            expect = _Expect(digest.get("previousDigestSignature"), digest.get("previousDigestHashValue"), current.key)
            bucket, current = str(prev_bucket), listed.get(str(prev_key), prev)
            if current.key in visited:
                self.add("digest", bucket, current.key, "trail.digest_loop", f"referenced again by {expect.newer}")
                current = None

    def digest(self, bucket: str, where: DigestKey, expect: _Expect | None) -> dict[str, Any] | None:
        """Check one digest; returns its JSON when valid (then its log files are checked too)."""
        key = where.key
        obj = self.get(bucket, key)
        if obj is None:
            by = f" (referenced by {expect.newer})" if expect else ""
            self.add("digest", bucket, key, "trail.digest_missing", f"not found{by}: a digest is missing from the chain")
            return None
        raw, metadata = obj["Body"].read(), obj.get("Metadata") or {}
        try:
            uncompressed = gzip.decompress(raw)
            digest = json.loads(uncompressed)
        except (OSError, EOFError, zlib.error, ValueError):
            self.add("digest", bucket, key, "trail.digest_invalid", "invalid format (not gzipped JSON)")
            return None
        if not isinstance(digest, dict) or any(f not in digest for f in REQUIRED_FIELDS):
            self.add("digest", bucket, key, "trail.digest_invalid", "invalid format (required fields missing)")
            return None
        if digest["digestS3Bucket"] != bucket or digest["digestS3Object"] != key:
            self.add("digest", bucket, key, "trail.digest_invalid", "has been moved from its original location")
            return None
        if expect and expect.hash and hashlib.sha256(uncompressed).hexdigest() != expect.hash.lower():
            self.add("digest", bucket, key, "trail.digest_tampered",
                     f"content does not match previousDigestHashValue in {expect.newer} (digest modified)")
            return None
        signature, algorithm = metadata.get("signature"), metadata.get("signature-algorithm")
        if not signature:
            self.add("digest", bucket, key, "trail.signature_invalid", "no signature in the object metadata")
            return None
        if algorithm != SIGNATURE_ALGORITHM or digest.get("digestSignatureAlgorithm", SIGNATURE_ALGORITHM) != SIGNATURE_ALGORITHM:
            self.add("digest", bucket, key, "trail.signature_invalid", f"unsupported signature algorithm {algorithm!r}")
            return None
        if expect and expect.signature and expect.signature != signature:
            self.add("digest", bucket, key, "trail.digest_tampered",
                     f"signature differs from previousDigestSignature in {expect.newer}")
            return None
        fingerprint = str(digest["digestPublicKeyFingerprint"])
        candidates = self.keys.lookup(where.region, fingerprint, self.start, self.end)
        if not candidates:
            self.add("digest", bucket, key, "trail.public_key_missing",
                     f"public key not found in region {where.region} for fingerprint {fingerprint}")
            return None
        data = data_to_sign(digest, uncompressed)
        if not any(verify_rsa(k, data, str(signature)) for k in candidates):
            self.add("digest", bucket, key, "trail.signature_invalid", "signature verification failed")
            return None
        self.add("digest", bucket, key)
        for log in digest["logFiles"] or []:
            self.log(log)
        return digest

    def log(self, log: Mapping[str, Any]) -> None:
        """Check one log file against the hash its digest recorded."""
        bucket, key = str(log.get("s3Bucket")), str(log.get("s3Object"))
        if str(log.get("hashAlgorithm", "SHA-256")).upper() != "SHA-256":
            self.add("log", bucket, key, "trail.log_invalid", f"unsupported hash algorithm {log.get('hashAlgorithm')!r}")
            return
        obj = self.get(bucket, key)
        if obj is None:
            self.add("log", bucket, key, "trail.log_missing", "not found")
            return
        try:
            content = gzip.decompress(obj["Body"].read())
        except (OSError, EOFError, zlib.error):
            self.add("log", bucket, key, "trail.log_invalid", "invalid format (not gzip)")
            return
        if hashlib.sha256(content).hexdigest() != str(log.get("hashValue", "")).lower():
            self.add("log", bucket, key, "trail.log_tampered", "hash value doesn't match")
            return
        self.add("log", bucket, key)

    def get(self, bucket: str, key: str) -> Mapping[str, Any] | None:
        """``GetObject``; None when the object does not exist."""
        from botocore.exceptions import ClientError

        try:
            return _aws("s3", self.s3.get_object, Bucket=bucket, Key=key, _raise_client_error=True)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return None
            raise reader_error(e, service="s3") from e


def list_digests(s3: S3Client, bucket: str, prefix: str) -> list[DigestKey]:
    """Every digest object under ``prefix``."""
    from botocore.exceptions import BotoCoreError, ClientError

    found = []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                parsed = parse_digest_key(obj["Key"])
                if parsed:
                    found.append(parsed)
    except (ClientError, BotoCoreError) as e:
        raise reader_error(e, service="s3") from e
    return found


def verify_trail(s3: S3Client, *, bucket: str, prefix: str, keys: KeySource, region: str | None = None) -> TrailReport:
    """Validate every digest under ``s3://bucket/prefix`` (one region or all) and the log files they list."""
    norm = prefix.strip("/")
    digests = [d for d in list_digests(s3, bucket, f"{norm}/" if norm else "") if region is None or d.region == region]
    if not digests:
        return TrailReport()
    start = min(d.end for d in digests) - timedelta(hours=1)
    end = max(d.end for d in digests)
    walker = _Walker(s3, bucket, keys, start, end)
    chains: dict[str, list[DigestKey]] = {}
    for d in digests:
        if not d.backfill:
            chains.setdefault(d.chain, []).append(d)
    for name in sorted(chains):
        walker.chain(chains[name])
    for d in sorted(digests):
        if d.backfill:
            # Backfill digests list late log files; they are signed like any digest but are not chained.
            walker.digest(bucket, d, None)
    return walker.report


def _aws(service: str, fn: Callable[..., Mapping[str, Any]], _raise_client_error: bool = False, **kwargs: Any) -> Mapping[str, Any]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return fn(**kwargs)
    except ClientError as e:
        if _raise_client_error:
            raise
        raise reader_error(e, service=service) from e
    except BotoCoreError as e:
        raise reader_error(e, service=service) from e

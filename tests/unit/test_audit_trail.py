"""``matter-pki audit verify-trail``: CloudTrail digest validation on digests the test writes and signs
the way the CloudTrail User Guide documents (gzip JSON, hex SHA256withRSA signature in S3 metadata)."""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.stub import ANY, Stubber
from click.testing import CliRunner
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from moto import mock_aws

from matter_pki.audit.trail import (
    CloudTrailKeys,
    StaticKeys,
    data_to_sign,
    load_rsa_public_key,
    parse_digest_key,
    verify_trail,
)
from matter_pki.cli import audit as cli_audit
from matter_pki.cli import main

if TYPE_CHECKING:
    from pathlib import Path

ACCOUNT, REGION, TRAIL, BUCKET, PREFIX = "111122223333", "us-east-1", "matter-trail", "matter-cloudtrail", "org"
T0 = datetime(2026, 6, 1, 10, 1, 31, tzinfo=UTC)


@pytest.fixture(scope="module")
def ct_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


def pkcs1_der(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)


def fingerprint(key: rsa.RSAPrivateKey) -> str:
    return hashlib.md5(pkcs1_der(key)).hexdigest()  # an opaque id, as CloudTrail's is to clients


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class Trail:
    """Delivers log files and hourly digest files into (moto) S3 like CloudTrail does."""

    def __init__(self, s3, key: rsa.RSAPrivateKey, region: str = REGION) -> None:
        self.s3, self.key, self.region = s3, key, region
        self.previous: dict[str, str] | None = None
        self.end: datetime | None = None
        self.digests: list[str] = []
        self.logs: list[str] = []

    def digest_key(self, end: datetime, suffix: str = "") -> str:
        return (f"{PREFIX}/AWSLogs/{ACCOUNT}/CloudTrail-Digest/{self.region}/{end:%Y/%m/%d}/"
                f"{ACCOUNT}_CloudTrail-Digest_{self.region}_{TRAIL}_{REGION}_{end:%Y%m%dT%H%M%SZ}{suffix}.json.gz")

    def log(self, when: datetime, n: int) -> tuple[str, bytes]:
        key = (f"{PREFIX}/AWSLogs/{ACCOUNT}/CloudTrail/{self.region}/{when:%Y/%m/%d}/"
               f"{ACCOUNT}_CloudTrail_{self.region}_{when:%Y%m%dT%H%MZ}_{n:04d}.json.gz")
        content = json.dumps({"Records": [{"eventSource": "acm-pca.amazonaws.com", "eventName": "IssueCertificate",
                                           "eventTime": iso(when), "n": n}]}).encode()
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=gzip.compress(content))
        self.logs.append(key)
        return key, content

    def hour(self, logs: int = 2, *, restart: bool = False, backfill: bool = False) -> str:
        """One digest covering the next hour (after a 5-hour gap and with no previous digest on restart)."""
        if restart or backfill:
            self.previous = None
        end = T0 if self.end is None else self.end + timedelta(hours=6 if restart else 1)
        self.end = end
        key = self.digest_key(end, "_backfill" if backfill else "")
        files = []
        for n in range(logs):
            log_key, content = self.log(end - timedelta(minutes=30 - n), len(self.logs))
            files.append({"s3Bucket": BUCKET, "s3Object": log_key, "hashValue": hashlib.sha256(content).hexdigest(),
                          "hashAlgorithm": "SHA-256", "newestEventTime": iso(end), "oldestEventTime": iso(end)})
        prev = self.previous or {}
        digest = {
            "awsAccountId": ACCOUNT, "digestStartTime": iso(end - timedelta(hours=1)), "digestEndTime": iso(end),
            "digestS3Bucket": BUCKET, "digestS3Object": key, "digestPublicKeyFingerprint": fingerprint(self.key),
            "digestSignatureAlgorithm": "SHA256withRSA", "newestEventTime": iso(end), "oldestEventTime": iso(end),
            "previousDigestS3Bucket": prev.get("bucket"), "previousDigestS3Object": prev.get("key"),
            "previousDigestHashValue": prev.get("hash"), "previousDigestHashAlgorithm": "SHA-256" if prev else None,
            "previousDigestSignature": prev.get("signature"), "logFiles": files,
        }
        body = json.dumps(digest, indent=2).encode()
        # The documented data-signing string, built here independently of matter_pki.audit.trail.
        to_sign = "\n".join([iso(end), f"{BUCKET}/{key}", hashlib.sha256(body).hexdigest(),
                             prev.get("signature") or "null"]).encode()
        signature = self.key.sign(to_sign, padding.PKCS1v15(), hashes.SHA256()).hex()
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=gzip.compress(body),
                           Metadata={"signature": signature, "signature-algorithm": "SHA256withRSA"})
        self.previous = {"bucket": BUCKET, "key": key, "hash": hashlib.sha256(body).hexdigest(), "signature": signature}
        self.digests.append(key)
        return key


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture
def trail(s3, ct_key) -> Trail:
    """Three hourly digests (a starting one, then two chained), two log files each."""
    t = Trail(s3, ct_key)
    for _ in range(3):
        t.hour()
    return t


def keys_of(ct_key: rsa.RSAPrivateKey) -> StaticKeys:
    return StaticKeys.from_bytes([pkcs1_der(ct_key)])


def run(s3, keys, region: str | None = None):
    return verify_trail(s3, bucket=BUCKET, prefix=PREFIX, keys=keys, region=region)


def invalid(report) -> list[tuple[str, str]]:
    return [(e.code, e.key.rsplit("/", 1)[-1]) for e in report.problems()]


def name(key: str) -> str:
    return key.rsplit("/", 1)[-1]


# -- pure helpers ---------------------------------------------------------------------------------
def test_data_to_sign_for_a_starting_digest_uses_null() -> None:
    digest = {"digestEndTime": "2015-08-12T04:01:31Z", "digestS3Bucket": "b", "digestS3Object": "k",
              "previousDigestSignature": None}
    assert data_to_sign(digest, b"{}") == (
        b"2015-08-12T04:01:31Z\nb/k\n" + hashlib.sha256(b"{}").hexdigest().encode() + b"\nnull"
    )


def test_parse_digest_key() -> None:
    key = ("p/AWSLogs/111122223333/CloudTrail-Digest/eu-west-1/2026/06/01/"
           "111122223333_CloudTrail-Digest_eu-west-1_my_trail_us-east-1_20260601T100131Z.json.gz")
    parsed = parse_digest_key(key)
    assert parsed is not None and (parsed.region, parsed.ts, parsed.backfill) == ("eu-west-1", "20260601T100131Z", False)
    assert parsed.chain.endswith("/CloudTrail-Digest/eu-west-1/111122223333_CloudTrail-Digest_eu-west-1_my_trail_us-east-1")
    assert parse_digest_key(key.replace(".json.gz", "_backfill.json.gz")).backfill  # type: ignore[union-attr]
    assert parse_digest_key("p/AWSLogs/111122223333/CloudTrail/eu-west-1/2026/06/01/x.json.gz") is None


def test_public_keys_load_from_pem_spki_and_pkcs1_der(ct_key) -> None:
    pub = ct_key.public_key()
    for blob in (pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
                 pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo),
                 pkcs1_der(ct_key)):
        assert load_rsa_public_key(blob).public_numbers() == pub.public_numbers()


# -- intact ---------------------------------------------------------------------------------------
def test_intact_trail_validates(s3, trail, ct_key) -> None:
    report = run(s3, keys_of(ct_key))
    assert report.ok, invalid(report)
    assert (report.count("digest", True), report.count("log", True)) == (3, 6)


def test_public_keys_from_cloudtrail_list_public_keys(s3, trail, ct_key) -> None:
    # GIVEN ListPublicKeys answers in two pages; the second has the digest's key (DER PKCS#1 + fingerprint)
    ct = boto3.client("cloudtrail", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    other = rsa.generate_private_key(65537, 2048)
    with Stubber(ct) as stub:
        stub.add_response("list_public_keys", {"PublicKeyList": [
            {"Value": pkcs1_der(other), "Fingerprint": fingerprint(other)}], "NextToken": "n2"},
            {"StartTime": ANY, "EndTime": ANY})
        stub.add_response("list_public_keys", {"PublicKeyList": [
            {"Value": pkcs1_der(ct_key), "Fingerprint": fingerprint(ct_key)}]},
            {"StartTime": ANY, "EndTime": ANY, "NextToken": "n2"})
        regions: list[str] = []
        report = run(s3, CloudTrailKeys(lambda r: regions.append(r) or ct))
        stub.assert_no_pending_responses()
    # THEN keys are fetched once for the region and every digest verifies
    assert report.ok, invalid(report)
    assert regions == [REGION]


def test_unknown_fingerprint_is_reported(s3, trail) -> None:
    ct = boto3.client("cloudtrail", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(ct) as stub:
        stub.add_response("list_public_keys", {"PublicKeyList": []}, {"StartTime": ANY, "EndTime": ANY})
        report = run(s3, CloudTrailKeys(lambda _r: ct))
    assert {code for code, _ in invalid(report)} == {"trail.public_key_missing"}


# -- tampering ------------------------------------------------------------------------------------
def test_missing_digest_is_a_gap_in_the_chain(s3, trail, ct_key) -> None:
    # GIVEN the middle digest deleted
    s3.delete_object(Bucket=BUCKET, Key=trail.digests[1])
    report = run(s3, keys_of(ct_key))
    # THEN it is reported missing (referenced by the newest), and the others still validate
    assert invalid(report) == [("trail.digest_missing", name(trail.digests[1]))]
    assert f"referenced by {trail.digests[2]}" in report.problems()[0].reason
    assert report.count("digest", True) == 2 and not report.ok


def test_missing_log_file(s3, trail, ct_key) -> None:
    s3.delete_object(Bucket=BUCKET, Key=trail.logs[3])
    assert invalid(run(s3, keys_of(ct_key))) == [("trail.log_missing", name(trail.logs[3]))]


def test_tampered_log_file(s3, trail, ct_key) -> None:
    # GIVEN a log file re-written with one event changed
    content = gzip.decompress(s3.get_object(Bucket=BUCKET, Key=trail.logs[0])["Body"].read())
    s3.put_object(Bucket=BUCKET, Key=trail.logs[0], Body=gzip.compress(content.replace(b"IssueCertificate", b"GetCertificate")))
    report = run(s3, keys_of(ct_key))
    assert invalid(report) == [("trail.log_tampered", name(trail.logs[0]))]
    assert report.problems()[0].line().endswith("INVALID: hash value doesn't match")


def test_recompressed_log_with_same_content_is_still_valid(s3, trail, ct_key) -> None:
    # The documented hash is over the uncompressed content, so a different gzip encoding is not tampering.
    content = gzip.decompress(s3.get_object(Bucket=BUCKET, Key=trail.logs[0])["Body"].read())
    s3.put_object(Bucket=BUCKET, Key=trail.logs[0], Body=gzip.compress(content, compresslevel=1, mtime=0))
    assert run(s3, keys_of(ct_key)).ok


def rewrite_digest(s3, key: str, edit) -> None:
    obj = s3.get_object(Bucket=BUCKET, Key=key)
    digest = json.loads(gzip.decompress(obj["Body"].read()))
    edit(digest)
    s3.put_object(Bucket=BUCKET, Key=key, Body=gzip.compress(json.dumps(digest, indent=2).encode()), Metadata=obj["Metadata"])


def test_tampered_digest_in_the_chain(s3, trail, ct_key) -> None:
    # GIVEN a log file tampered AND its hash edited into the (middle) digest to hide it
    def hide(digest: dict) -> None:
        digest["logFiles"][0]["hashValue"] = "0" * 64
    rewrite_digest(s3, trail.digests[1], hide)
    report = run(s3, keys_of(ct_key))
    # THEN the digest no longer matches the hash recorded by the next digest
    assert invalid(report) == [("trail.digest_tampered", name(trail.digests[1]))]


def test_tampered_newest_digest_fails_its_signature(s3, trail, ct_key) -> None:
    def drop_log(digest: dict) -> None:
        digest["logFiles"].pop()
    rewrite_digest(s3, trail.digests[2], drop_log)
    assert invalid(run(s3, keys_of(ct_key))) == [("trail.signature_invalid", name(trail.digests[2]))]


def test_bad_signature_metadata(s3, trail, ct_key) -> None:
    obj = s3.get_object(Bucket=BUCKET, Key=trail.digests[2])
    bad = obj["Metadata"]["signature"][:-2] + ("00" if not obj["Metadata"]["signature"].endswith("00") else "11")
    s3.put_object(Bucket=BUCKET, Key=trail.digests[2], Body=obj["Body"].read(),
                  Metadata={"signature": bad, "signature-algorithm": "SHA256withRSA"})
    report = run(s3, keys_of(ct_key))
    assert invalid(report) == [("trail.signature_invalid", name(trail.digests[2]))]
    assert report.problems()[0].line().endswith("INVALID: signature verification failed")


def test_wrong_public_key(s3, trail) -> None:
    report = run(s3, StaticKeys.from_bytes([pkcs1_der(rsa.generate_private_key(65537, 2048))]))
    assert {code for code, _ in invalid(report)} == {"trail.signature_invalid"}


def test_digest_moved_from_its_location(s3, trail, ct_key) -> None:
    # GIVEN the newest digest copied to a later name (as if delivered then) and the original deleted
    obj = s3.get_object(Bucket=BUCKET, Key=trail.digests[2])
    moved = trail.digest_key(T0 + timedelta(hours=3))
    s3.put_object(Bucket=BUCKET, Key=moved, Body=obj["Body"].read(), Metadata=obj["Metadata"])
    s3.delete_object(Bucket=BUCKET, Key=trail.digests[2])
    report = run(s3, keys_of(ct_key))
    assert ("trail.digest_invalid", name(moved)) in invalid(report)


def test_restarted_trail_is_a_gap_not_a_failure(s3, trail, ct_key) -> None:
    # GIVEN logging stopped for a few hours, then a new starting digest and one more
    trail.hour(restart=True)
    trail.hour()
    report = run(s3, keys_of(ct_key))
    assert report.ok, invalid(report)
    gaps = [e for e in report.entries if e.kind == "gap"]
    assert len(gaps) == 1 and gaps[0].key == trail.digests[3]


def test_digest_inserted_outside_the_chain(s3, trail, ct_key) -> None:
    # GIVEN a digest-looking file dropped between two chained digests (the chain skips it)
    obj = s3.get_object(Bucket=BUCKET, Key=trail.digests[1])
    extra = trail.digest_key(T0 + timedelta(hours=1, minutes=30))
    s3.put_object(Bucket=BUCKET, Key=extra, Body=obj["Body"].read(), Metadata=obj["Metadata"])
    report = run(s3, keys_of(ct_key))
    assert invalid(report) == [("trail.digest_unchained", name(extra))]


def test_backfill_digest_is_validated_on_its_own(s3, trail, ct_key) -> None:
    # GIVEN a backfill digest listing a late log file: signed like any digest, not part of the chain
    late = Trail(s3, ct_key)
    late.end = T0
    key = late.hour(logs=1, backfill=True)
    report = run(s3, keys_of(ct_key))
    assert report.ok, invalid(report)
    assert (report.count("digest", True), report.count("log", True)) == (4, 7)
    # WHEN its log file is tampered THEN that is reported like any other
    s3.put_object(Bucket=BUCKET, Key=late.logs[0], Body=gzip.compress(b"{}"))
    assert invalid(run(s3, keys_of(ct_key))) == [("trail.log_tampered", name(late.logs[0]))]
    assert key.endswith("_backfill.json.gz")


def test_region_filter(s3, trail, ct_key) -> None:
    other = Trail(s3, ct_key, region="eu-west-1")
    other.hour()
    assert run(s3, keys_of(ct_key), region="eu-west-1").count("digest", True) == 1
    assert run(s3, keys_of(ct_key)).count("digest", True) == 4


def test_no_digests_is_not_ok(s3, ct_key) -> None:
    assert not run(s3, keys_of(ct_key)).ok


# -- CLI ------------------------------------------------------------------------------------------
@pytest.fixture
def cli(s3, monkeypatch: pytest.MonkeyPatch, ct_key, tmp_path: Path):
    monkeypatch.setattr(cli_audit, "_client", lambda service, region, profile=None: s3 if service == "s3" else pytest.fail(service))
    pem = tmp_path / "cloudtrail.pem"
    pem.write_bytes(ct_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))

    def invoke(*extra: str):
        return CliRunner().invoke(main, ["audit", "verify-trail", "--bucket", BUCKET, "--prefix", PREFIX,
                                         "--public-key-file", str(pem), *extra])
    return invoke


def test_cli_valid_trail_exits_0(cli, trail) -> None:
    result = cli("--verbose")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-2:] == ["3/3 digest files valid", "6/6 log files valid"]
    assert f"Digest file\ts3://{BUCKET}/{trail.digests[0]}\tvalid" in result.output


def test_cli_reports_each_problem_and_exits_1(cli, s3, trail) -> None:
    s3.delete_object(Bucket=BUCKET, Key=trail.digests[1])
    s3.delete_object(Bucket=BUCKET, Key=trail.logs[5])
    result = cli()
    assert result.exit_code == 1
    assert f"Digest file\ts3://{BUCKET}/{trail.digests[1]}\tINVALID: not found" in result.output
    assert f"Log file\ts3://{BUCKET}/{trail.logs[5]}\tINVALID: not found" in result.output
    assert "2/3 digest files valid, 1 INVALID" in result.output


def test_cli_json(cli, trail) -> None:
    data = json.loads(cli("--format", "json").output)
    assert data["ok"] is True and len(data["entries"]) == 9

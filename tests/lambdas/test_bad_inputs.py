"""A corpus of bad uploads, through real (moto) S3 notifications, SQS and the handler.

A request at fault becomes one coded ``.err``, and nothing else may happen: no ``.pem``, no other
object, no failed SQS record, and no certificate issued on the (MODEL) Private CA, except where the CA
itself misbehaves: there a certificate exists on the CA, is never published, and is revoked.

A set-up at fault (an unknown or disabled CA, a quota, a validity policy that does not fit under the
PAI, a CA refusing our arguments) is never answered with ``.err`` (that would block the CSR after the
fix): the record fails, SQS redelivers it, and after the redrive policy's receives it is in the DLQ.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from moto import mock_aws

from matter_pki import pipeline
from tests.lambdas.conftest import BUCKET, Harness, make_harness
from tests.lambdas.fakes import (
    compressed_point_csr,
    csr_with,
    ed25519_csr,
    forged_signature_csr,
    p256_csr,
    rsa_csr,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

UNKNOWN = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/00000000-0000-0000-0000-000000000000"
OTHER_REGION = (
    "arn:aws:acm-pca:eu-west-1:123456789012:certificate-authority/00000000-0000-0000-0000-000000000001"
)


@dataclass(frozen=True)
class Case:
    """One bad upload: its key (``{pai}`` etc. filled in), its body, the expected ``.err`` code."""

    key: str
    body: Callable[[], bytes]
    code: str
    issued_on_ca: bool = False  # the CA issued a certificate that was not released


def _cert_pem() -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding

    from matter_pki.profiles import PaaProfile, Validity

    key = ec.generate_private_key(ec.SECP256R1())
    from datetime import UTC, datetime

    builder = PaaProfile(vid=0xFFF1, validity=Validity.no_expiry(datetime(2025, 1, 1, tzinfo=UTC))).builder(
        key.public_key(), serial=9
    )
    return builder.sign(key, hashes.SHA256()).public_bytes(Encoding.PEM)


GOOD = p256_csr
CASES: dict[str, Case] = {
    # -- the key ---------------------------------------------------------------------------------
    "dot-dot segment": Case("{pai}/8000/../x.csr", GOOD, "key.segment"),
    "empty segment": Case("{pai}//8000/x.csr", GOOD, "key.segment"),
    "missing PID segment": Case("{pai}/x.csr", GOOD, "key.shape"),
    "extra segment": Case("{pai}/8000/batch1/x.csr", GOOD, "key.shape"),
    "no CA at all": Case("x.csr", GOOD, "key.shape"),
    "non-hex PID": Case("{pai}/80G0/x.csr", GOOD, "key.pid"),
    "3-digit PID": Case("{pai}/800/x.csr", GOOD, "key.pid"),
    "0x PID": Case("{pai}/0x80/x.csr", GOOD, "key.pid"),
    "hidden name": Case("{pai}/8000/.x.csr", GOOD, "key.name"),
    "URL-encoded space in name": Case("{pai}/8000/my device.csr", GOOD, "key.name"),
    "URL-encoded plus in name": Case("{pai}/8000/a+b.csr", GOOD, "key.name"),
    "URL-encoded UTF-8 name": Case("{pai}/8000/caf\u00e9.csr", GOOD, "key.name"),
    "CA not an ARN": Case(
        "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/not-a-uuid/8000/x.csr", GOOD, "key.ca"
    ),
    "PAI in another region": Case(OTHER_REGION + "/8000/x.csr", GOOD, "key.ca_not_allowed"),
    "PID not allowed by the product-scoped PAI": Case("{pai}/8001/x.csr", GOOD, "profile.pid_not_allowed"),
    # -- the CSR ---------------------------------------------------------------------------------
    "empty file": Case("{pai}/8000/x.csr", lambda: b"", "csr.empty"),
    "whitespace only": Case("{pai}/8000/x.csr", lambda: b" \n\t\n", "csr.empty"),
    "garbage": Case("{pai}/8000/x.csr", lambda: os.urandom(300).replace(b"-", b"_"), "csr.malformed"),
    "truncated DER": Case("{pai}/8000/x.csr", lambda: p256_csr(der=True)[:-20], "csr.malformed"),
    "truncated PEM": Case("{pai}/8000/x.csr", lambda: p256_csr()[:-40], "csr.pem_invalid"),
    "a certificate, not a CSR": Case("{pai}/8000/x.csr", _cert_pem, "csr.pem_invalid"),
    "RSA key": Case("{pai}/8000/x.csr", rsa_csr, "csr.key_not_ec"),
    "Ed25519 key": Case("{pai}/8000/x.csr", ed25519_csr, "csr.key_not_ec"),
    "P-384 key": Case(
        "{pai}/8000/x.csr",
        lambda: csr_with(ec.generate_private_key(ec.SECP384R1()), hashes.SHA256()),
        "csr.key_curve",
    ),
    "secp256k1 key": Case(
        "{pai}/8000/x.csr",
        lambda: csr_with(ec.generate_private_key(ec.SECP256K1()), hashes.SHA256()),
        "csr.key_curve",
    ),
    "compressed point": Case("{pai}/8000/x.csr", compressed_point_csr, "csr.key_point"),
    "ecdsa-with-SHA384": Case(
        "{pai}/8000/x.csr",
        lambda: csr_with(ec.generate_private_key(ec.SECP256R1()), hashes.SHA384()),
        "csr.signature_algorithm",
    ),
    "signature by another key": Case("{pai}/8000/x.csr", forged_signature_csr, "csr.signature_invalid"),
    "two CSRs in one PEM": Case("{pai}/8000/x.csr", lambda: p256_csr() + p256_csr(), "csr.multiple"),
    "two CSRs in one DER": Case(
        "{pai}/8000/x.csr", lambda: p256_csr(der=True) + p256_csr(der=True), "csr.multiple"
    ),
    "huge file (5 KiB)": Case("{pai}/8000/x.csr", lambda: p256_csr() + b"\n" * 5000, "csr.too_large"),
    "huge file (8 MiB)": Case("{pai}/8000/x.csr", lambda: b"0" * (8 << 20), "csr.too_large"),
    "CSR requesting a subjectAltName (Private CA would copy it)": Case(
        "{pai}/8000/x.csr", lambda: san_csr(), "csr.subject_alt_name"
    ),
    # -- the CA's answer -------------------------------------------------------------------------
    "CSR the CA calls malformed": Case(
        "{pai}/8000/x.csr", lambda: p256_csr(cn="malformed-for-pca"), "backend.malformed_csr"
    ),
    "CA dropping the keyUsage passthrough": Case(
        "{drop_ku}/8000/x.csr", GOOD, "issue.extension_mismatch", issued_on_ca=True
    ),
    "CA certifying another key": Case("{swap}/8000/x.csr", GOOD, "issue.not_as_requested", issued_on_ca=True),
    "CA returning a DAC over 600 bytes": Case("{big}/8000/x.csr", GOOD, "issue.der_too_large", issued_on_ca=True),
}

#: Set-up problems: the record goes to the DLQ (after the redrive policy's receives), no .err.
OPERATOR_CASES: dict[str, Case] = {
    "unknown PAI ARN (no allow-list)": Case(UNKNOWN + "/8000/x.csr", GOOD, "backend.ca_not_found"),
    "the PAA used as a PAI": Case("{paa}/8000/x.csr", GOOD, "backend.ca_not_pai"),
    "disabled PAI": Case("{disabled}/8000/x.csr", GOOD, "backend.ca_state"),
    "CA refusing the arguments": Case("{invalid_args}/8000/x.csr", GOOD, "backend.invalid_args"),
    "certificates-per-CA quota reached": Case("{quota}/8000/x.csr", GOOD, "backend.quota_exceeded"),
}


@dataclass
class Corpus:
    """The bucket after every case was uploaded (each in its own folder) and the queue drained."""

    harness: Harness
    keys: dict[str, str]
    before_drain: set[str]


def san_csr() -> bytes:
    """A P-256 CSR with an extensionRequest holding a subjectAltName."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    key = ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName("device.example")]), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(Encoding.PEM)


def _big(request: dict[str, Any]) -> dict[str, Any]:
    """A CA adding three 200-character OU attributes to the subject (903-byte class DAC)."""
    subject = request["ApiPassthrough"]["Subject"]
    extra = [{"ObjectIdentifier": "2.5.4.11", "Value": c * 200} for c in "abc"]
    return {
        **request,
        "ApiPassthrough": {**request["ApiPassthrough"], "Subject": {"CustomAttributes": [*subject["CustomAttributes"], *extra]}},
    }


def _drop_ku(request: dict[str, Any]) -> dict[str, Any]:
    return {
        **request,
        "ApiPassthrough": {**request["ApiPassthrough"], "Extensions": {"CustomExtensions": []}},
    }


@pytest.fixture(scope="module")
def corpus() -> Iterator[Corpus]:
    """Upload every case once (module scope: one drain serves all the assertions)."""
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    with pytest.MonkeyPatch.context() as mp, mock_aws():
        for name, value in env.items():
            mp.setenv(name, value)
        mp.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
        h = make_harness()
        paa = h.pca.add_paa()
        cas = {
            "paa": paa,
            "pai": h.pca.add_pai(paa, pid=0x8000),
            "disabled": h.pca.add_pai(paa, pid=0x8000),
            "invalid_args": h.pca.add_pai(paa, pid=0x8000),
            "drop_ku": h.pca.add_pai(paa, pid=0x8000),
            "swap": h.pca.add_pai(paa),
            "big": h.pca.add_pai(paa, pid=0x8000),
            "quota": h.pca.add_pai(paa, pid=0x8000),
        }
        h.pca.cas[cas["disabled"]].state = "DISABLED"
        h.pca.fake_ca(cas["invalid_args"]).refuse_with = "InvalidArgsException"
        h.pca.fake_ca(cas["drop_ku"]).mutate = _drop_ku
        h.pca.fake_ca(cas["swap"]).swap_key = True
        h.pca.fake_ca(cas["big"]).mutate = _big
        h.pca.cas[cas["quota"]].issued = h.pca.certificates_per_ca
        keys: dict[str, str] = {}
        for i, (name, case) in enumerate(sorted({**CASES, **OPERATOR_CASES}.items())):
            key = case.key.format(**cas)
            if key.endswith("/x.csr"):  # one name per case, so results cannot collide
                key = key[: -len("x.csr")] + f"x{i}.csr"
            keys[name] = key
            h.upload(key, case.body())
        before = h.keys()
        h.drain()
        yield Corpus(h, keys, before)
    pipeline.reset()


def _err_key(csr_key: str) -> str:
    return csr_key[: -len(".csr")] + ".err"


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_upload_becomes_one_coded_err(corpus: Corpus, name: str) -> None:
    # GIVEN one bad upload WHEN the queue was drained
    key = corpus.keys[name]
    h = corpus.harness
    # THEN exactly one .err sits next to it, with the expected code, the key and the Lambda request id
    record = h.err(_err_key(key))
    assert record["code"] == CASES[name].code, record
    assert record["csr_key"] == key
    assert record["request_id"]
    assert _err_key(key) not in corpus.before_drain
    # AND no DAC was published for it
    assert key[: -len(".csr")] + ".pem" not in h.keys()
    if CASES[name].issued_on_ca:
        # the CA did issue it: the .err names it, and it was revoked on the CA
        assert record["certificate_serial"] and record["certificate_arn"] and record["revoked"] is True
        assert int(record["certificate_serial"], 16) in h.pca.revoked_serials()


@pytest.mark.parametrize("name", sorted(OPERATOR_CASES))
def test_a_setup_problem_goes_to_the_dlq_without_an_err(corpus: Corpus, name: str) -> None:
    # GIVEN one upload whose answer depends on the operator (CA state, quota, arguments, ARN)
    key = corpus.keys[name]
    h = corpus.harness
    # WHEN the queue was drained THEN no answer blames the CSR, and its message reached the DLQ
    assert _err_key(key) not in h.keys() and key[: -len(".csr")] + ".pem" not in h.keys()
    dead = [json.loads(m["Body"])["Records"][0]["s3"]["object"]["key"] for m in h.dead_letters]
    assert sum(unquote_plus(k) == key for k in dead) == 1


def test_the_corpus_is_large_enough() -> None:
    # GIVEN the corpus THEN it has at least 30 distinct bad inputs, covering keys, CSRs and CA answers
    assert len(CASES) >= 30
    assert len({c.code for c in CASES.values()}) >= 20


def test_nothing_else_happened(corpus: Corpus) -> None:
    # GIVEN the drained corpus
    h = corpus.harness
    # THEN the bucket holds the uploads and one .err for each request at fault, and nothing else
    refused = {corpus.keys[n] for n in CASES}
    assert h.keys() == set(corpus.keys.values()) | {_err_key(k) for k in refused}
    # AND only the set-up problems failed their records (refusals are answers, not failures)
    assert len(h.dead_letters) == len(OPERATOR_CASES)
    # AND the CA issued certificates only where the CA itself misbehaved (never published, all revoked)
    assert len(h.pca.certificates) == sum(c.issued_on_ca for c in CASES.values())
    assert sorted(h.pca.revoked_serials()) == sorted(h.pca.issued_serials())
    # AND no .err was written twice (each has a single version in the versioned bucket)
    versions = h.s3.list_object_versions(Bucket=BUCKET)["Versions"]
    err_versions = [v["Key"] for v in versions if v["Key"].endswith(".err")]
    assert len(err_versions) == len(set(err_versions)) == len(CASES)


def test_uploading_the_same_bad_csr_again_changes_nothing(corpus: Corpus) -> None:
    # GIVEN a refused CSR uploaded again under the same key (a duplicate)
    h = corpus.harness
    key = corpus.keys["RSA key"]
    before = h.read(_err_key(key))
    h.upload(key, rsa_csr())
    # WHEN the queue is drained
    h.drain()
    # THEN the first answer stands: no second .err version, no DAC
    assert h.read(_err_key(key)) == before
    versions = h.s3.list_object_versions(Bucket=BUCKET, Prefix=_err_key(key))["Versions"]
    assert len(versions) == 1
    assert json.loads(before)["code"] == "csr.key_not_ec"

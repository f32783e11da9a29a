"""Test doubles for the AWS side: the Private CA MODEL behind a real botocore client, S3 fault injection.

``ModelPrivateCa`` answers ``acm-pca`` calls made through a real boto3 client at the HTTP level: botocore
validates every request against the service model (ParamValidationError), serialises it to the JSON
wire form, and parses the JSON answers and errors (``{"__type": ...}``) into the real exception classes;
its retry mode retries what it retries on real AWS (throttling, 5xx), with the same IdempotencyToken.
Only the HTTP exchange is replaced (a ``before-send`` handler, as moto does). The service behaviour
and the certificates come from ``matter_pki.testing.pca_model``: a MODEL of the documented behaviour,
NOT AWS. It proves our requests describe Matter-compliant certificates; only a real account proves
Private CA honours them.
"""

from __future__ import annotations

import base64
import io
import json
import random
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from matter_pki import der
from matter_pki.profiles import NO_EXPIRY, PaaProfile, PaiProfile, Validity
from matter_pki.testing.pca_model import ModelCa, PcaError, PrivateCaModel, issue_certificate

if TYPE_CHECKING:
    from collections.abc import Callable

REGION = "us-east-1"
ACCOUNT = "123456789012"
TRANSIENT_FAULTS = (
    ("ThrottlingException", 400),
    ("InternalFailure", 500),
    ("ServiceUnavailable", 503),
)
S3_FAULTS = (("SlowDown", 503), ("InternalError", 500), ("RequestTimeout", 400))
#: What the test clients retry (the Lambda uses "adaptive"; its client-side rate limiter would pace tests).
TEST_RETRIES = Config(retries={"mode": "standard", "max_attempts": 4})


class _Raw(io.BytesIO):
    """The raw body botocore reads (``stream()``)."""

    def stream(self, **_: Any) -> Any:
        yield self.getvalue()


def http(status: int, body: bytes, headers: dict[str, str] | None = None) -> AWSResponse:
    """An HTTP answer botocore parses with the service's real protocol parser."""
    hdrs = {"x-amzn-requestid": uuid.uuid4().hex, "x-amz-request-id": uuid.uuid4().hex, **(headers or {})}
    return AWSResponse("https://fake.invalid/", status, hdrs, _Raw(body))


def json_answer(status: int, body: dict[str, Any] | None = None, code: str | None = None, message: str = "") -> AWSResponse:
    """A JSON-protocol answer (Private CA): a body, or an error ``{"__type": code, "message": ...}``."""
    payload = {"__type": code, "message": message or code} if code else (body or {})
    return http(status, json.dumps(payload).encode(), {"Content-Type": "application/x-amz-json-1.1"})


def xml_error(status: int, code: str, message: str = "") -> AWSResponse:
    """A REST-XML error answer (S3)."""
    body = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{message or code}</Message></Error>"
    return http(status, body.encode(), {"Content-Type": "application/xml"})


def response(
    status: int, body: dict[str, Any] | None = None, code: str | None = None, message: str = ""
) -> tuple[AWSResponse, dict[str, Any]]:
    """A ``before-call`` answer (parsed form, bypasses botocore's retries): success body or an error."""
    meta = {"RequestId": uuid.uuid4().hex, "HTTPStatusCode": status, "HTTPHeaders": {}, "RetryAttempts": 0}
    parsed: dict[str, Any] = dict(body or {})
    if code is not None:
        parsed = {"Error": {"Code": code, "Message": message or code}}
    parsed["ResponseMetadata"] = meta
    return AWSResponse("https://fake.invalid/", status, {}, None), parsed


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(Encoding.PEM).decode()


@dataclass
class FakeCa(ModelCa):
    """One CA of the fake Private CA, with knobs that make it misbehave."""

    #: Applied to the IssueCertificate request before the model runs (simulate a misbehaving CA).
    mutate: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    #: Error code IssueCertificate always answers with (e.g. InvalidArgsException).
    refuse_with: str | None = None
    #: Sign some other key instead of the CSR's (a CA returning the wrong certificate).
    swap_key: bool = False


@dataclass
class ModelPrivateCa(PrivateCaModel):
    """The Private CA model behind real botocore clients, with fault injection for tests."""

    fault_rate: float = 0.0
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    requests: list[dict[str, Any]] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)
    #: Called with (operation, params) after the model answered and before the answer is sent
    #: (a test can "kill" the caller there by raising).
    on_answer: Callable[[str, dict[str, Any]], None] | None = None
    _flock: threading.Lock = field(default_factory=threading.Lock)

    # -- set-up ---------------------------------------------------------------------------------
    def _arn(self) -> str:
        return f"arn:aws:acm-pca:{REGION}:{ACCOUNT}:certificate-authority/{uuid.UUID(int=self.rng.getrandbits(128))}"

    def _serial(self) -> int:
        return self.rng.getrandbits(127) | (1 << 126)

    def _csr(self, key: ec.EllipticCurvePrivateKey) -> bytes:
        return (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([]))
            .sign(key, hashes.SHA256())
            .public_bytes(Encoding.PEM)
        )

    def add_paa(
        self, *, vid: int | None = 0xFFF1, start: datetime | None = None, arn: str | None = None
    ) -> str:
        """A root CA made by the model of ``RootCACertificate_APIPassthrough/V1``."""
        begin = start or self.now() - timedelta(days=30)
        key = ec.generate_private_key(ec.SECP256R1())
        profile = PaaProfile.for_private_ca(
            vid=vid, common_name="Fake PCA PAA", validity=Validity.no_expiry(begin)
        )
        request = {**profile.pca_issue_parts(), "Csr": self._csr(key)}
        cert = issue_certificate(
            dict(request), ca_key=key, ca_certificate=None, serial=self._serial(), now=begin
        )
        arn = arn or self._arn()
        self.cas[arn] = FakeCa(arn, key, cert, [])
        return arn

    def add_pai(
        self,
        paa_arn: str,
        *,
        vid: int = 0xFFF1,
        pid: int | None = None,
        not_after: datetime | None = None,
        start: datetime | None = None,
        arn: str | None = None,
    ) -> str:
        """A subordinate CA made by the model of ``BlankSubordinateCACertificate_PathLen0_APIPassthrough/V1``."""
        paa = self.cas[paa_arn]
        begin = start or self.now() - timedelta(days=10)
        key = ec.generate_private_key(ec.SECP256R1())
        validity = Validity(not_before=begin, not_after=not_after or NO_EXPIRY)
        profile = PaiProfile(vid=vid, pid=pid, common_name="Fake PCA PAI", validity=validity)
        request = {**profile.pca_issue_parts(), "Csr": self._csr(key)}
        cert = issue_certificate(
            dict(request), ca_key=paa.key, ca_certificate=paa.cert, serial=self._serial(), now=begin
        )
        arn = arn or self._arn()
        assert paa.cert is not None
        self.cas[arn] = FakeCa(arn, key, cert, [paa.cert, *paa.chain])
        return arn

    def fake_ca(self, arn: str) -> FakeCa:
        """The CA with its knobs."""
        ca = self.cas[arn]
        assert isinstance(ca, FakeCa)
        return ca

    def client(self, region: str = REGION, config: Config | None = None) -> Any:
        """A real boto3 ``acm-pca`` client answered by this model over (fake) HTTP."""
        client = boto3.client(
            "acm-pca", region_name=region, aws_access_key_id="testing", aws_secret_access_key="testing",
            config=config or TEST_RETRIES,
        )  # fmt: skip
        client.meta.events.register_first("before-send.acm-pca", self._answer)
        return client

    # -- dispatch -------------------------------------------------------------------------------
    def _answer(self, request: Any, **_: Any) -> AWSResponse:
        target = request.headers.get("X-Amz-Target", "")
        name = (target.decode() if isinstance(target, bytes) else str(target)).split(".")[-1]
        params = json.loads(request.body or b"{}")
        with self._flock:
            self.calls[name] += 1
            fault = self.rng.random() < self.fault_rate
            before = fault and not (name == "IssueCertificate" and self.rng.random() < 0.5)
        if before:
            code, status = self.rng.choice(TRANSIENT_FAULTS)
            with self._flock:
                self.faults[name] += 1
            return json_answer(status, code=code)
        try:
            answer = getattr(self, f"_op_{name}")(params)
        except PcaError as e:
            return json_answer(e.status, code=e.code, message=e.message)
        if self.on_answer is not None:
            self.on_answer(name, params)
        if fault:  # the request was carried out, but the answer is lost
            with self._flock:
                self.faults[name + ":after-commit"] += 1
            return json_answer(500, code="InternalFailure")
        return json_answer(200, answer)

    def _op_GetCertificateAuthorityCertificate(self, params: dict[str, Any]) -> dict[str, Any]:
        ca = self._ca(params["CertificateAuthorityArn"])
        if ca.cert is None:
            raise PcaError("InvalidStateException", "The certificate authority has no certificate")
        body: dict[str, Any] = {"Certificate": _pem(ca.cert)}
        if ca.chain:
            body["CertificateChain"] = "".join(_pem(c) for c in ca.chain)
        return body

    def _op_IssueCertificate(self, params: dict[str, Any]) -> dict[str, Any]:
        params = {**params, "Csr": base64.b64decode(params["Csr"])}
        ca = self.cas.get(params["CertificateAuthorityArn"])
        if isinstance(ca, FakeCa) and ca.refuse_with:
            raise PcaError(ca.refuse_with, "refused by the fake CA")
        csr = x509.load_pem_x509_csr(params["Csr"])
        if any(a.value == "malformed-for-pca" for a in csr.subject):
            raise PcaError("MalformedCSRException", "The CSR is malformed")
        with self._flock:
            self.requests.append(params)

        def misbehave(request: dict[str, Any]) -> dict[str, Any]:
            out = dict(request)
            if isinstance(ca, FakeCa) and ca.mutate:
                out = ca.mutate(out)
            if isinstance(ca, FakeCa) and ca.swap_key:
                out["Csr"] = self._csr(ec.generate_private_key(ec.SECP256R1()))
            return out

        with self._flock:
            serial = self._serial()
        return {"CertificateArn": self.issue(params, serial=serial, key_for_csr=misbehave)}

    def _op_GetCertificate(self, params: dict[str, Any]) -> dict[str, Any]:
        cert, chain = self.get(params["CertificateAuthorityArn"], params["CertificateArn"])
        return {
            "Certificate": _pem(x509.load_der_x509_certificate(cert)),
            "CertificateChain": "".join(_pem(c) for c in chain),
        }

    def _op_RevokeCertificate(self, params: dict[str, Any]) -> dict[str, Any]:
        self.revoke(params["CertificateAuthorityArn"], params["CertificateSerial"], params["RevocationReason"])
        return {}

    def _op_CreateCertificateAuthority(self, params: dict[str, Any]) -> dict[str, Any]:
        config = params["CertificateAuthorityConfiguration"]
        if config["KeyAlgorithm"] != "EC_prime256v1" or params["CertificateAuthorityType"] != "SUBORDINATE":
            raise PcaError("InvalidArgsException", "fake covers EC_prime256v1 subordinates")
        arn = self._arn()
        self.cas[arn] = FakeCa(
            arn, ec.generate_private_key(ec.SECP256R1()), None, [], state="PENDING_CERTIFICATE",
            subject=list(config["Subject"]["CustomAttributes"]),
        )  # fmt: skip
        return {"CertificateAuthorityArn": arn}

    def _op_GetCertificateAuthorityCsr(self, params: dict[str, Any]) -> dict[str, Any]:
        ca = self._ca(params["CertificateAuthorityArn"])
        name = x509.Name(
            [x509.NameAttribute(x509.ObjectIdentifier(a["ObjectIdentifier"]), a["Value"]) for a in ca.subject]
        )
        csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(ca.key, hashes.SHA256())
        return {"Csr": csr.public_bytes(Encoding.PEM).decode()}

    def _op_ImportCertificateAuthorityCertificate(self, params: dict[str, Any]) -> dict[str, Any]:
        ca = self._ca(params["CertificateAuthorityArn"])
        cert = x509.load_pem_x509_certificate(base64.b64decode(params["Certificate"]))
        if cert.public_key() != ca.key.public_key():
            raise PcaError("CertificateMismatchException", "certificate does not match the CA key")
        ca.cert, ca.chain, ca.state = (
            cert,
            x509.load_pem_x509_certificates(base64.b64decode(params["CertificateChain"])),
            "ACTIVE",
        )
        return {}


def inject_s3_faults(
    client: Any, *, rate: float, rng: random.Random, counter: Counter[str] | None = None
) -> Counter[str]:
    """Make ``rate`` of the client's S3 HTTP attempts fail (SlowDown, 500, RequestTimeout) before moto sees them.

    At ``before-send``: botocore's retry mode sees and retries them as it would on AWS.
    """
    faults = counter if counter is not None else Counter()
    lock = threading.Lock()

    def maybe_fail(request: Any, **_: Any) -> AWSResponse | None:
        with lock:
            if rng.random() >= rate:
                return None
            code, status = rng.choice(S3_FAULTS)
            faults[f"{request.method} {code}"] += 1
        return xml_error(status, code)

    client.meta.events.register_first("before-send.s3", maybe_fail)
    return faults


# -- CSRs -----------------------------------------------------------------------------------------
def p256_csr(
    key: ec.EllipticCurvePrivateKey | None = None, *, cn: str = "device", der: bool = False
) -> bytes:
    """A good device CSR (P-256, ecdsa-with-SHA256); the subject is ignored by the signer."""
    k = key or ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, cn)]))
        .sign(k, hashes.SHA256())
    )
    return csr.public_bytes(Encoding.DER if der else Encoding.PEM)


def csr_with(key: Any, algorithm: Any = None, cn: str = "device") -> bytes:
    """A CSR with any key type and hash (for refusal cases)."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, cn)])
    )
    return builder.sign(key, algorithm).public_bytes(Encoding.PEM)


def rsa_csr() -> bytes:
    """RSA-2048 CSR."""
    return csr_with(rsa.generate_private_key(public_exponent=65537, key_size=2048), hashes.SHA256())


def ed25519_csr() -> bytes:
    """Ed25519 CSR."""
    return csr_with(ed25519.Ed25519PrivateKey.generate(), None)


def forged_signature_csr() -> bytes:
    """A P-256 CSR signed by a key other than the one it carries (no proof of possession)."""
    good = p256_csr(der=True)
    info, alg, _sig = der.children(good, der.read_tlv(good))
    other = ec.generate_private_key(ec.SECP256R1()).sign(info.encoded(good), ec.ECDSA(hashes.SHA256()))
    body = info.encoded(good) + alg.encoded(good) + der.encode_tlv(der.BIT_STRING, b"\0" + other)
    return der.encode_tlv(der.SEQUENCE, body)


def compressed_point_csr() -> bytes:
    """A P-256 CSR whose key is a compressed point (chip refuses compressed keys)."""
    k = ec.generate_private_key(ec.SECP256R1())
    point = k.public_key().public_bytes(Encoding.X962, PublicFormat.CompressedPoint)
    alg = der.encode_tlv(
        der.SEQUENCE, der.encode_oid("1.2.840.10045.2.1") + der.encode_oid("1.2.840.10045.3.1.7")
    )
    spki = der.encode_tlv(der.SEQUENCE, alg + der.encode_tlv(der.BIT_STRING, b"\0" + point))
    info = der.encode_tlv(
        der.SEQUENCE,
        der.encode_integer(0) + der.encode_tlv(der.SEQUENCE, b"") + spki + der.encode_tlv(0xA0, b""),
    )
    sig = k.sign(info, ec.ECDSA(hashes.SHA256()))
    ecdsa_sha256 = der.encode_tlv(der.SEQUENCE, der.encode_oid("1.2.840.10045.4.3.2"))
    return der.encode_tlv(der.SEQUENCE, info + ecdsa_sha256 + der.encode_tlv(der.BIT_STRING, b"\0" + sig))


def s3_event(
    bucket: str,
    key: str,
    *,
    size: int = 300,
    version: str | None = None,
    event_name: str = "ObjectCreated:Put",
) -> dict[str, Any]:
    """An S3 event notification body as S3 sends it (key URL-encoded with ``quote_plus``)."""
    from urllib.parse import quote_plus

    obj: dict[str, Any] = {
        "key": quote_plus(key),
        "size": size,
        "eTag": "0123456789abcdef0123456789abcdef",
        "sequencer": "0055AED6DCD90281E5",
    }
    if version:
        obj["versionId"] = version
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": REGION,
                "eventTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "eventName": event_name,
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": obj,
                },
            }
        ]
    }


def sqs_record(body: dict[str, Any] | str, message_id: str | None = None) -> dict[str, Any]:
    """One SQS record of a Lambda event."""
    text = body if isinstance(body, str) else json.dumps(body)
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": "rh",
        "body": text,
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:csr-queue",
        "awsRegion": REGION,
    }

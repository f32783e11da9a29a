"""Test doubles for the AWS side: a MODEL of Private CA behind a real botocore client, S3 fault injection.

``ModelPrivateCa`` answers ``acm-pca`` calls made through a real boto3 client: botocore still
validates every request against the service model (ParamValidationError), parses errors into the
real exception classes and runs the real ``certificate_issued`` waiter; only the HTTP exchange is
replaced (a ``before-call`` handler, the mechanism ``botocore.stub.Stubber`` uses). Certificates come
from ``matter_pki.testing.pca_model.issue_certificate``: a MODEL of the documented template
behaviour, NOT AWS. It proves our requests describe Matter-compliant certificates; only a real
account proves Private CA honours them.
"""

from __future__ import annotations

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
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from matter_pki import der
from matter_pki.profiles import NO_EXPIRY, PaaProfile, PaiProfile, Validity
from matter_pki.testing.pca_model import issue_certificate

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


def response(
    status: int, body: dict[str, Any] | None = None, code: str | None = None, message: str = ""
) -> tuple[AWSResponse, dict[str, Any]]:
    """A botocore ``before-call`` answer: success body, or an error botocore raises as ClientError."""
    meta = {"RequestId": uuid.uuid4().hex, "HTTPStatusCode": status, "HTTPHeaders": {}, "RetryAttempts": 0}
    parsed: dict[str, Any] = dict(body or {})
    if code is not None:
        parsed = {"Error": {"Code": code, "Message": message or code}}
    parsed["ResponseMetadata"] = meta
    return AWSResponse("https://fake.invalid/", status, {}, None), parsed


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(Encoding.PEM).decode()


@dataclass
class FakeCa:
    """One CA of the fake Private CA."""

    arn: str
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate | None
    chain: list[x509.Certificate]
    state: str = "ACTIVE"
    subject: list[dict[str, str]] = field(default_factory=list)
    #: Applied to the IssueCertificate request before the model runs (simulate a misbehaving CA).
    mutate: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    #: Error code IssueCertificate always answers with (e.g. InvalidArgsException).
    refuse_with: str | None = None
    #: Sign some other key instead of the CSR's (a CA returning the wrong certificate).
    swap_key: bool = False


@dataclass
class _Issued:
    ca: str
    der: bytes
    polls_left: int


@dataclass
class ModelPrivateCa:
    """A fake ``acm-pca`` service: CAs, issued certificates, the five-minute IdempotencyToken window."""

    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    fault_rate: float = 0.0
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    pending_polls: int = 0
    token_window: timedelta = timedelta(minutes=5)
    cas: dict[str, FakeCa] = field(default_factory=dict)
    certificates: dict[str, _Issued] = field(default_factory=dict)
    tokens: dict[tuple[str, str], tuple[str, datetime]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

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
        self.cas[arn] = FakeCa(arn, key, cert, [paa.cert, *paa.chain])
        return arn

    def client(self, region: str = REGION) -> Any:
        """A real boto3 ``acm-pca`` client answered by this fake."""
        client = boto3.client(
            "acm-pca", region_name=region, aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        client.meta.events.register("before-parameter-build.acm-pca.*", self._remember)
        client.meta.events.register("before-call.acm-pca.*", self._answer)
        return client

    # -- dispatch -------------------------------------------------------------------------------
    @staticmethod
    def _remember(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["fake_params"] = dict(params)

    def _answer(self, model: Any, context: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        name = model.name
        params = context["fake_params"]
        with self._lock:
            self.calls[name] += 1
            fault = self.rng.random() < self.fault_rate
            if fault and not (name == "IssueCertificate" and self.rng.random() < 0.5):
                code, status = self.rng.choice(TRANSIENT_FAULTS)
                self.faults[name] += 1
                return response(status, code=code)
            answer = getattr(self, f"_op_{name}")(params)
            if fault:  # the certificate was issued, but the answer is lost
                self.faults[name + ":after-commit"] += 1
                return response(500, code="InternalFailure")
            return answer

    def _ca(self, params: dict[str, Any]) -> FakeCa | tuple[AWSResponse, dict[str, Any]]:
        ca = self.cas.get(params["CertificateAuthorityArn"])
        if ca is None:
            return response(
                400, code="ResourceNotFoundException", message="Could not find certificate authority"
            )
        return ca

    def _op_GetCertificateAuthorityCertificate(
        self, params: dict[str, Any]
    ) -> tuple[AWSResponse, dict[str, Any]]:
        ca = self._ca(params)
        if not isinstance(ca, FakeCa):
            return ca
        if ca.cert is None:
            return response(
                400, code="InvalidStateException", message="The certificate authority has no certificate"
            )
        body: dict[str, Any] = {"Certificate": _pem(ca.cert)}
        if ca.chain:
            body["CertificateChain"] = "".join(_pem(c) for c in ca.chain)
        return response(200, body)

    def _op_IssueCertificate(self, params: dict[str, Any]) -> tuple[AWSResponse, dict[str, Any]]:
        ca = self._ca(params)
        if not isinstance(ca, FakeCa):
            return ca
        if ca.state != "ACTIVE" or ca.cert is None:
            return response(
                400, code="InvalidStateException", message=f"The certificate authority is {ca.state}"
            )
        if ca.refuse_with:
            return response(400, code=ca.refuse_with, message="refused by the fake CA")
        csr = x509.load_pem_x509_csr(params["Csr"])
        if any(a.value == "malformed-for-pca" for a in csr.subject):
            return response(400, code="MalformedCSRException", message="The CSR is malformed")
        self.requests.append(params)
        token = params.get("IdempotencyToken")
        now = self.now()
        if token:
            seen = self.tokens.get((ca.arn, token))
            if seen and now - seen[1] < self.token_window:
                return response(200, {"CertificateArn": seen[0]})
        request = dict(params)
        if ca.mutate:
            request = ca.mutate(request)
        if ca.swap_key:
            other = ec.generate_private_key(ec.SECP256R1())
            request["Csr"] = self._csr(other)
        cert = issue_certificate(
            request, ca_key=ca.key, ca_certificate=ca.cert, serial=self._serial(), now=now
        )
        arn = f"{ca.arn}/certificate/{uuid.UUID(int=self.rng.getrandbits(128)).hex}"
        self.certificates[arn] = _Issued(ca.arn, cert.public_bytes(Encoding.DER), self.pending_polls)
        if token:
            self.tokens[(ca.arn, token)] = (arn, now)
        return response(200, {"CertificateArn": arn})

    def _op_GetCertificate(self, params: dict[str, Any]) -> tuple[AWSResponse, dict[str, Any]]:
        issued = self.certificates.get(params["CertificateArn"])
        if issued is None or issued.ca != params["CertificateAuthorityArn"]:
            return response(400, code="ResourceNotFoundException", message="Could not find certificate")
        if issued.polls_left > 0:
            issued.polls_left -= 1
            return response(400, code="RequestInProgressException", message="The request is in progress")
        ca = self.cas[issued.ca]
        assert ca.cert is not None
        cert = x509.load_der_x509_certificate(issued.der)
        return response(
            200,
            {"Certificate": _pem(cert), "CertificateChain": "".join(_pem(c) for c in [ca.cert, *ca.chain])},
        )

    def _op_CreateCertificateAuthority(self, params: dict[str, Any]) -> tuple[AWSResponse, dict[str, Any]]:
        config = params["CertificateAuthorityConfiguration"]
        if config["KeyAlgorithm"] != "EC_prime256v1" or params["CertificateAuthorityType"] != "SUBORDINATE":
            return response(
                400, code="InvalidArgsException", message="fake covers EC_prime256v1 subordinates"
            )
        arn = self._arn()
        self.cas[arn] = FakeCa(
            arn, ec.generate_private_key(ec.SECP256R1()), None, [], state="PENDING_CERTIFICATE",
            subject=list(config["Subject"]["CustomAttributes"]),
        )  # fmt: skip
        return response(200, {"CertificateAuthorityArn": arn})

    def _op_GetCertificateAuthorityCsr(self, params: dict[str, Any]) -> tuple[AWSResponse, dict[str, Any]]:
        ca = self._ca(params)
        if not isinstance(ca, FakeCa):
            return ca
        name = x509.Name(
            [x509.NameAttribute(x509.ObjectIdentifier(a["ObjectIdentifier"]), a["Value"]) for a in ca.subject]
        )
        csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(ca.key, hashes.SHA256())
        return response(200, {"Csr": csr.public_bytes(Encoding.PEM).decode()})

    def _op_ImportCertificateAuthorityCertificate(
        self, params: dict[str, Any]
    ) -> tuple[AWSResponse, dict[str, Any]]:
        ca = self._ca(params)
        if not isinstance(ca, FakeCa):
            return ca
        cert = x509.load_pem_x509_certificate(params["Certificate"])
        if cert.public_key() != ca.key.public_key():
            return response(
                400, code="CertificateMismatchException", message="certificate does not match the CA key"
            )
        ca.cert, ca.chain, ca.state = (
            cert,
            x509.load_pem_x509_certificates(params["CertificateChain"]),
            "ACTIVE",
        )
        return response(200, {})

    # -- views ----------------------------------------------------------------------------------
    def issued_serials(self) -> list[int]:
        """Serials of every certificate the fake issued (published or not)."""
        return [x509.load_der_x509_certificate(i.der).serial_number for i in self.certificates.values()]


def inject_s3_faults(
    client: Any, *, rate: float, rng: random.Random, counter: Counter[str] | None = None
) -> Counter[str]:
    """Make ``rate`` of the client's S3 calls fail transiently (SlowDown, 500, RequestTimeout) before moto sees them."""
    faults = counter if counter is not None else Counter()
    lock = threading.Lock()

    def maybe_fail(model: Any, **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        with lock:
            if rng.random() >= rate:
                return None
            code, status = rng.choice(S3_FAULTS)
            faults[model.name] += 1
        return response(status, code=code)

    client.meta.events.register("before-call.s3.*", maybe_fail)
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

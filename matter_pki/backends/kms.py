"""A P-256 key in AWS KMS behind an ``ec.EllipticCurvePrivateKey`` adapter (like the PKCS#11 one).

The key is an asymmetric KMS key, KeySpec ``ECC_NIST_P256``, KeyUsage ``SIGN_VERIFY``. ``sign`` asks
KMS for an ``ECDSA_SHA_256`` signature (KMS returns it DER-encoded, as cryptography expects), so
``CertificateSigningRequestBuilder.sign`` and ``CertificateRevocationListBuilder.sign`` work as with
a file key. A message of at most 4096 bytes is sent as ``MessageType=RAW`` (KMS hashes it); a larger
one as its SHA-256 with ``MessageType=DIGEST`` (KMS API Reference, Sign: "Message ... up to 4096
bytes. To sign a larger message, provide a message digest"). Every signature is verified with the
public key before it is returned, so a wrong key id or a faulty service response never reaches a CRL.
The private key never leaves KMS; errors are wrapped with the project's AWS error classification.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from matter_pki.backends.signonly import SignOnlyP256Key
from matter_pki.errors import KeyStoreError, MatterPkiError

if TYPE_CHECKING:
    from botocore.client import BaseClient

KEY_SPEC = "ECC_NIST_P256"
SIGNING_ALGORITHM = "ECDSA_SHA_256"
MAX_RAW_MESSAGE = 4096


def _wrap(error: Exception, operation: str, key_id: str) -> MatterPkiError:
    from matter_pki.backends.aws_pca import wrap_aws_error

    return wrap_aws_error(error, operation=operation, kms_key_id=key_id)


class KmsEcPrivateKey(SignOnlyP256Key):
    """An ECC_NIST_P256 SIGN_VERIFY key in KMS; only ``sign`` and ``public_key`` are usable."""

    algorithm_code = "key.kms_algorithm"

    def __init__(self, client: BaseClient, key_id: str) -> None:
        self._client = client
        self._key_id = key_id
        try:
            meta: dict[str, Any] = client.get_public_key(KeyId=key_id)
        except Exception as e:
            raise _wrap(e, "kms:GetPublicKey", key_id) from e
        spec = meta.get("KeySpec") or meta.get("CustomerMasterKeySpec")
        if spec != KEY_SPEC or meta.get("KeyUsage") != "SIGN_VERIFY":
            raise KeyStoreError(
                "key.kms_key_spec", f"KMS key {key_id!r} is {spec}/{meta.get('KeyUsage')}, must be {KEY_SPEC}/SIGN_VERIFY"
            )
        if SIGNING_ALGORITHM not in (meta.get("SigningAlgorithms") or [SIGNING_ALGORITHM]):
            raise KeyStoreError("key.kms_key_spec", f"KMS key {key_id!r} does not offer {SIGNING_ALGORITHM}")
        public = serialization.load_der_public_key(bytes(meta["PublicKey"]))
        if not isinstance(public, ec.EllipticCurvePublicKey) or not isinstance(public.curve, ec.SECP256R1):
            raise KeyStoreError("key.kms_key_spec", f"KMS key {key_id!r} is not a P-256 key")
        self._public = public
        self.key_arn = str(meta.get("KeyId", key_id))

    def __repr__(self) -> str:
        return f"<KmsEcPrivateKey {self._key_id!r}>"

    def sign(self, data: bytes | bytearray | memoryview, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        """ECDSA-with-SHA256 in KMS (RAW up to 4096 bytes, DIGEST above), checked with the public key."""
        if not isinstance(signature_algorithm, ec.ECDSA):
            raise KeyStoreError("key.kms_algorithm", "the KMS key only signs with ECDSA")
        algorithm = signature_algorithm.algorithm
        prehashed = isinstance(algorithm, Prehashed)
        if not (isinstance(algorithm, hashes.SHA256) or (prehashed and algorithm.digest_size == 32)):
            raise KeyStoreError("key.kms_algorithm", "the KMS key signs ECDSA with SHA-256 only")
        message = bytes(data)
        if prehashed and len(message) != 32:
            raise KeyStoreError("key.kms_algorithm", "a prehashed message must be a 32-byte SHA-256 digest")
        if prehashed:
            digest, kind, payload = message, "DIGEST", message
        elif len(message) <= MAX_RAW_MESSAGE:
            digest, kind, payload = hashlib.sha256(message).digest(), "RAW", message
        else:
            digest = hashlib.sha256(message).digest()
            kind, payload = "DIGEST", digest
        try:
            response: dict[str, Any] = self._client.sign(
                KeyId=self._key_id, Message=payload, MessageType=kind, SigningAlgorithm=SIGNING_ALGORITHM
            )
        except Exception as e:
            raise _wrap(e, "kms:Sign", self._key_id) from e
        signature = bytes(response["Signature"])
        try:
            self._public.verify(signature, digest, ec.ECDSA(Prehashed(hashes.SHA256())))
        except InvalidSignature as e:
            raise KeyStoreError(
                "key.kms_signature_invalid", f"KMS returned a signature that does not verify with key {self._key_id!r}"
            ) from e
        return signature

    def public_key(self) -> ec.EllipticCurvePublicKey:
        """The public half (from GetPublicKey)."""
        return self._public

    def describe(self) -> str:
        """``KMS key '<id>'``."""
        return f"KMS key {self._key_id!r}"


__all__ = ["KEY_SPEC", "MAX_RAW_MESSAGE", "SIGNING_ALGORITHM", "KmsEcPrivateKey"]

"""The part every remote-key adapter shares (PKCS#11 token, AWS KMS): P-256, sign-only, never extractable.

A subclass supplies ``sign`` and ``public_key``; the rest of ``ec.EllipticCurvePrivateKey`` refuses
with a coded ``KeyStoreError`` (the key cannot do ECDH or leave its store), so CertificateBuilder,
CertificateSigningRequestBuilder and CertificateRevocationListBuilder work with it as with a file key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

from cryptography.hazmat.primitives.asymmetric import ec

from matter_pki.errors import KeyStoreError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives import serialization


class SignOnlyP256Key(ec.EllipticCurvePrivateKey):
    """Base of P-256 keys held elsewhere: only ``sign`` and ``public_key`` work."""

    #: Error code for a request the key cannot serve (ECDH, another algorithm).
    algorithm_code = "key.algorithm"

    def describe(self) -> str:
        """The key, as messages name it ("token key 'x'", "KMS key 'y'")."""
        return "remote key"

    @property
    def curve(self) -> ec.EllipticCurve:
        """Always P-256."""
        return ec.SECP256R1()

    @property
    def key_size(self) -> int:
        """256."""
        return 256

    def _not_extractable(self) -> NoReturn:
        raise KeyStoreError("key.not_extractable", f"{self.describe()} is not extractable")

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        """Not allowed: attestation keys only sign."""
        raise KeyStoreError(self.algorithm_code, f"the {self.describe().split(' ')[0]} key is sign-only")

    def private_numbers(self) -> ec.EllipticCurvePrivateNumbers:
        """Not available: the key never leaves its store."""
        self._not_extractable()

    def private_bytes(
        self,
        encoding: serialization.Encoding,
        format: serialization.PrivateFormat,
        encryption_algorithm: serialization.KeySerializationEncryption,
    ) -> bytes:
        """Not available: the key never leaves its store."""
        self._not_extractable()

    def __copy__(self) -> SignOnlyP256Key:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> SignOnlyP256Key:
        return self


__all__ = ["SignOnlyP256Key"]

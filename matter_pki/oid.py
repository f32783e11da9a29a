"""Object identifiers used by Matter attestation certificates."""

from __future__ import annotations

from cryptography.x509.oid import ExtensionOID, NameOID, ObjectIdentifier, SignatureAlgorithmOID

__all__ = ["ExtensionOID", "MatterOID", "NameOID", "OpenSSLKnownExtensions", "SignatureAlgorithmOID"]


class MatterOID:
    """Matter DN attribute types (Matter Core spec 6.2.2.2)."""

    VENDOR_ID = ObjectIdentifier("1.3.6.1.4.1.37244.2.1")
    PRODUCT_ID = ObjectIdentifier("1.3.6.1.4.1.37244.2.2")


EC_PUBLIC_KEY = ObjectIdentifier("1.2.840.10045.2.1")
PRIME256V1 = ObjectIdentifier("1.2.840.10045.3.1.7")

# Extensions OpenSSL 3.0 processes itself (v3_purp.c supported_nids); any other critical
# extension makes X509_verify_cert fail with "unhandled critical extension".
OpenSSLKnownExtensions = frozenset(
    {
        ObjectIdentifier("2.16.840.1.113730.1.1"),  # netscape cert type
        ExtensionOID.KEY_USAGE,
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.CERTIFICATE_POLICIES,
        ExtensionOID.EXTENDED_KEY_USAGE,
        ExtensionOID.POLICY_CONSTRAINTS,
        ObjectIdentifier("1.3.6.1.5.5.7.1.14"),  # proxyCertInfo
        ExtensionOID.NAME_CONSTRAINTS,
        ExtensionOID.POLICY_MAPPINGS,
        ExtensionOID.INHIBIT_ANY_POLICY,
        ObjectIdentifier("1.3.6.1.5.5.7.1.7"),  # sbgp-ipAddrBlock
        ObjectIdentifier("1.3.6.1.5.5.7.1.8"),  # sbgp-autonomousSysNum
    }
)

"""Limits and encodings that the DCL, the SDK's revocation-set script and its revocation delegate impose.

Each is defined once here and used by the CRL builders, the DCL payload checks, the revocation-set
dry run and the revocation check.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

#: DCL MsgAddPkiRevocationDistributionPoint field limits (x/pki/types/tx.pb.go validate tags).
MAX_LABEL = 64
MAX_CERT_PEM = 2048
MAX_ISSUER_SKID = 64
MAX_DATA_URL = 256
#: revocationType 1 = RFC 5280 CRL, the only type (x/pki/types/types.go allowedRevocationTypes).
CRL_REVOCATION_TYPE = 1
#: issuerSubjectKeyID: even-length upper-case hex (x/pki/types/types.go issuerKeyRegex).
ISSUER_SKID_RE = re.compile(r"(?:[0-9A-F]{2})+")
#: The revocation delegate copies at most 20 serial octets (kMaxCertificateSerialNumberLength).
MAX_SERIAL_OCTETS = 20
#: ... reads issuer names into a 200-byte buffer (kMaxCertificateDistinguishedNameLength) ...
MAX_ISSUER_NAME = 200
#: ... and decodes the cross-check certificate into 600 bytes (kMax_x509_Certificate_Length).
MAX_CROSS_CHECK_CERT = 600


def data_url_problem(url: object) -> str | None:
    """Why ``url`` cannot be a dataURL / IDP URI (http or https with a host, at most 256 characters), or None.

    Mirrors the DCL's ``http_or_https_url`` validator (utils/validator/validations.go: Go's
    url.ParseRequestURI, a host, scheme http or https) and the ``max=256`` tag.
    """
    if not isinstance(url, str) or not url:
        return "the URL is empty"
    if len(url) > MAX_DATA_URL:
        return f"the URL is {len(url)} characters, over {MAX_DATA_URL}"
    if any(ch.isspace() or ord(ch) < 0x21 or ord(ch) == 0x7F for ch in url):
        return "the URL contains spaces or control characters"
    try:
        parts = urlsplit(url)
    except ValueError as e:
        return f"the URL cannot be parsed: {e}"
    if parts.scheme.lower() not in ("http", "https"):
        return f"the URL scheme is {parts.scheme or 'missing'!r}, must be http or https"
    if not parts.hostname:
        return "the URL has no host"
    return None


def serial_hex(serial: int) -> str:
    """A serial as revocation sets spell it: upper-case hex of the magnitude, even length."""
    text = f"{serial:X}"
    return text if len(text) % 2 == 0 else "0" + text


__all__ = [
    "CRL_REVOCATION_TYPE",
    "ISSUER_SKID_RE",
    "MAX_CERT_PEM",
    "MAX_CROSS_CHECK_CERT",
    "MAX_DATA_URL",
    "MAX_ISSUER_NAME",
    "MAX_ISSUER_SKID",
    "MAX_LABEL",
    "MAX_SERIAL_OCTETS",
    "data_url_problem",
    "serial_hex",
]

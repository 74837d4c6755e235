"""Bundle.signature in JWS form (`sigFormat` application/jose), with the signing certificate in the `x5c` header.

An attached payload must be the Bundle itself (canonicalised as `targetFormat` says) and the signature must
verify over it; a detached signature is verified over the canonical JSON of the Bundle (keys sorted, no
whitespace). When that fails the cause may be a canonicalisation difference rather than the signature, so it
is a warning. Without the `cryptography` package only the payload comparison is made.
"""

from __future__ import annotations

import base64
import binascii
import json
import warnings
from collections.abc import Callable
from typing import Any

import orjson

Report = Callable[[str, str, str, str], None]  # severity, code, message, expression


def check_bundle_signature(bundle: dict[str, Any], expression: str, report: Report) -> None:
    signature = bundle.get("signature")
    if not isinstance(signature, dict) or signature.get("sigFormat") != "application/jose":
        return
    data = signature.get("data")
    if not isinstance(data, str):
        return
    try:
        parts = base64.b64decode(data, validate=False).decode("ascii").split(".")
        header = json.loads(_b64url(parts[0])) if len(parts) == 3 else None
    except (ValueError, UnicodeDecodeError, binascii.Error):
        header = None
    if not isinstance(header, dict):
        report("error", "value", "The signature is not a JWS in compact serialisation", f"{expression}.signature")
        return
    content = _canonical_content(bundle, signature.get("targetFormat"))
    signing_input = parts[0] + "." + parts[1]
    if parts[1]:
        report("warning", "value",
               "The signature has a payload, but the signature should be a detached signature with no payload",
               expression)
        try:
            payload = json.loads(_b64url(parts[1]))
        except ValueError:
            payload = None
        if content is not None and payload != json.loads(_canonical_bytes(content)):
            report("error", "value",
                   "The signature cannot be valid because the content to sign is not the same as the signed content",
                   expression)
        verified = _verify(header, signing_input, parts[2])
        if verified is False:
            report("error", "value", "The signature did not verify against the certificate in its header",
                   expression)
        return
    if content is None:
        return
    detached_input = parts[0] + "." + base64.urlsafe_b64encode(_canonical_bytes(content)).rstrip(b"=").decode()
    if _verify(header, detached_input, parts[2]) is False:
        report("warning", "value",
               "The detached signature could not be verified against the canonical form of the Bundle (the Bundle "
               "may have changed, or it was canonicalised differently)", expression)


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _canonical_content(bundle: dict[str, Any], target_format: Any) -> dict[str, Any] | None:
    """The Bundle as signed: without its signature, and for `#document` also without id and meta. Other
    canonicalisations (`#static`, `#narrative`, ...) are not reproduced here (None)."""
    method = "http://hl7.org/fhir/canonicalization/json"
    if isinstance(target_format, str) and "canonicalization=" in target_format:
        method = target_format.split("canonicalization=", 1)[1].split(";", 1)[0].strip()
    if method == "http://hl7.org/fhir/canonicalization/json":
        dropped = {"signature"}
    elif method == "http://hl7.org/fhir/canonicalization/json#document":
        dropped = {"signature", "id", "meta"}
    else:
        return None
    return {key: value for key, value in bundle.items() if key not in dropped}


def _canonical_bytes(content: dict[str, Any]) -> bytes:
    from conformance.fhirjson import _default

    return orjson.dumps(content, default=_default, option=orjson.OPT_SORT_KEYS)


def _verify(header: dict[str, Any], signing_input: str, signature: str) -> bool | None:
    """True/False when the signature could be checked with the certificate in `x5c`; None when not."""
    chain = header.get("x5c")
    algorithm = header.get("alg")
    if not isinstance(chain, list) or not chain or not isinstance(chain[0], str) or algorithm not in _HASHES:
        return None
    try:
        from cryptography import x509
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
        from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
    except ImportError:
        return None
    try:
        with warnings.catch_warnings():  # certificates with a zero serial (test certificates) still load
            warnings.simplefilter("ignore")
            key = x509.load_der_x509_certificate(base64.b64decode(chain[0])).public_key()
        raw = _b64url(signature)
    except (ValueError, binascii.Error):
        return None
    digest = getattr(hashes, _HASHES[algorithm])()
    try:
        if algorithm.startswith("RS") and isinstance(key, rsa.RSAPublicKey):
            key.verify(raw, signing_input.encode(), padding.PKCS1v15(), digest)
        elif algorithm.startswith("PS") and isinstance(key, rsa.RSAPublicKey):
            key.verify(raw, signing_input.encode(), padding.PSS(padding.MGF1(digest), digest.digest_size), digest)
        elif algorithm.startswith("ES") and isinstance(key, ec.EllipticCurvePublicKey):
            half = len(raw) // 2
            der = encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))
            key.verify(der, signing_input.encode(), ec.ECDSA(digest))
        else:
            return None
    except InvalidSignature:
        return False
    return True


_HASHES = {"RS256": "SHA256", "RS384": "SHA384", "RS512": "SHA512", "PS256": "SHA256", "PS384": "SHA384",
           "PS512": "SHA512", "ES256": "SHA256", "ES384": "SHA384", "ES512": "SHA512"}

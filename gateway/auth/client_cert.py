"""The client certificate of a request and its RFC 8705 thumbprint.

A certificate is taken from exactly two places: the ASGI TLS extension (`scope["extensions"]["tls"]`, set by
servers that terminate TLS themselves and expose the peer chain, e.g. Hypercorn), or — only when configured
and only from a trusted proxy address — a header set by the TLS-terminating proxy. The header is read in the
RFC 9440 form (`Client-Cert: :<base64 DER>:`) or as a URL-encoded PEM (nginx `$ssl_client_escaped_cert`).
A header from any other address is ignored, because anyone can send one."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from gateway.auth.settings import AuthSettings


class CertificateError(ValueError):
    """A certificate was presented but cannot be used."""


def x5t_s256(certificate: x509.Certificate) -> str:
    """base64url (unpadded) SHA-256 of the DER certificate: the `cnf.x5t#S256` value of RFC 8705."""
    digest = hashlib.sha256(certificate.public_bytes(Encoding.DER)).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def load_pem_certificate(pem: str | bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem.encode("ascii") if isinstance(pem, str) else pem)
    except ValueError as error:
        raise CertificateError("not a PEM certificate") from error


def presented_chain(scope: Mapping[str, Any], settings: AuthSettings) -> list[x509.Certificate]:
    """The client certificate chain of this connection, leaf first; empty when none was presented."""
    tls = (scope.get("extensions") or {}).get("tls") or {}
    chain = tls.get("client_cert_chain") or []
    if chain:
        return [load_pem_certificate(pem) for pem in chain]
    if settings.client_cert_header and _from_trusted_proxy(scope, settings.trusted_proxies):
        value = _header(scope, settings.client_cert_header)
        if value:
            leaf = _parse_header_certificate(value)
            chain_value = _header(scope, settings.client_cert_header + "-chain")
            rest = [_parse_header_certificate(part) for part in chain_value.split(",")] if chain_value else []
            return [leaf, *rest]
    return []


def _from_trusted_proxy(scope: Mapping[str, Any], trusted: tuple[str, ...]) -> bool:
    client = scope.get("client")
    if not client:
        return False
    try:
        address = ipaddress.ip_address(client[0])
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(network, strict=False) for network in trusted)


def _header(scope: Mapping[str, Any], name: str) -> str | None:
    wanted = name.lower().encode("latin-1")
    values = [value for key, value in scope.get("headers") or [] if key.lower() == wanted]
    if len(values) > 1:
        raise CertificateError(f"more than one {name} header")
    return values[0].decode("latin-1").strip() if values else None


def _parse_header_certificate(value: str) -> x509.Certificate:
    value = value.strip()
    if value.startswith(":") and value.endswith(":") and len(value) > 2:  # RFC 9440 byte sequence
        try:
            der = base64.b64decode(value[1:-1], validate=True)
            return x509.load_der_x509_certificate(der)
        except ValueError as error:
            raise CertificateError("malformed certificate header") from error
    return load_pem_certificate(unquote(value))

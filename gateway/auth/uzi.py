"""UZI server certificates: who (which URA) a TLS client certificate belongs to.

The UZI register puts the identity in the subjectAltName twice over the generations of its certificates:
- otherName type-id 2.5.5.5, an IA5String `<OID-CA>-<version>-<UZI-nr>-<pastype>-<URA>-<role>-<AGB>`;
- otherName permanentIdentifier (1.3.6.1.5.5.7.8.3, RFC 4043) whose assigner 2.16.528.1.1007.3.3 says the
  identifierValue is a URA.
When both are present they must name the same URA; a certificate that says two things says nothing.

Trust is configuration: the trust anchors decide which CA hierarchy is accepted (the test and production UZI
CAs are told apart by their roots, not by OIDs), and the allowed CA OIDs decide which `<OID-CA>` values
are accepted inside the 2.5.5.5 string."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from gateway.auth.der import (
    IA5_STRING,
    OBJECT_IDENTIFIER,
    UTF8_STRING,
    DerError,
    decode_ia5,
    decode_oid,
    read_sequence,
    read_single,
)
from gateway.auth.settings import AuthSettings

UZI_OTHERNAME_OID = x509.ObjectIdentifier("2.5.5.5")
PERMANENT_IDENTIFIER_OID = x509.ObjectIdentifier("1.3.6.1.5.5.7.8.3")
URA_ASSIGNER_OID = "2.16.528.1.1007.3.3"
SERVER_CARD_TYPE = "S"

_UZI_STRING = re.compile(
    r"^(?P<ca_oid>[0-2](?:\.(?:0|[1-9]\d*))+)-(?P<version>\d+)-(?P<uzi_number>\d{1,12})-(?P<card_type>[ZNMS])"
    r"-(?P<ura>\d{8})-(?P<role>\d{2}\.\d{3})-(?P<agb>\d{8})$"
)


class UziCertificateError(ValueError):
    """The certificate is not an acceptable UZI server certificate; the message says why."""


@dataclass(frozen=True)
class UziIdentity:
    """What the certificate says. Fields other than `ura` come from the 2.5.5.5 string and are None when the
    certificate carries only a permanentIdentifier."""

    ura: str
    ca_oid: str | None = None
    version: str | None = None
    uzi_number: str | None = None
    card_type: str | None = None
    role: str | None = None
    agb: str | None = None


@dataclass(frozen=True)
class UziTrust:
    trust_anchors: tuple[x509.Certificate, ...]
    allowed_ca_oids: frozenset[str]

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> UziTrust:
        anchors: list[x509.Certificate] = []
        for path in settings.uzi_trust_anchors:
            anchors.extend(x509.load_pem_x509_certificates(Path(path).read_bytes()))
        return cls(tuple(anchors), frozenset(settings.uzi_allowed_ca_oids))

    @property
    def configured(self) -> bool:
        return bool(self.trust_anchors)


def parse_uzi_identity(certificate: x509.Certificate) -> UziIdentity:
    """Read the UZI identity from the SAN; raises UziCertificateError when absent, malformed or contradictory."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound as error:
        raise UziCertificateError("the certificate has no subjectAltName") from error
    other_names = san.get_values_for_type(x509.OtherName)
    uzi_strings = {_uzi_string(name.value) for name in other_names if name.type_id == UZI_OTHERNAME_OID}
    permanent_uras = {
        ura for name in other_names if name.type_id == PERMANENT_IDENTIFIER_OID
        for ura in [_permanent_identifier_ura(name.value)] if ura is not None
    }
    if len(uzi_strings) > 1:
        raise UziCertificateError("the certificate carries different UZI (2.5.5.5) identities")
    if len(permanent_uras) > 1:
        raise UziCertificateError("the certificate carries different URA permanentIdentifiers")
    identity = _parse_uzi_string(uzi_strings.pop()) if uzi_strings else None
    permanent_ura = permanent_uras.pop() if permanent_uras else None
    if identity is None and permanent_ura is None:
        raise UziCertificateError("the certificate carries no UZI identity (2.5.5.5 or URA permanentIdentifier)")
    if identity is not None and permanent_ura is not None and identity.ura != permanent_ura:
        raise UziCertificateError(
            f"the UZI string names URA {identity.ura} but the permanentIdentifier names URA {permanent_ura}"
        )
    return identity or UziIdentity(ura=str(permanent_ura))


def verify_uzi_certificate(
    chain: list[x509.Certificate], trust: UziTrust, at: datetime | None = None
) -> UziIdentity:
    """Verify that `chain[0]` is a currently valid UZI server certificate issued under a configured trust
    anchor (with `chain[1:]` as intermediates) and return its identity."""
    if not chain:
        raise UziCertificateError("no client certificate was presented")
    if not trust.configured:
        raise UziCertificateError("no UZI trust anchors are configured")
    verifier = PolicyBuilder().store(Store(list(trust.trust_anchors))).time(at or datetime.now(UTC))
    try:
        verifier.build_client_verifier().verify(chain[0], chain[1:])
    except VerificationError as error:
        reason = f"the certificate is not valid under the configured UZI trust anchors: {error}"
        raise UziCertificateError(reason) from error
    identity = parse_uzi_identity(chain[0])
    if identity.ca_oid is not None and identity.ca_oid not in trust.allowed_ca_oids:
        raise UziCertificateError(f"the UZI CA OID {identity.ca_oid} is not an allowed CA")
    if identity.card_type is not None and identity.card_type != SERVER_CARD_TYPE:
        raise UziCertificateError(f"pastype {identity.card_type} is not a server certificate (S)")
    return identity


def _uzi_string(value: bytes) -> str:
    try:
        return decode_ia5(read_single(value, IA5_STRING))
    except DerError as error:
        raise UziCertificateError(f"the 2.5.5.5 otherName is not a DER IA5String: {error}") from error


def _parse_uzi_string(text: str) -> UziIdentity:
    match = _UZI_STRING.fullmatch(text)
    if match is None:
        raise UziCertificateError(
            f"the 2.5.5.5 value {text!r} is not <OID-CA>-<version>-<UZI-nr>-<pastype>-<URA>-<role>-<AGB>"
        )
    return UziIdentity(**match.groupdict())


def _permanent_identifier_ura(value: bytes) -> str | None:
    """The URA of a permanentIdentifier with the URA assigner; None for other assigners."""
    try:
        elements = read_sequence(value)
        identifier = next((decode_utf8(content) for tag, content in elements if tag == UTF8_STRING), None)
        assigner = next((decode_oid(content) for tag, content in elements if tag == OBJECT_IDENTIFIER), None)
        if any(tag not in (UTF8_STRING, OBJECT_IDENTIFIER) for tag, _ in elements) or len(elements) > 2:
            raise DerError("unexpected element in permanentIdentifier")
    except (DerError, UnicodeDecodeError) as error:
        raise UziCertificateError(f"the permanentIdentifier is malformed: {error}") from error
    if assigner != URA_ASSIGNER_OID:
        return None
    if identifier is None or not re.fullmatch(r"\d{8}", identifier):
        raise UziCertificateError("the URA permanentIdentifier does not hold an 8-digit URA")
    return identifier


def decode_utf8(content: bytes) -> str:
    return content.decode("utf-8")

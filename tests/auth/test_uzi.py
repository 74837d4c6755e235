from __future__ import annotations

from typing import Any

import pytest
from cryptography import x509

from gateway.auth.uzi import UziCertificateError, UziTrust, parse_uzi_identity, verify_uzi_certificate
from tests.auth.pki import TEST_CA_OID, URA, ia5, permanent_identifier, uzi_names


@pytest.fixture(scope="module")
def trust(pki: dict[str, Any]) -> UziTrust:
    return UziTrust((pki["ca"].certificate,), frozenset({TEST_CA_OID}))


def test_valid_server_certificate(pki: dict[str, Any], trust: UziTrust) -> None:
    identity = verify_uzi_certificate([pki["ca"].issue(uzi_names())], trust)
    assert identity.ura == URA
    assert identity.ca_oid == TEST_CA_OID
    assert identity.card_type == "S"
    assert identity.uzi_number == "12345678"
    assert identity.role == "00.000"


def test_permanent_identifier_alone_is_enough(pki: dict[str, Any], trust: UziTrust) -> None:
    names = [x509.OtherName(x509.ObjectIdentifier("1.3.6.1.5.5.7.8.3"), permanent_identifier(URA))]
    identity = verify_uzi_certificate([pki["ca"].issue(names)], trust)
    assert identity.ura == URA and identity.ca_oid is None


def test_uzi_string_alone_is_enough(pki: dict[str, Any], trust: UziTrust) -> None:
    assert verify_uzi_certificate([pki["ca"].issue(uzi_names(permanent_ura=None))], trust).ura == URA


def test_expired_certificate_is_rejected(pki: dict[str, Any], trust: UziTrust) -> None:
    with pytest.raises(UziCertificateError, match="not valid"):
        verify_uzi_certificate([pki["ca"].issue(uzi_names(), valid_days=(-30, -1))], trust)


def test_not_yet_valid_certificate_is_rejected(pki: dict[str, Any], trust: UziTrust) -> None:
    with pytest.raises(UziCertificateError, match="not valid"):
        verify_uzi_certificate([pki["ca"].issue(uzi_names(), valid_days=(2, 30))], trust)


def test_certificate_from_wrong_ca_is_rejected(pki: dict[str, Any], trust: UziTrust) -> None:
    with pytest.raises(UziCertificateError, match="trust anchors"):
        verify_uzi_certificate([pki["other_ca"].issue(uzi_names())], trust)


def test_malformed_uzi_string_is_rejected(pki: dict[str, Any], trust: UziTrust) -> None:
    names = [x509.OtherName(x509.ObjectIdentifier("2.5.5.5"), ia5(f"{TEST_CA_OID}-1-12345678-S-9000012-00.000"))]
    with pytest.raises(UziCertificateError, match="is not <OID-CA>"):
        verify_uzi_certificate([pki["ca"].issue(names)], trust)


def test_uzi_otherName_that_is_not_ia5_is_rejected(pki: dict[str, Any], trust: UziTrust) -> None:
    names = [x509.OtherName(x509.ObjectIdentifier("2.5.5.5"), b"\x0c\x03abc")]
    with pytest.raises(UziCertificateError, match="IA5String"):
        verify_uzi_certificate([pki["ca"].issue(names)], trust)


def test_malformed_permanent_identifier_is_rejected(pki: dict[str, Any], trust: UziTrust) -> None:
    names = [x509.OtherName(x509.ObjectIdentifier("1.3.6.1.5.5.7.8.3"), b"\x30\x05\x0c\x08abc")]
    with pytest.raises(UziCertificateError, match="malformed"):
        verify_uzi_certificate([pki["ca"].issue(names)], trust)


def test_conflicting_uras_are_rejected(pki: dict[str, Any], trust: UziTrust) -> None:
    certificate = pki["ca"].issue(uzi_names(ura=URA, permanent_ura="90000999"))
    with pytest.raises(UziCertificateError, match="90000999"):
        verify_uzi_certificate([certificate], trust)


def test_two_different_uzi_strings_are_rejected(pki: dict[str, Any], trust: UziTrust) -> None:
    names = uzi_names(permanent_ura=None) + uzi_names(ura="90000999", permanent_ura=None)[:1]
    with pytest.raises(UziCertificateError, match="different UZI"):
        verify_uzi_certificate([pki["ca"].issue(names)], trust)


def test_certificate_without_san_is_rejected(pki: dict[str, Any], trust: UziTrust) -> None:
    with pytest.raises(UziCertificateError):
        verify_uzi_certificate([pki["ca"].issue(None)], trust)


def test_certificate_without_uzi_identity_is_rejected(pki: dict[str, Any]) -> None:
    with pytest.raises(UziCertificateError, match="no UZI identity"):
        parse_uzi_identity(pki["ca"].issue([x509.DNSName("ehr.example.nl")]))


def test_disallowed_ca_oid_is_rejected(pki: dict[str, Any], trust: UziTrust) -> None:
    certificate = pki["ca"].issue(uzi_names(ca_oid="2.16.528.1.1003.1.3.5.5.9"))
    with pytest.raises(UziCertificateError, match="not an allowed CA"):
        verify_uzi_certificate([certificate], trust)


def test_personal_card_is_not_a_server_certificate(pki: dict[str, Any], trust: UziTrust) -> None:
    with pytest.raises(UziCertificateError, match="not a server certificate"):
        verify_uzi_certificate([pki["ca"].issue(uzi_names(card_type="Z"))], trust)


def test_without_trust_anchors_nothing_is_trusted(pki: dict[str, Any]) -> None:
    with pytest.raises(UziCertificateError, match="no UZI trust anchors"):
        verify_uzi_certificate([pki["ca"].issue(uzi_names())], UziTrust((), frozenset({TEST_CA_OID})))


def test_permanent_identifier_of_other_assigner_is_ignored(pki: dict[str, Any]) -> None:
    names = uzi_names(permanent_ura=None) + [
        x509.OtherName(x509.ObjectIdentifier("1.3.6.1.5.5.7.8.3"), permanent_identifier("X-1", "1.2.3.4"))
    ]
    assert parse_uzi_identity(pki["ca"].issue(names)).ura == URA

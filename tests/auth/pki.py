"""A throw-away PKI for the tests: a root CA and UZI-style server certificates built with `cryptography`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TEST_CA_OID = "2.16.528.1.1003.1.3.5.5.2"
URA = "90000123"


def ia5(text: str) -> bytes:
    raw = text.encode("ascii")
    assert len(raw) < 128
    return bytes([0x16, len(raw)]) + raw


def oid_der(dotted: str) -> bytes:
    arcs = [int(arc) for arc in dotted.split(".")]
    body = bytearray()
    for arc in [40 * arcs[0] + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body.extend(reversed(chunk))
    return bytes([0x06, len(body)]) + bytes(body)


def permanent_identifier(value: str, assigner: str = "2.16.528.1.1007.3.3") -> bytes:
    raw = value.encode("utf-8")
    content = bytes([0x0C, len(raw)]) + raw + oid_der(assigner)
    return bytes([0x30, len(content)]) + content


def uzi_string(ura: str = URA, ca_oid: str = TEST_CA_OID, card_type: str = "S") -> str:
    return f"{ca_oid}-1-12345678-{card_type}-{ura}-00.000-00000000"


def uzi_names(ura: str = URA, permanent_ura: str | None = URA, **kwargs: str) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.OtherName(x509.ObjectIdentifier("2.5.5.5"), ia5(uzi_string(ura, **kwargs)))]
    if permanent_ura is not None:
        names.append(x509.OtherName(x509.ObjectIdentifier("1.3.6.1.5.5.7.8.3"), permanent_identifier(permanent_ura)))
    names.append(x509.DNSName("ehr.example.nl"))
    return names


@dataclass
class CertificateAuthority:
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @classmethod
    def create(cls, name: str = "Test UZI Server CA") -> CertificateAuthority:
        key = ec.generate_private_key(ec.SECP384R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.now(dt.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA384())
        )
        return cls(key, certificate)

    def issue(
        self,
        names: list[x509.GeneralName] | None,
        valid_days: tuple[int, int] = (-1, 30),
        common_name: str = "ehr.example.nl",
    ) -> x509.Certificate:
        """A client certificate; `names` None leaves out the subjectAltName altogether."""
        return self.issue_with_key(names, valid_days, common_name)[0]

    def issue_with_key(
        self,
        names: list[x509.GeneralName] | None,
        valid_days: tuple[int, int] = (-1, 30),
        common_name: str = "ehr.example.nl",
        usage: x509.ObjectIdentifier = ExtendedKeyUsageOID.CLIENT_AUTH,
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        """A certificate and its private key (for a real TLS connection); `usage` is the extended key usage."""
        key = ec.generate_private_key(ec.SECP384R1())
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now + dt.timedelta(days=valid_days[0]))
            .not_valid_after(now + dt.timedelta(days=valid_days[1]))
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
        )
        if names is not None:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return builder.sign(self.key, hashes.SHA384()), key


def pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(Encoding.PEM).decode("ascii")


def rfc9440(certificate: x509.Certificate) -> str:
    import base64

    return ":" + base64.b64encode(certificate.public_bytes(Encoding.DER)).decode("ascii") + ":"

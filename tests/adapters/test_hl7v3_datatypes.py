"""The shared HL7v3 datatype mappers, with hypothesis for the properties that must hold for any input."""

from __future__ import annotations

import re
from datetime import datetime

from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from gateway.adapters.hl7v3.addresses import ADXP, address
from gateway.adapters.hl7v3.codes import codeable_concept
from gateway.adapters.hl7v3.identifiers import identifier
from gateway.adapters.hl7v3.names import EN_QUALIFIER, OWN_NAME, OWN_PREFIX, PARTNER_NAME, PARTNER_PREFIX, human_names
from gateway.adapters.hl7v3.nullflavor import data_absent_reason
from gateway.adapters.hl7v3.quantities import quantity
from gateway.adapters.hl7v3.telecom import contact_point
from gateway.adapters.hl7v3.times import fhir_date, fhir_datetime, parse_ts, period
from gateway.adapters.hl7v3.xml import Hl7v3ParseError, parse_xml

V3 = 'xmlns="urn:hl7-org:v3"'
FHIR_DATETIME = re.compile(
    r"([0-9]{4})(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01])(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)"
    r"(\.[0-9]+)?(Z|[+-]((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?")


def element(xml: str) -> etree._Element:
    return etree.fromstring(re.sub(r"^<x", f"<x {V3}", xml, count=1))


@st.composite
def timestamps(draw: st.DrawFn) -> tuple[str, int]:
    moment = draw(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2099, 12, 31)))
    digits = moment.strftime("%Y%m%d%H%M%S")
    length = draw(st.sampled_from([4, 6, 8, 10, 12, 14]))
    text = digits[:length]
    if length == 14 and draw(st.booleans()):
        text += "." + str(draw(st.integers(0, 999))).zfill(3)
    if length >= 10 and draw(st.booleans()):
        text += draw(st.sampled_from(["+0100", "+0200", "-0500", "+0000"]))
    return text, length


@given(timestamps())
def test_any_ts_keeps_its_precision_and_zone(case: tuple[str, int]) -> None:
    text, length = case
    value = fhir_datetime(text)
    assert value is not None and FHIR_DATETIME.fullmatch(value), value
    digits = re.sub(r"[^0-9]", "", value[:19])
    assert digits.startswith(text[:length])  # every given digit kept
    if length <= 8:
        assert len(re.sub(r"[^0-9]", "", value)) == length  # date precisions stay exactly as precise
    if "." in text:
        assert "." + text.split(".")[1][:3] in value
    zone = re.search(r"[+-]\d{4}$", text)
    if zone:
        assert value.endswith(f"{zone.group()[:3]}:{zone.group()[3:]}")


def test_ts_examples() -> None:
    assert fhir_datetime("2017") == "2017"
    assert fhir_datetime("201706") == "2017-06"
    assert fhir_datetime("20170611") == "2017-06-11"
    assert fhir_datetime("201706111100") == "2017-06-11T11:00:00+02:00"  # Dutch summer time
    assert fhir_datetime("201701111100") == "2017-01-11T11:00:00+01:00"
    assert fhir_datetime("20170611110000.123-0500") == "2017-06-11T11:00:00.123-05:00"
    assert fhir_date("19500520") == "1950-05-20"
    assert parse_ts("201706111100").precision == "minute"


def test_ivl_ts_with_null_bound() -> None:
    found = period(element('<x><low value="20170612"/><high nullFlavor="NI"/></x>'))
    assert found == {"start": "2017-06-12", "_end": {"extension": [data_absent_reason("NI")]}}


NAME_PART = st.text(alphabet=st.characters(categories=["L"]), min_size=1, max_size=12)


@given(st.lists(NAME_PART, min_size=0, max_size=3), st.lists(NAME_PART, min_size=0, max_size=2),
       NAME_PART, st.one_of(st.none(), NAME_PART), st.one_of(st.none(), NAME_PART), st.one_of(st.none(), NAME_PART),
       st.booleans())
def test_pn_keeps_every_part(given_names: list[str], initials: list[str], own: str, own_prefix: str | None,
                             partner: str | None, partner_prefix: str | None, partner_first: bool) -> None:
    parts = [f"<given>{g}</given>" for g in given_names] + [f'<given qualifier="IN">{i}.</given>' for i in initials]
    own_xml = f'<family qualifier="BR">{own}</family>'
    if own_prefix:
        own_xml = f'<prefix qualifier="VV">{own_prefix}</prefix>' + own_xml
    partner_xml = ""
    if partner:
        partner_xml = (f'<prefix qualifier="VV SP">{partner_prefix}</prefix>' if partner_prefix else "") + \
            f'<family qualifier="SP">{partner}</family>'
    families = partner_xml + own_xml if partner_first else own_xml + partner_xml
    (name,) = human_names(element(f"<x>{''.join(parts)}{families}</x>"))
    assert name.get("given", []) == given_names + [f"{i}." for i in initials]
    qualifiers = [q["extension"][0]["valueCode"] for q in name.get("_given", [])]
    assert qualifiers == ["BR"] * len(given_names) + ["IN"] * len(initials)
    assert all(q["extension"][0]["url"] == EN_QUALIFIER for q in name.get("_given", []))
    extensions = {(e["url"], e["valueString"]) for e in name["_family"]["extension"]}
    assert (OWN_NAME, own) in extensions
    assert own_prefix is None or (OWN_PREFIX, own_prefix) in extensions
    assert partner is None or (PARTNER_NAME, partner) in extensions
    assert partner is None or partner_prefix is None or (PARTNER_PREFIX, partner_prefix) in extensions
    for part in [*given_names, own, own_prefix, partner, partner_prefix if partner else None]:
        assert part is None or part in name["text"]
    assert name["family"] in name["text"]


def test_pn_dutch_example() -> None:
    (name,) = human_names(element(
        '<x><given>Johanna</given><given qualifier="IN">P.</given><prefix qualifier="VV">van</prefix>'
        '<family qualifier="BR">Putten</family><delimiter>-</delimiter><prefix qualifier="VV SP">van der</prefix>'
        '<family qualifier="SP">Giessen</family></x>'))
    assert name["family"] == "van Putten-van der Giessen"
    assert name["text"] == "Johanna P. van Putten-van der Giessen"
    assert name["extension"] == [{"url": "http://hl7.org/fhir/StructureDefinition/humanname-assembly-order",
                                  "valueCode": "NL4"}]


def test_pn_plain_text_and_call_name() -> None:
    assert human_names(element("<x>Dr Jansen</x>")) == [{"use": "official", "text": "Dr Jansen", "family": "Dr Jansen"}]
    names = human_names(element('<x><given qualifier="CL">Jo</given><family>Putten</family></x>'))
    assert names[1] == {"use": "usual", "given": ["Jo"]}


@given(st.sampled_from(["2.16.840.1.113883.2.4.6.3", "2.16.528.1.1007.3.3", "2.16.840.1.113883.2.4.6.1",
                        "2.16.528.1.1007.3.1", "1.2.3.4.5"]), st.from_regex(r"[A-Za-z0-9.-]{1,20}", fullmatch=True))
def test_ii_maps_root_to_naming_system(root: str, extension: str) -> None:
    found = identifier(element(f'<x root="{root}" extension="{extension}"/>'))
    expected = {"2.16.840.1.113883.2.4.6.3": "http://fhir.nl/fhir/NamingSystem/bsn",
                "2.16.528.1.1007.3.3": "http://fhir.nl/fhir/NamingSystem/ura",
                "2.16.840.1.113883.2.4.6.1": "http://fhir.nl/fhir/NamingSystem/agb-z",
                "2.16.528.1.1007.3.1": "http://fhir.nl/fhir/NamingSystem/uzi-nr-pers"}.get(root, f"urn:oid:{root}")
    assert found == {"system": expected, "value": extension}


def test_ii_root_only_and_null() -> None:
    assert identifier(element('<x root="1.2.3"/>')) == {"system": "urn:ietf:rfc:3986", "value": "urn:oid:1.2.3"}
    assert identifier(element('<x nullFlavor="UNK"/>')) is None


def test_cd_systems_translations_and_null() -> None:
    concept = codeable_concept(element(
        '<x code="6939" codeSystem="2.16.840.1.113883.2.4.4.10" displayName="Metoclopramide">'
        '<translation code="63630" codeSystem="2.16.840.1.113883.2.4.4.1"/></x>'))
    assert concept == {"coding": [
        {"system": "urn:oid:2.16.840.1.113883.2.4.4.10", "code": "6939", "display": "Metoclopramide"},
        {"system": "urn:oid:2.16.840.1.113883.2.4.4.1", "code": "63630"}]}
    assert codeable_concept(element('<x code="R95" codeSystem="2.16.840.1.113883.2.4.4.31.1"/>'))["coding"][0][
        "system"] == "http://hl7.org/fhir/sid/icpc-1-nl"
    assert codeable_concept(element('<x nullFlavor="OTH"><originalText>vrij</originalText></x>')) == {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-NullFlavor", "code": "OTH"}], "text": "vrij"}


@given(st.decimals(allow_nan=False, allow_infinity=False, places=3, min_value=-10**6, max_value=10**6),
       st.sampled_from(["mm[Hg]", "Cel", "kg", "/min", "%"]))
def test_pq_keeps_value_text_and_unit(value, unit: str) -> None:  # type: ignore[no-untyped-def]
    text = format(value, "f")
    found = quantity(element(f'<x value="{text}" unit="{unit}"/>'))
    assert found is not None and str(found["value"]) == text
    assert (found["unit"], found["code"], found["system"]) == (unit, unit, "http://unitsofmeasure.org")


def test_ad_dutch_address() -> None:
    found = address(element('<x use="HP"><streetName>Knolweg</streetName><houseNumber>1001</houseNumber>'
                            '<postalCode>9999 XX</postalCode><city>STITSWERD</city><country>Nederland</country></x>'))
    assert found is not None
    assert found["line"] == ["Knolweg 1001"] and found["use"] == "home" and found["type"] == "both"
    assert found["_line"][0]["extension"] == [{"url": ADXP + "streetName", "valueString": "Knolweg"},
                                              {"url": ADXP + "houseNumber", "valueString": "1001"}]
    assert (found["postalCode"], found["city"], found["country"]) == ("9999 XX", "STITSWERD", "Nederland")


def test_tel() -> None:
    assert contact_point(element('<x use="WP" value="tel:+31434073576"/>')) == {
        "system": "phone", "value": "+31434073576", "use": "work"}
    assert contact_point(element('<x value="mailto:a@b.nl"/>')) == {"system": "email", "value": "a@b.nl"}
    assert contact_point(element('<x value="x-hl7-applicatie:2.16.1"/>'))["system"] == "other"


def test_parser_refuses_doctype_and_entities() -> None:
    for raw in (b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>', b'<?xml version="1.0"?>\n<!DOCTYPE x SYSTEM "http://e/x.dtd"><x/>'):
        try:
            parse_xml(raw)
        except Hl7v3ParseError as error:
            assert "DOCTYPE" in str(error)
        else:
            raise AssertionError("accepted a DOCTYPE")

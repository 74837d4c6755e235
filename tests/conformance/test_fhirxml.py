"""FHIR JSON <-> XML: the R4 examples round-trip byte-identically, hand cases, and hostile XML."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from conformance import fhirjson
from conformance.fhirxml import FhirDecimal, FhirXmlError, json_to_xml, xml_to_json
from conformance.packages import DEFINITION_TYPES, PackageSet, default_package_paths
from conformance.typemodel import TypeModel, default_model

NICTIZ = Path("/work/shared/reference/nictiz-r4-zib2020")
XHTML = "http://www.w3.org/1999/xhtml"
# Resources of the R4 examples package that do not round-trip, with the reason (see docs/xml-roundtrip.md).
KNOWN_EXCEPTIONS: dict[str, str] = {}


def canonical(resource: dict[str, Any]) -> bytes:
    """Canonical JSON: sorted keys, decimals exactly as held (fhirjson's rule)."""
    return orjson.dumps(resource, default=fhirjson._default, option=orjson.OPT_SORT_KEYS)


def roundtrip(resource: dict[str, Any], model: TypeModel | None = None, pretty: bool = False) -> dict[str, Any]:
    return xml_to_json(json_to_xml(resource, model, pretty=pretty), model)


def fhir(body: str, root: str = "Patient") -> bytes:
    return f'<{root} xmlns="http://hl7.org/fhir">{body}</{root}>'.encode()


@pytest.fixture(scope="module")
def model() -> TypeModel:
    return default_model()


@pytest.fixture(scope="module")
def packages() -> PackageSet:
    return PackageSet.from_paths(default_package_paths())


def _roundtrip_failures(resources: list[tuple[str, dict[str, Any]]], model: TypeModel) -> dict[str, str]:
    failures = {}
    for name, resource in resources:
        try:
            if canonical(roundtrip(resource, model)) != canonical(resource):
                failures[name] = "differs after JSON -> XML -> JSON"
        except FhirXmlError as error:
            failures[name] = str(error)
    return failures


# -- the round-trip proof -----------------------------------------------------------------------------------


def test_every_r4_example_roundtrips_byte_identical(packages: PackageSet, model: TypeModel) -> None:
    examples = list(packages.examples())
    started = time.perf_counter()
    failures = _roundtrip_failures(examples, model)
    elapsed = time.perf_counter() - started
    print(f"\n{len(examples)} examples, {len(examples) - len(failures)} identical, {elapsed:.1f} s")
    assert len(examples) == 727
    assert failures == {name: reason for name, reason in KNOWN_EXCEPTIONS.items() if name in failures}
    assert failures == {}


def test_every_r4_definition_roundtrips_byte_identical(packages: PackageSet, model: TypeModel) -> None:
    definitions = [
        (entry.source, package.resource(entry))
        for package in packages.packages for entry in package.entries
        if entry.resource_type in DEFINITION_TYPES
    ]
    started = time.perf_counter()
    failures = _roundtrip_failures(definitions, model)
    print(f"\n{len(definitions)} definitions, {len(definitions) - len(failures)} identical, "
          f"{time.perf_counter() - started:.1f} s")
    assert len(definitions) > 4500
    assert failures == {}


def test_pretty_output_roundtrips(packages: PackageSet, model: TypeModel) -> None:
    for name in ("Patient-example.json", "Bundle-bundle-response.json", "Questionnaire-f201.json"):
        resource = next(resource for source, resource in packages.examples() if source == name)
        xml = json_to_xml(resource, model, pretty=True)
        assert b"\n  <" in xml
        assert canonical(xml_to_json(xml, model)) == canonical(resource)


def test_xml_is_in_definition_order_whatever_the_json_order(model: TypeModel) -> None:
    resource = {
        "birthDate": "1970-01-01", "name": [{"given": ["A"], "family": "B"}], "id": "x",
        "resourceType": "Patient", "active": True,
    }
    xml = json_to_xml(resource, model).decode()
    assert xml.index("<id ") < xml.index("<active ") < xml.index("<name>") < xml.index("<birthDate ")
    assert xml.index("<family ") < xml.index("<given ")
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?><Patient xmlns="http://hl7.org/fhir">')


@pytest.mark.skipif(not (NICTIZ / "examples").exists(), reason="Nictiz reference material not present")
def test_nictiz_xml_examples_survive_xml_json_xml(model: TypeModel) -> None:
    parser = etree.XMLParser(remove_comments=True, remove_pis=True, resolve_entities=False, no_network=True)

    def shape(element: Any) -> Any:
        if element.tag.startswith("{" + XHTML):
            return etree.tostring(element, method="c14n", with_tail=False)
        attributes = tuple(sorted((k, v) for k, v in element.attrib.items() if not k.startswith("{")))
        return element.tag, attributes, tuple(shape(child) for child in element if isinstance(child.tag, str))

    files = sorted((NICTIZ / "examples").glob("*.xml")) + sorted((NICTIZ / "resources").glob("*/*.xml"))
    different = []
    for file in files:
        data = file.read_bytes()
        back = json_to_xml(xml_to_json(data, model), model)
        if shape(etree.fromstring(data, parser)) != shape(etree.fromstring(back, parser)):
            different.append(file.name)
    assert len(files) > 500
    assert different == []


# -- primitives -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["10", "1.50", "0.0000001", "-0.5", "1E3", "1e-3", "6.02E+23", "0", "-0"])
def test_decimals_keep_their_lexical_form_from_xml(model: TypeModel, text: str) -> None:
    xml = fhir(f'<extension url="http://x.org/d"><valueDecimal value="{text}"/></extension>')
    resource = xml_to_json(xml, model)
    value = resource["extension"][0]["valueDecimal"]
    assert isinstance(value, Decimal) and str(value) == text
    assert f'"valueDecimal":{text}'.encode() in fhirjson.dumps(resource)
    assert f'<valueDecimal value="{text}"/>'.encode() in json_to_xml(resource, model)


@pytest.mark.parametrize("text", ["1.", ".5", "+1", "01", "1,5", "1.5.1", "NaN", "Infinity", "", " 1"])
def test_invalid_decimals_are_rejected_with_path(model: TypeModel, text: str) -> None:
    xml = fhir(f'<status value="final"/><code><text value="x"/></code><valueQuantity><value value="{text}"/>'
               "</valueQuantity>", "Observation")
    with pytest.raises(FhirXmlError, match=r"Observation\.valueQuantity\.value"):
        xml_to_json(xml, model)


def test_json_decimals_and_integers_roundtrip_exactly(model: TypeModel) -> None:
    raw = (b'{"resourceType":"Observation","status":"final","code":{"text":"x"},'
           b'"valueQuantity":{"value":1.50,"unit":"mg"},"component":[{"code":{"text":"y"},"valueInteger":10},'
           b'{"code":{"text":"z"},"valueQuantity":{"value":10}}]}')
    resource = fhirjson.loads(raw)
    back = roundtrip(resource, model)
    assert fhirjson.dumps(back) == raw
    assert type(back["component"][0]["valueInteger"]) is int
    assert isinstance(back["valueQuantity"]["value"], FhirDecimal)


def test_integers_and_booleans(model: TypeModel) -> None:
    resource = xml_to_json(fhir('<active value="true"/><multipleBirthInteger value="2"/>'), model)
    assert resource == {"resourceType": "Patient", "active": True, "multipleBirthInteger": 2}
    for bad, path in [('<active value="yes"/>', "Patient.active"), ('<active value="True"/>', "Patient.active"),
                      ('<multipleBirthInteger value="1.0"/>', "Patient.multipleBirthInteger"),
                      ('<multipleBirthInteger value="2147483648"/>', "Patient.multipleBirthInteger")]:
        with pytest.raises(FhirXmlError, match=path.replace(".", r"\.")):
            xml_to_json(fhir(bad), model)
    with pytest.raises(FhirXmlError, match=r"Patient\.active"):
        json_to_xml({"resourceType": "Patient", "active": "true"}, model)
    with pytest.raises(FhirXmlError, match=r"Patient\.multipleBirthInteger"):
        json_to_xml({"resourceType": "Patient", "multipleBirthInteger": True}, model)


def test_primitive_extensions_with_ids(model: TypeModel) -> None:
    resource = {
        "resourceType": "Patient",
        "birthDate": "1970-03-30",
        "_birthDate": {"id": "bd1", "extension": [
            {"url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime",
             "valueDateTime": "1970-03-30T14:05:00+01:00"}
        ]},
        "_gender": {"extension": [{"url": "http://example.org/absent", "valueCode": "unknown"}]},
    }
    xml = json_to_xml(resource, model).decode()
    assert '<birthDate id="bd1" value="1970-03-30"><extension url="http://hl7.org/fhir/StructureDefinition/' in xml
    assert '<gender><extension url="http://example.org/absent"><valueCode value="unknown"/></extension></gender>' in xml
    assert canonical(xml_to_json(xml.encode(), model)) == canonical(resource)


def test_repeated_primitives_with_nulls(model: TypeModel) -> None:
    resource = {
        "resourceType": "Patient",
        "name": [{
            "given": ["A", None, "C"],
            "_given": [None, {"id": "g2", "extension": [{"url": "http://x.org/e", "valueString": "B"}]}, None],
        }],
    }
    xml = json_to_xml(resource, model).decode()
    assert '<given value="A"/><given id="g2"><extension url="http://x.org/e">' in xml
    assert xml.count("<given") == 3
    assert canonical(xml_to_json(xml.encode(), model)) == canonical(resource)
    only_extension = {"resourceType": "Patient", "name": [{"_given": [{"id": "x"}]}]}
    assert roundtrip(only_extension, model) == only_extension


def test_strings_escape_and_keep_whitespace(model: TypeModel) -> None:
    text = 'a & b < c > d "q" \'s\'\tline1\nline2\r\nend \u00e9\u00a0\U0001f600'
    resource = {"resourceType": "Patient", "name": [{"text": text}]}
    xml = json_to_xml(resource, model)
    assert b"&#10;" in xml and b"&#9;" in xml and b"&amp;" in xml
    assert roundtrip(resource, model) == resource
    with pytest.raises(FhirXmlError, match=r"Patient\.name\[0\]\.text"):
        json_to_xml({"resourceType": "Patient", "name": [{"text": "bell\x07"}]}, model)


# -- narrative ------------------------------------------------------------------------------------------------


def test_xhtml_with_entities_and_nested_markup_is_copied_byte_for_byte(model: TypeModel) -> None:
    div = ('<div xmlns="http://www.w3.org/1999/xhtml"><p>Tom &amp; Jerry &lt;3 &#160;&gt; '
           '<b>bold <i>both</i></b><br/><a href="http://x.org/?a=1&amp;b=2">link</a></p>'
           "<table><tr><td class='c'>1</td></tr></table><!-- note --></div>")
    resource = {"resourceType": "Patient", "text": {"status": "generated", "div": div}}
    xml = json_to_xml(resource, model)
    assert div.encode() in xml
    assert roundtrip(resource, model)["text"]["div"] == div
    tree = etree.fromstring(xml)
    assert tree.find("{http://hl7.org/fhir}text/{http://www.w3.org/1999/xhtml}div") is not None


def test_xhtml_source_text_is_kept_when_reading_xml(model: TypeModel) -> None:
    div = '<div xmlns="http://www.w3.org/1999/xhtml">\n  <p class="x">caf&#233; &amp; <br /></p>\n</div>'
    xml = fhir(f'<text><status value="generated"/>{div}</text>').replace(
        b"<Patient ", b'<Patient xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ')
    assert xml_to_json(xml, model)["text"]["div"] == div


def test_xhtml_relying_on_outer_prefixes_is_reserialised(model: TypeModel) -> None:
    xml = (b'<Patient xmlns="http://hl7.org/fhir" xmlns:h="http://www.w3.org/1999/xhtml"><text>'
           b'<status value="generated"/><h:div><h:p>x</h:p></h:div></text></Patient>')
    div = xml_to_json(xml, model)["text"]["div"]
    assert etree.fromstring(div.encode()).tag == "{http://www.w3.org/1999/xhtml}div"
    assert "xmlns:h=" in div or 'xmlns="http://www.w3.org/1999/xhtml"' in div


@pytest.mark.parametrize(
    "div",
    ["<p>no div</p>", "just text", '<div xmlns="http://hl7.org/fhir">x</div>', "<div>no namespace</div>",
     '<div xmlns="http://www.w3.org/1999/xhtml">&nbsp;</div>',
     '<!DOCTYPE div [<!ENTITY a "b">]><div xmlns="http://www.w3.org/1999/xhtml">&a;</div>'],
)
def test_bad_narrative_in_json_is_rejected(model: TypeModel, div: str) -> None:
    with pytest.raises(FhirXmlError, match=r"Patient\.text\.div"):
        json_to_xml({"resourceType": "Patient", "text": {"status": "generated", "div": div}}, model)


# -- nested resources -----------------------------------------------------------------------------------------


def test_contained_bundle_and_parameters_resources(model: TypeModel) -> None:
    patient = {"resourceType": "Patient", "id": "p", "active": True}
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:1", "resource": {
            "resourceType": "Observation", "status": "final", "code": {"text": "x"},
            "contained": [patient], "subject": {"reference": "#p"}}},
        {"resource": {"resourceType": "Parameters", "parameter": [
            {"name": "r", "resource": patient}, {"name": "p", "part": [{"name": "q", "valueInteger": 1}]}]}},
    ]}
    xml = json_to_xml(bundle, model).decode()
    assert "<resource><Observation><contained><Patient><id value=\"p\"/>" in xml
    assert "<parameter><name value=\"r\"/><resource><Patient>" in xml
    assert canonical(xml_to_json(xml.encode(), model)) == canonical(bundle)


def test_nested_resource_errors_name_the_path(model: TypeModel) -> None:
    with pytest.raises(FhirXmlError, match=r"Bundle\.entry\[0\]\.resource: unknown resource type 'Nope'"):
        xml_to_json(fhir('<type value="collection"/><entry><resource><Nope/></resource></entry>', "Bundle"), model)
    with pytest.raises(FhirXmlError, match=r"Bundle\.entry\[0\]\.resource: must contain exactly one"):
        xml_to_json(fhir('<type value="collection"/><entry><resource><Patient/><Patient/></resource></entry>',
                         "Bundle"), model)


# -- hostile and malformed XML --------------------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<Patient xmlns="http://hl7.org/fhir"><name><text value="&lol4;"/></name></Patient>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE Patient [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Patient xmlns="http://hl7.org/fhir"><name><text value="&xxe;"/></name></Patient>"""


@pytest.mark.parametrize("data", [BILLION_LAUGHS, XXE, XXE.decode().encode("utf-16")])
def test_doctype_and_entities_are_rejected(model: TypeModel, data: bytes) -> None:
    with pytest.raises(FhirXmlError, match="DOCTYPE") as caught:
        xml_to_json(data, model)
    assert "root:" not in str(caught.value)


def test_external_entity_without_doctype_is_not_resolved(model: TypeModel) -> None:
    with pytest.raises(FhirXmlError, match="malformed XML"):
        xml_to_json(fhir('<name><text value="&xxe;"/></name>'), model)


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        (b'<Patient xmlns="http://hl7.org/fhir/other"/>', "namespace http://hl7.org/fhir"),
        (b"<Patient/>", "namespace http://hl7.org/fhir"),
        (b'<Unknown xmlns="http://hl7.org/fhir"/>', "unknown resource type 'Unknown'"),
        (fhir('<name><given value="A"/><nickname value="x"/></name>'),
         r"Patient\.name\[0\]: unknown element 'nickname'"),
        (fhir('<name xmlns:o="urn:o"><o:given value="A"/></name>'),
         r"Patient\.name\[0\]: element 'given' \(namespace urn:o\)"),
        (fhir("<active>true</active>"), r"Patient\.active: text is not allowed"),
        (fhir('stray<active value="true"/>'), r"Patient: text is not allowed"),
        (fhir('<active value="true"/>tail'), r"Patient: text is not allowed"),
        (fhir('<birthDate value="2000-01-01"/><active value="true"/>'), r"Patient\.active: element out of order"),
        (fhir('<active value="true"/><active value="false"/>'), r"Patient\.active: element may occur only once"),
        (fhir('<name><given value="A"/><family value="B"/></name>'),
         r"Patient\.name\[0\]\.family: element out of order"),
        (fhir("<active/>"), r"Patient\.active: element has no value and no children"),
        (fhir('<gender value=""/>'), r"Patient\.gender: '' is not a valid code"),
        (fhir('<active value="true" foo="bar"/>'), r"Patient\.active: unexpected attribute 'foo'"),
        (fhir('<name><given value="A"/></name><identifier><value value="x"/></identifier>'),
         r"Patient\.identifier: element out of order"),
        (b"<Patient", "malformed XML"),
    ],
)
def test_bad_xml_is_rejected_naming_the_path(model: TypeModel, xml: bytes, message: str) -> None:
    with pytest.raises(FhirXmlError, match=message):
        xml_to_json(xml, model)


def test_unknown_json_properties_are_rejected(model: TypeModel) -> None:
    with pytest.raises(FhirXmlError, match=r"Patient\.name\[0\]: unknown property 'nickname'"):
        json_to_xml({"resourceType": "Patient", "name": [{"nickname": "x"}]}, model)
    with pytest.raises(FhirXmlError, match=r"Patient: unknown property '_name'"):
        json_to_xml({"resourceType": "Patient", "_name": {"id": "x"}}, model)
    with pytest.raises(FhirXmlError, match="unknown or missing resourceType"):
        json_to_xml({"resourceType": "Nope"}, model)
    with pytest.raises(FhirXmlError, match=r"Patient\.name: must be an array"):
        json_to_xml({"resourceType": "Patient", "name": {"text": "x"}}, model)
    with pytest.raises(FhirXmlError, match=r"Patient\.name\[0\]\.given: must be an array"):
        json_to_xml({"resourceType": "Patient", "name": [{"given": None}]}, model)
    with pytest.raises(FhirXmlError, match=r"Patient\.name\[0\]\.given: 'given' and '_given' differ in length"):
        json_to_xml({"resourceType": "Patient", "name": [{"given": ["a"], "_given": [None, None]}]}, model)


def test_comments_and_processing_instructions_are_ignored(model: TypeModel) -> None:
    xml = b'<?xml version="1.0"?><?xml-stylesheet href="x"?><!-- c --><Patient xmlns="http://hl7.org/fhir">' \
          b'<!-- inside --><active value="true"/></Patient>'
    assert xml_to_json(xml, model) == {"resourceType": "Patient", "active": True}


# -- properties -----------------------------------------------------------------------------------------------

DECIMAL_TEXT = st.from_regex(r"\A-?(0|[1-9][0-9]{0,20})(\.[0-9]{1,20})?([eE][+-]?[0-9]{1,3})?\Z")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=DECIMAL_TEXT)
def test_any_r4_decimal_survives_xml_json_xml(model: TypeModel, text: str) -> None:
    xml = fhir(f'<status value="final"/><code><text value="x"/></code><valueQuantity><value value="{text}"/>'
               "</valueQuantity>", "Observation")
    resource = xml_to_json(xml, model)
    assert fhirjson.dumps(resource).count(f'"value":{text}'.encode()) == 1
    assert json_to_xml(resource, model).endswith(f'<value value="{text}"/></valueQuantity></Observation>'.encode())


XML_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\ufffe\uffff")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(XML_CHARS, min_size=1, max_size=40))
def test_any_string_roundtrips_or_is_refused(model: TypeModel, text: str) -> None:
    resource = {"resourceType": "Patient", "name": [{"text": text, "given": [text, text]}]}
    representable = not any(ord(c) < 0x20 and c not in "\t\n\r" for c in text)
    if not representable:
        with pytest.raises(FhirXmlError):
            json_to_xml(resource, model)
        return
    assert roundtrip(resource, model) == resource


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(XML_CHARS, max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["given", "_given", "family", "id", "extension", "url", "valueString", "text", "x"]),
        inner, max_size=3,
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.dictionaries(st.sampled_from(["name", "active", "_active", "extension", "contained", "text"]),
                            JSON_VALUES, max_size=4))
def test_arbitrary_json_converts_or_fails_cleanly(model: TypeModel, body: dict[str, Any]) -> None:
    """Whatever the JSON, the writer either produces XML that reads back equal, or raises FhirXmlError."""
    resource = {"resourceType": "Patient", **body}
    try:
        xml = json_to_xml(resource, model)
    except FhirXmlError:
        return
    try:
        back = xml_to_json(xml, model)
    except FhirXmlError:
        return  # e.g. an empty object written as an empty element: refused when read
    assert isinstance(back, dict) and back["resourceType"] == "Patient"

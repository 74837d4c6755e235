"""XML attack catalogue against the live app: FHIR XML on the REST API (conformance.fhirxml) and HL7v3 on
`/ingest/hap` (gateway.adapters.hl7v3.xml). Every attack ends in a 4xx OperationOutcome, never expands an
entity, never reads a file or the network, and writes no resource (a refused HL7v3 message is kept as a
rejected ingestion record, by design: raw messages are never lost)."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator

import pytest

from tests.ingest.messages import episode_message
from tests.reliability.conftest import FHIR_XML, assert_outcome, ingest_statuses, stored_versions

PATIENT_OPEN = '<Patient xmlns="http://hl7.org/fhir">'
SECRET = "zcc-secret-file-content"


@pytest.fixture(scope="module")
def secret_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("xxe") / "secret.txt"
    path.write_text(SECRET)
    return str(path)


@pytest.fixture(scope="module")
def canary_server() -> Iterator[tuple[str, list[str]]]:
    """A loopback HTTP server that records every request: any hit means the parser went on the network."""
    hits: list[str] = []

    class Recorder(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server naming
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'<!ENTITY x "pwned">')

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()


def fhir_xml_attacks(secret_file: str, canary: str) -> dict[str, str]:
    laughs = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10)
    )
    return {
        "xxe-file": f'<?xml version="1.0"?><!DOCTYPE Patient [<!ENTITY xxe SYSTEM "file://{secret_file}">]>'
                    f'{PATIENT_OPEN}<id value="&xxe;"/></Patient>',
        "xxe-network": f'<?xml version="1.0"?><!DOCTYPE Patient [<!ENTITY xxe SYSTEM "{canary}/xxe">]>'
                       f'{PATIENT_OPEN}<id value="&xxe;"/></Patient>',
        "billion-laughs": f'<?xml version="1.0"?><!DOCTYPE Patient [{laughs}]>'
                          f'{PATIENT_OPEN}<id value="&lol9;"/></Patient>',
        "external-dtd": f'<?xml version="1.0"?><!DOCTYPE Patient SYSTEM "{canary}/dtd">'
                        f'{PATIENT_OPEN}<id value="x"/></Patient>',
        "parameter-entity": f'<?xml version="1.0"?><!DOCTYPE Patient [<!ENTITY % remote SYSTEM "{canary}/pe">'
                            f'%remote;]>{PATIENT_OPEN}<id value="x"/></Patient>',
        "xinclude": f'{PATIENT_OPEN[:-1]} xmlns:xi="http://www.w3.org/2001/XInclude">'
                    f'<xi:include href="file://{secret_file}" parse="text"/></Patient>',
        "utf16-doctype": (f'<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE Patient [<!ENTITY xxe SYSTEM '
                          f'"file://{secret_file}">]>{PATIENT_OPEN}<id value="&xxe;"/></Patient>'),
    }


@pytest.mark.parametrize("attack", [
    "xxe-file", "xxe-network", "billion-laughs", "external-dtd", "parameter-entity", "xinclude", "utf16-doctype",
])
def test_fhir_xml_attack_is_refused_without_side_effects(
    client, services, secret_file: str, canary_server: tuple[str, list[str]], attack: str,
) -> None:
    canary, hits = canary_server
    body = fhir_xml_attacks(secret_file, canary)[attack]
    raw = body.encode("utf-16") if attack.startswith("utf16") else body.encode()
    before = stored_versions(services)
    started = time.monotonic()
    response = client.post("/fhir/Patient", content=raw, headers=FHIR_XML)
    assert time.monotonic() - started < 5
    assert_outcome(response, 400, {"structure", "invalid"})
    assert SECRET not in response.text and "pwned" not in response.text
    assert hits == []
    assert stored_versions(services) == before


def test_oversized_xml_attribute_is_refused_by_the_body_limit(client, services) -> None:
    limit = services.settings.max_body
    body = f'{PATIENT_OPEN}<id value="p1"/><gender value="{"a" * limit}"/></Patient>'.encode()
    before = stored_versions(services)
    response = client.post("/fhir/Patient", content=body, headers=FHIR_XML)
    assert_outcome(response, 413, "too-costly")
    assert stored_versions(services) == before


def test_xml_attribute_longer_than_the_string_limit_is_refused(client, services) -> None:
    too_long = services.settings.max_string + 1
    body = f'{PATIENT_OPEN}<name><family value="{"x" * too_long}"/></name></Patient>'.encode()
    before = stored_versions(services)
    started = time.monotonic()
    response = client.post("/fhir/Patient", content=body, headers=FHIR_XML)
    assert time.monotonic() - started < 10
    outcome = assert_outcome(response, 422, "too-long")
    assert outcome["issue"][0]["expression"] == ["Patient.name[0].family"]
    assert stored_versions(services) == before


def test_deeply_nested_xml_is_refused(client, services) -> None:
    depth = 100_000
    body = (f'{PATIENT_OPEN}<extension url="http://x">' + "<extension>" * depth + "</extension>" * depth
            + "</extension></Patient>").encode()
    before = stored_versions(services)
    response = client.post("/fhir/Patient", content=body, headers=FHIR_XML)
    assert_outcome(response, {400, 422})
    assert stored_versions(services) == before


def hl7v3_attacks(secret_file: str, canary: str) -> dict[str, bytes]:
    message = episode_message(message_id="attack").decode()
    body = message.split("?>", 1)[1]
    return {
        "xxe-file": ('<?xml version="1.0"?><!DOCTYPE REPC_IN990111NL [<!ENTITY xxe SYSTEM '
                     f'"file://{secret_file}">]>' + body.replace("COPD", "&xxe;")).encode(),
        "xxe-network": ('<?xml version="1.0"?><!DOCTYPE REPC_IN990111NL [<!ENTITY xxe SYSTEM '
                        f'"{canary}/v3">]>' + body.replace("COPD", "&xxe;")).encode(),
        "billion-laughs": ('<?xml version="1.0"?><!DOCTYPE REPC_IN990111NL [<!ENTITY a "aaaaaaaaaa">'
                           + "".join(f'<!ENTITY a{i} "{("&a" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
                                     for i in range(1, 10))
                           + "]>" + body.replace("COPD", "&a9;")).encode(),
        "external-dtd": (f'<?xml version="1.0"?><!DOCTYPE REPC_IN990111NL SYSTEM "{canary}/v3dtd">' + body).encode(),
        "doctype-late": (body.replace("COPD", "COPD" + " " * 5000)
                         .replace("</REPC_IN990111NL>", "</REPC_IN990111NL><!DOCTYPE x>")).encode(),
    }


@pytest.mark.parametrize("attack", ["xxe-file", "xxe-network", "billion-laughs", "external-dtd", "doctype-late"])
def test_hl7v3_attack_is_rejected_and_kept(
    client, services, secret_file: str, canary_server: tuple[str, list[str]], attack: str,
) -> None:
    canary, hits = canary_server
    raw = hl7v3_attacks(secret_file, canary)[attack]
    before_versions, before_records = stored_versions(services), len(ingest_statuses(services))
    response = client.post("/ingest/hap", content=raw, headers={"Content-Type": "application/xml"})
    assert_outcome(response, 422)
    assert SECRET not in response.text and "pwned" not in response.text
    assert hits == []
    assert stored_versions(services) == before_versions
    statuses = ingest_statuses(services)
    assert len(statuses) == before_records + 1 and statuses[-1] == "rejected"


def test_hl7v3_xinclude_is_never_expanded(client, services, secret_file: str) -> None:
    """lxml only processes XInclude when asked to; the element is an unmapped foreign element, so the message
    may be accepted, but the file's content must appear nowhere: not in the answer, not in the store."""
    body = episode_message(message_id="xinclude").decode().split("?>", 1)[1]
    body = body.replace("<REPC_IN990111NL", '<REPC_IN990111NL xmlns:xi="http://www.w3.org/2001/XInclude"', 1)
    body = body.replace("<text>COPD</text>", f'<text><xi:include href="file://{secret_file}" parse="text"/></text>')
    response = client.post("/ingest/hap", content=body.encode(), headers={"Content-Type": "application/xml"})
    assert response.status_code in {201, 422}, response.text[:300]
    assert SECRET not in response.text
    with services.store.engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT body FROM resource_version")
        stored = b"".join(bytes(row[0] or b"") for row in rows)
    assert SECRET.encode() not in stored

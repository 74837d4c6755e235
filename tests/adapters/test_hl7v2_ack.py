"""ACK/NAK semantics (AA accepted or duplicate, AE error in the message, AR not supported; reason in MSA-3 and
ERR), over HTTP (`Accept: x-application/hl7-v2+er7`) and over MLLP on a real loopback TCP socket."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from starlette.testclient import TestClient

from gateway.adapters.hl7v2 import parse_message
from gateway.adapters.hl7v2.ack import AckReason, ack_code_for, acknowledgement
from gateway.adapters.hl7v2.framing import END, START, frame
from gateway.adapters.hl7v2.mllp import start_listener
from gateway.ingest.mllp import ack_handler, mllp_identity
from tests.adapters.rav_gateway import (  # noqa: F401 - fixtures
    rav_app,
    rav_client,
    rav_database_url,
    rav_service,
    rav_services,
)

MESSAGES = Path(__file__).parent / "rav_messages"
HL7V2 = "x-application/hl7-v2+er7"


def segments(ack: bytes) -> dict[str, list[str]]:
    parsed = parse_message(ack)
    return {segment.id: segment.raw_fields for segment in parsed.segments}


def test_ack_echoes_the_message_and_carries_the_reason() -> None:
    raw = (MESSAGES / "ADT_A04_ride_registration.hl7").read_bytes()
    ack = segments(acknowledgement(raw, "AE", AckReason("required", "PID-3: no \\ | identifier", "PID[2]-3")))
    assert ack["MSH"][9] == "ACK^A04^ACK" and ack["MSH"][5] == "AMBUREG" and ack["MSH"][6] == "RAV Utrecht^00000001^URA"
    assert ack["MSA"][1:3] == ["AE", "RAVU-20260608-000123"]
    assert parse_message(acknowledgement(raw, "AE", AckReason("required", "a | b"))).first("MSA").value(3) == "a | b"  # type: ignore[union-attr]
    assert ack["ERR"][2] == "PID^2^3" and ack["ERR"][3].startswith("101^") and ack["ERR"][4] == "E"


def test_ack_codes_for_ingestion_results() -> None:
    error = {"issue": [{"severity": "error", "code": "value", "diagnostics": "OBX[4]-5: 'x' is not a number",
                        "expression": ["OBX[4]-5"]}]}
    unsupported = {"issue": [{"severity": "error", "code": "not-supported", "diagnostics": "ADT^A99"}]}
    duplicate = {"issue": [{"severity": "information", "code": "duplicate", "diagnostics": "already ingested"}]}
    assert ack_code_for("accepted", None) == ("AA", None)
    assert ack_code_for("duplicate", duplicate)[0] == "AA"
    assert ack_code_for("rejected", error) == ("AE", AckReason("value", "OBX[4]-5: 'x' is not a number", "OBX[4]-5"))
    assert ack_code_for("rejected", unsupported)[0] == "AR"


def test_ack_for_an_unreadable_message_still_parses() -> None:
    ack = acknowledgement(b"\x00garbage", "AE", AckReason("structure", "not HL7v2"))
    assert segments(ack)["MSA"][1] == "AE"


def test_http_sender_asking_for_hl7_gets_ack_and_nak(rav_client: TestClient) -> None:  # noqa: F811
    raw = (MESSAGES / "ADT_A04_without_bsn.hl7").read_bytes()
    accepted = rav_client.post("/ingest/rav", content=frame(raw), headers={"Accept": HL7V2})
    assert accepted.status_code == 201 and accepted.headers["content-type"].startswith(HL7V2)
    assert segments(accepted.content)["MSA"][1:3] == ["AA", "RAVU-20260608-000200"]
    bad = raw.replace(b"RAVU-20260608-000200", b"RAVU-NAK-1").replace(b"PID|1||R-99001", b"PID|1||R\\Q\\1")
    nak = rav_client.post("/ingest/rav", content=bad, headers={"Accept": HL7V2})
    assert nak.status_code == 422
    ack = segments(nak.content)
    assert ack["MSA"][1] == "AE" and "PID-3" in ack["MSA"][3] and ack["ERR"][2] == "PID^1^3"
    unsupported = raw.replace(b"ADT^A04^ADT_A01", b"ADT^A99").replace(b"RAVU-20260608-000200", b"RAVU-NAK-2")
    assert segments(rav_client.post("/ingest/rav", content=unsupported, headers={"Accept": HL7V2}).content)["MSA"][1] \
        == "AR"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_mllp_listener_over_loopback(rav_service) -> None:  # noqa: F811  # type: ignore[no-untyped-def]
    port = _free_port()
    adt = (MESSAGES / "ADT_A04_ride_registration.hl7").read_bytes().replace(b"RAVU-20260608-000123", b"MLLP-1")
    broken = adt.replace(b"MLLP-1", b"MLLP-2").replace(b"PV2|", b"PV2 |")

    async def exchange() -> list[bytes]:
        server = await start_listener(ack_handler(rav_service, mllp_identity()), "127.0.0.1", port)
        async with server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            answers = []
            for message in (adt, broken, adt):  # three messages on one connection
                writer.write(frame(message))
                await writer.drain()
                answers.append(await asyncio.wait_for(reader.readuntil(END), 30))
            writer.write(b"no start block" + END)
            answers.append(await asyncio.wait_for(reader.readuntil(END), 30))
            writer.close()
            return answers

    first, second, third, unframed = asyncio.run(exchange())
    assert first.startswith(START)
    assert segments(first)["MSA"][1:3] == ["AA", "MLLP-1"]
    nak = segments(second)
    assert nak["MSA"][1:3] == ["AE", "MLLP-2"] and "segment 5" in nak["MSA"][3]
    assert segments(third)["MSA"][1] == "AA" and "already ingested" in segments(third)["MSA"][3]
    assert segments(unframed)["MSA"][1] == "AE"
    record = rav_service.records.get(rav_service.records.ids_with_status("rejected")[-1])
    assert record.submitted_by == "mllp-listener"

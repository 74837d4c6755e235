"""The IEEE 11073 MDC codes of the RAV vital-sign mapping, against what is available offline (docs/ingest.md,
"IEEE 11073 MDC codes"): the MDC system URI and the codes the HL7 R4 examples package uses for SpO2 and percent.
The other MDC codes are not in any offline list; this test pins them to the documented table so that a change is
deliberate, and checks the CODE10 arithmetic (partition x 2^16 + term code) they must satisfy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.adapters.hl7v2.codes import MDC
from gateway.adapters.rav.profiles import UNITS, VITAL_SIGNS

EXAMPLES = Path(__file__).resolve().parents[2] / "var" / "packages" / "hl7.fhir.r4.examples#4.0.1" / "package"
# code -> (REFID, partition, term code) as documented in docs/ingest.md; partition 2 = SCADA, 4 = DIM (units)
DOCUMENTED = {
    "150021": ("MDC_PRESS_BLD_NONINV_SYS", 2, 18949),
    "150022": ("MDC_PRESS_BLD_NONINV_DIA", 2, 18950),
    "150023": ("MDC_PRESS_BLD_NONINV_MEAN", 2, 18951),
    "147842": ("MDC_ECG_HEART_RATE", 2, 16770),
    "150456": ("MDC_PULS_OXIM_SAT_O2", 2, 19384),
    "150364": ("MDC_TEMP_BODY", 2, 19292),
    "151562": ("MDC_RESP_RATE", 2, 20490),
    "266016": ("MDC_DIM_MMHG", 4, 3872),
    "262688": ("MDC_DIM_PERCENT", 4, 544),
    "264864": ("MDC_DIM_BEAT_PER_MIN", 4, 2720),
    "268192": ("MDC_DIM_DEGC", 4, 6048),
    "264928": ("MDC_DIM_RESP_PER_MIN", 4, 2784),
}


def test_every_mdc_code_of_the_mapping_is_documented_and_consistent() -> None:
    used = {code for system, code in VITAL_SIGNS if system == MDC} | {code for code in UNITS if code.isdigit()}
    assert used == set(DOCUMENTED)
    for code, (refid, partition, term) in DOCUMENTED.items():
        assert int(code) == partition * 65536 + term, refid
        if refid in UNITS:  # the REFID spelling of a unit maps to the same UCUM unit as its code
            assert UNITS[refid] == UNITS[code], refid


@pytest.mark.skipif(not EXAMPLES.is_dir(), reason="the R4 examples package is not in var/packages (run make)")
def test_codes_confirmed_by_the_r4_examples_package() -> None:
    naming = json.loads((EXAMPLES / "Bundle-terminologies.json").read_text())
    mdc = next(e["resource"] for e in naming["entry"] if e["resource"].get("id") == "tx-mdc")
    assert {u["value"] for u in mdc["uniqueId"]} == {MDC, "2.16.840.1.113883.6.24"}
    spo2 = json.loads((EXAMPLES / "Observation-satO2.json").read_text())
    assert {"system": MDC, "code": "150456", "display": "MDC_PULS_OXIM_SAT_O2"} in spo2["code"]["coding"]
    metric = json.loads((EXAMPLES / "DeviceMetric-example.json").read_text())
    assert metric["type"]["coding"][0]["code"] == "150456"
    assert metric["unit"]["coding"][0] == {"system": MDC, "code": "262688", "display": "MDC_DIM_PERCENT"}

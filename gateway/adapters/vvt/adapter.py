"""`translate_vvt(raw, submitter)`: an eOverdracht message -> the translation the ingestion pipeline writes."""

from __future__ import annotations

from gateway.adapters.stu3 import Stu3Translation, translate_stu3

SOURCE = "vvt"


def translate_vvt(raw: bytes, submitter: str) -> Stu3Translation:
    return translate_stu3(raw, SOURCE, submitter)

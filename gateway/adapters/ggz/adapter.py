"""`translate_ggz(raw, submitter)`: a BgGGZ message -> the translation the ingestion pipeline writes, every resource
labelled as ggz data."""

from __future__ import annotations

from gateway.adapters.ggz.labels import label_ggz
from gateway.adapters.stu3 import Stu3Translation, translate_stu3

SOURCE = "ggz"


def translate_ggz(raw: bytes, submitter: str) -> Stu3Translation:
    translation = translate_stu3(raw, SOURCE, submitter)
    for mapped in translation.resources:
        label_ggz(mapped.resource)
    return translation

"""A QuestionnaireResponse against its Questionnaire: items matched by linkId (nesting included), required
items and groups, repeats and minOccurs, answer types, answer options and value sets, min/max values and
lengths, quantity units, attachment sizes, reference types, and the Questionnaire's effective period."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from conformance.terminology import Terminology

Report = Callable[[str, str, str, str], None]  # severity, code, message, expression
EXT = "http://hl7.org/fhir/StructureDefinition/"
SDC = "http://hl7.org/fhir/uv/sdc/StructureDefinition/"

ANSWER_TYPES: dict[str, tuple[str, ...]] = {
    "boolean": ("valueBoolean",), "decimal": ("valueDecimal",), "integer": ("valueInteger",),
    "date": ("valueDate",), "dateTime": ("valueDateTime",), "time": ("valueTime",),
    "string": ("valueString",), "text": ("valueString",), "url": ("valueUri",),
    "choice": ("valueCoding", "valueString"), "open-choice": ("valueCoding", "valueString"),
    "attachment": ("valueAttachment",), "reference": ("valueReference",), "quantity": ("valueQuantity",),
}
_TYPE_NAMES = {"url": "uri", "text": "string", "choice": "Coding", "open-choice": "Coding", "attachment": "Attachment",
               "reference": "Reference", "quantity": "Quantity"}


def _extensions(item: dict[str, Any], name: str) -> list[Any]:
    url = name if "://" in name else EXT + name
    return [e for e in item.get("extension", ()) if isinstance(e, dict) and e.get("url") == url]


def _ext_value(extension: dict[str, Any]) -> Any:
    return next((v for k, v in extension.items() if k.startswith("value")), None)


def _answer_value(answer: dict[str, Any]) -> tuple[str | None, Any]:
    for key, value in answer.items():
        if key.startswith("value"):
            return key, value
    return None, None


class QuestionnaireChecker:
    def __init__(self, terminology: Terminology, resource_types: frozenset[str], report: Report) -> None:
        self.terminology = terminology
        self.resource_types = resource_types
        self.report = report

    def check(self, response: dict[str, Any], questionnaire: dict[str, Any] | None, expression: str) -> None:
        if questionnaire is None:
            self.report("warning", "not-found",
                        f"The questionnaire '{response.get('questionnaire')}' could not be resolved, so no "
                        "validation can be performed against the base questionnaire", expression)
            return
        start = (questionnaire.get("effectivePeriod") or {}).get("start")
        authored = response.get("authored")
        if isinstance(start, str) and isinstance(authored, str) and authored[:len(start)] < start:
            self.report("warning", "business-rule",
                        f"The authored date '{authored}' is before the start of the permitted period defined in "
                        f"the Questionnaire ('{start}')", f"{expression}.authored")
        self.items(questionnaire.get("item", []), response.get("item", []), expression, expression)

    def items(self, definitions: list[dict[str, Any]], items: list[dict[str, Any]], parent: str, root: str) -> None:
        by_link = {d.get("linkId"): d for d in definitions if isinstance(d, dict)}
        seen: dict[str, int] = {}
        for index, item in enumerate(items if isinstance(items, list) else []):
            if not isinstance(item, dict):
                continue
            where = f"{parent}.item[{index}]"
            link = item.get("linkId")
            definition = by_link.get(link)
            if definition is None:
                self.report("error", "structure", f"LinkId '{link}' not found in questionnaire", root)
                continue
            seen[link] = seen.get(link, 0) + 1
            if seen[link] > 1 and not definition.get("repeats"):
                self.report("error", "structure", "Only one response answer item with this linkId allowed", where)
            self.item(definition, item, where, root)
        for definition in definitions:
            if not isinstance(definition, dict) or not definition.get("required") or definition.get("linkId") in seen:
                continue
            if definition.get("type") == "display" or definition.get("enableWhen"):
                continue
            if definition.get("type") == "group":
                self.report("error", "required", f"No response found for required group '{definition.get('linkId')}'",
                            parent)
            else:
                self.report("error", "required",
                            f"No response answer found for required item '{definition.get('linkId')}'", parent)

    def item(self, definition: dict[str, Any], item: dict[str, Any], where: str, root: str) -> None:
        kind = definition.get("type")
        answers = [a for a in item.get("answer", ()) if isinstance(a, dict)]
        if kind == "display":
            if answers:
                self.report("error", "structure", "Items of type 'display' cannot have answers", where)
            return
        if kind == "group":
            if answers:
                self.report("error", "structure", "Items of type group should not have answers", where)
            if definition.get("required") and not item.get("item"):
                self.report("error", "required", "No sub-items found for required group", where)
            self.items(definition.get("item", []), item.get("item", []), where, root)
            return
        if item.get("item") and not definition.get("item"):
            self.report("error", "structure", "Items of type question should not have answers", where)
        if definition.get("required") and not answers:
            self.report("error", "required",
                        f"No response answer found for required item '{definition.get('linkId')}'", where)
        for extension in _extensions(definition, "questionnaire-minOccurs"):
            minimum = _ext_value(extension)
            if isinstance(minimum, int) and len(answers) < minimum:
                self.report("error", "required",
                            f"The minimum number of answers is {minimum} but this has {len(answers)} answers", where)
        if len(answers) > 1 and not definition.get("repeats"):
            self.report("error", "structure", "Only one answer allowed for this item", where)
        for index, answer in enumerate(answers):
            self.answer(definition, answer, f"{where}.answer[{index}]", root)
            if answer.get("item"):
                self.items(definition.get("item", []), answer["item"], f"{where}.answer[{index}]", root)

    def answer(self, definition: dict[str, Any], answer: dict[str, Any], where: str, root: str) -> None:
        kind = definition.get("type")
        key, value = _answer_value(answer)
        if key is None:
            return
        allowed = ANSWER_TYPES.get(kind or "")
        value_where = f"{where}.value"
        if allowed is not None and key not in allowed:
            wanted = _TYPE_NAMES.get(kind or "", kind)
            found = key[5:6].lower() + key[6:] if key[5:6].lower() + key[6:] in ANSWER_TYPE_PRIMITIVES else key[5:]
            self.report("error", "structure", f"Answer value must be of the type {wanted} not {found}", value_where)
            return
        if isinstance(value, str) and kind == "string" and "\n" in value:
            self.report("warning", "business-rule", "The answer should not contain new line characters", value_where)
        self._options(definition, key, value, where)
        self._bounds(definition, key, value, value_where)
        if key == "valueQuantity" and isinstance(value, dict):
            self._units(definition, value, value_where)
        if key == "valueAttachment" and isinstance(value, dict):
            self._attachment(definition, value, where)
        if key == "valueReference" and isinstance(value, dict):
            self._reference(definition, value, value_where)

    def _options(self, definition: dict[str, Any], key: str, value: Any, where: str) -> None:
        options = [o for o in definition.get("answerOption", ()) if isinstance(o, dict)]
        if options:
            values = [_answer_value(o)[1] for o in options]
            if key == "valueCoding" and isinstance(value, dict):
                ok = any(isinstance(v, dict) and v.get("code") == value.get("code")
                         and (v.get("system") == value.get("system") or not v.get("system")) for v in values)
                if not ok:
                    self.report("error", "code-invalid",
                                f"The code {value.get('system')}::{value.get('code')} is not in the set of permitted "
                                "values", where)
            elif key != "valueString" or definition.get("type") != "open-choice":
                if value not in values:
                    shown = value if not isinstance(value, dict) else value.get("code")
                    self.report("error", "code-invalid", f"The {key[5:].lower()} {shown} is not in the set of "
                                "permitted values", f"{where}.value")
            return
        value_set = definition.get("answerValueSet")
        if isinstance(value_set, str) and key == "valueCoding" and isinstance(value, dict):
            if value_set.startswith("#"):
                return
            if self.terminology.expand(value_set) is None:
                self.report("warning", "not-found", f"ValueSet '{value_set}' not found", where)
                return
            if self.terminology.validate_code(value.get("system"), value.get("code", ""), value_set) is False:
                self.report("error", "code-invalid",
                            f"The code '{value.get('code')}' in the system '{value.get('system')}' is not in the "
                            f"options value set ({value_set}) specified by the questionnaire", where)

    def _bounds(self, definition: dict[str, Any], key: str, value: Any, where: str) -> None:
        for name, smaller in (("minValue", True), ("maxValue", False), (SDC + "sdc-questionnaire-minQuantity", True),
                              (SDC + "sdc-questionnaire-maxQuantity", False)):
            for extension in _extensions(definition, name):
                bound = _ext_value(extension)
                if bound is None:
                    continue
                if isinstance(value, dict) and isinstance(bound, dict):
                    self._quantity_bound(value, bound, smaller, where)
                    continue
                try:
                    outside = value < bound if smaller else value > bound
                except TypeError:
                    continue
                if outside:
                    self.report("error", "value", f"The value {value} is {'less' if smaller else 'greater'} than the "
                                f"allowed {'minimum' if smaller else 'maximum'} of {bound}", where)
        if isinstance(value, str):
            minimum = next((_ext_value(e) for e in _extensions(definition, "minLength")), None)
            if isinstance(minimum, int) and len(value) < minimum:
                self.report("error", "value",
                            f"The answer '{value}' is shorter then the required minimum length of {minimum}", where)
            maximum = definition.get("maxLength")
            if isinstance(maximum, int) and len(value) > maximum:
                self.report("error", "value",
                            f"The answer '{value}' is longer then the allowed maximum length of {maximum}", where)

    def _quantity_bound(self, value: dict[str, Any], bound: dict[str, Any], smaller: bool, where: str) -> None:
        which = "minimum" if smaller else "maximum"
        if not (value.get("system") and value.get("code") and bound.get("system") and bound.get("code")):
            self.report("error", "value", f"The quantity {value.get('value')} {value.get('unit', '')} cannot be "
                        f"compared to the allowed {which} because no formal units are specified", where)
            return
        if (value["system"], value["code"]) != (bound["system"], bound["code"]):
            self.report("error", "value", f"The quantity {value.get('value')} ({value['code']}) cannot be compared "
                        f"to the allowed {which} ({bound['code']})", where)
            return
        a, b = Decimal(str(value.get("value", 0))), Decimal(str(bound.get("value", 0)))
        if (a < b) if smaller else (a > b):
            self.report("error", "value", f"The value {a} is {'less' if smaller else 'greater'} than the allowed "
                        f"{which} of {b}", where)

    def _units(self, definition: dict[str, Any], value: dict[str, Any], where: str) -> None:
        options = [_ext_value(e) for e in _extensions(definition, "questionnaire-unitOption")]
        options = [o for o in options if isinstance(o, dict)]
        if options and not any(o.get("code") == value.get("code") and o.get("system") == value.get("system")
                               for o in options):
            self.report("error", "code-invalid",
                        f"The value {value.get('value')} {value.get('unit', '')} has a unit that is not valid", where)
        for extension in _extensions(definition, "questionnaire-unitValueSet"):
            value_set = _ext_value(extension)
            if not isinstance(value_set, str):
                continue
            system, code = value.get("system"), value.get("code")
            if not system or not code or self.terminology.validate_code(system, str(code), value_set) is False:
                self.report("error", "code-invalid", f"The value {value.get('value')} {value.get('unit', '')} has a "
                            f"unit that is not in the unit value set '{value_set}'", where)

    def _attachment(self, definition: dict[str, Any], value: dict[str, Any], where: str) -> None:
        size = attachment_size(value)
        maximum = next((_ext_value(e) for e in _extensions(definition, "maxSize")), None)
        if size is not None and isinstance(maximum, int | Decimal) and size > maximum:
            self.report("error", "too-long", f"The attachment is too large (allowed = {maximum}, found = {size})",
                        where)

    def _reference(self, definition: dict[str, Any], value: dict[str, Any], where: str) -> None:
        reference = value.get("reference")
        if not isinstance(reference, str) or reference.startswith(("#", "urn:")):
            return
        parts = reference.split("/_history/")[0].rstrip("/").split("/")
        if len(parts) < 2:
            return
        target = parts[-2]
        if target not in self.resource_types:
            self.report("error", "structure", f"The resource type {target} in the reference {reference} is not valid",
                        where)
            return
        allowed = [_ext_value(e) for e in _extensions(definition, "questionnaire-referenceResource")]
        allowed = [a for a in allowed if isinstance(a, str)]
        if allowed and target not in allowed:
            self.report("error", "structure", f"The resource type '{target}' in the reference {reference} is not "
                        f"allowed (allowed = {','.join(allowed)})", where)


ANSWER_TYPE_PRIMITIVES = frozenset({"boolean", "decimal", "integer", "date", "dateTime", "time", "string", "uri"})


def attachment_size(attachment: dict[str, Any]) -> int | None:
    """The decoded size of `data` (None when there is no data or it is not base64)."""
    data = attachment.get("data")
    if not isinstance(data, str):
        return None
    try:
        return len(base64.b64decode(data, validate=False))
    except (binascii.Error, ValueError):
        return None


def check_attachment_size(attachment: dict[str, Any], report: Callable[[str, str, str], None]) -> None:
    """Attachment.size must be the size of the data, when both are given."""
    stated = attachment.get("size")
    actual = attachment_size(attachment)
    if isinstance(stated, int | Decimal) and actual is not None and stated != actual:
        report("error", "structure", f"Stated Attachment Size {stated} does not match actual attachment size {actual}")

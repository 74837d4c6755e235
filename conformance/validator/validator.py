"""The validator's public face: parse (JSON or XML), check structure, walk the base definition and every
profile that applies (requested, or claimed in `meta.profile`), recurse into contained resources and Bundle
entries, and return the issues as an OperationOutcome."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from conformance import fhirjson
from conformance.packages import PackageSet
from conformance.validator.checks import bundles, definitions, resource_rules, signatures
from conformance.validator.checks.questionnaire import QuestionnaireChecker
from conformance.validator.issues import Issue, operation_outcome
from conformance.validator.locations import Locations, json_locations, locate
from conformance.validator.model import CORE_PREFIX
from conformance.validator.registry import ProfileRegistry
from conformance.validator.walker import Item, ResourceScope, Walker


class Validator:
    """Validate FHIR R4 resources against the base specification and profiles.

        validator = Validator(PackageSet.from_paths([...]))
        outcome = validator.validate(resource, profiles=["http://nictiz.nl/fhir/StructureDefinition/nl-core-Patient"])
    """

    def __init__(self, packages: PackageSet | None = None, unknown_extensions: str = "error",
                 contained: str = "validate", display_issues: str = "warning", vital_signs_by_code: bool = False,
                 allowed_extension_domains: Sequence[str] = (), type_model: Any = None) -> None:
        """`unknown_extensions="warning"` reports an extension whose definition is not loaded as a warning (not
        checked) instead of an error, as the HL7 validator's allow-any-extensions option; unknown modifier
        extensions stay errors. `contained="ignore"` leaves contained resources unchecked (neither validated
        nor required to be referenced, dom-3), as the HL7 validator's validateContains=IGNORE.
        `display_issues="error"` reports a display that is not a designation of its code as an error, as the HL7
        validator does by default; the default here is a warning (its `-display-issues-are-warnings`), because
        official Nictiz examples carry displays that are not designations in the HL7 CodeSystems.
        `vital_signs_by_code=True` applies the spec's vital-signs profiles (bodytemp, heartrate, ...) to an
        Observation whose code is one of theirs, as the HL7 validator does ("SHALL conform"), unless the
        Observation claims a profile that is loaded; off by default, as the gateway accepts plain Observations.
        `allowed_extension_domains`: URL prefixes whose extensions are accepted unchecked when their definition is
        not loaded (Java's `-allowed-extension-domain`). `type_model`: the `conformance.typemodel.TypeModel` the
        structure check uses (default: the one for the environment's packages)."""
        if packages is None:
            from conformance.typemodel import package_paths_from_environment

            packages = PackageSet.from_paths(p for p in package_paths_from_environment() if p.exists())
        self.packages = packages
        self.registry = ProfileRegistry(packages)
        self.unknown_extensions = unknown_extensions
        if contained not in ("validate", "ignore"):
            raise ValueError(f"contained must be 'validate' or 'ignore', not {contained!r}")
        self.contained = contained
        if display_issues not in ("warning", "error"):
            raise ValueError(f"display_issues must be 'warning' or 'error', not {display_issues!r}")
        self.display_issues = display_issues
        self.vital_signs_by_code = vital_signs_by_code
        self.allowed_extension_domains = tuple(allowed_extension_domains)
        self.type_model = type_model

    def add_definitions(self, resources: Iterable[dict[str, Any]]) -> None:
        """Supporting StructureDefinitions, ValueSets and CodeSystems outside the loaded packages."""
        for resource in resources:
            self.registry.add(resource)

    # -- entry points ---------------------------------------------------------------------------------------

    def validate(self, resource: dict[str, Any] | bytes | str, profiles: Sequence[str] = (),
                 content_type: str | None = None) -> dict[str, Any]:
        """An OperationOutcome dict (errors, warnings, information; 'All OK' when clean)."""
        return operation_outcome(self.validate_issues(resource, profiles, content_type))

    def validate_file(self, path: str | Path, profiles: Sequence[str] = ()) -> dict[str, Any]:
        path = Path(path)
        content_type = "xml" if path.suffix.lower() == ".xml" else "json"
        return self.validate(path.read_bytes(), profiles, content_type)

    def validate_issues(self, resource: dict[str, Any] | bytes | str, profiles: Sequence[str] = (),
                        content_type: str | None = None, structure: Sequence[Any] | None = None) -> list[Issue]:
        """`structure`: what `conformance.structure.check_structure(resource, self.type_model)` found, when the
        caller has it already (it is not computed again)."""
        locations: Locations | None = None
        if isinstance(resource, bytes | str):
            parsed = self._parse(resource, content_type)
            if isinstance(parsed, Issue):
                return [parsed]
            resource, locations = parsed
        issues: list[Issue] = []
        self._validate_top(resource, profiles, issues, structure)
        for issue in issues:
            position = locate(locations, _location_key(issue.expression))
            if position is not None:
                issue.line, issue.column = position
        return issues

    def conforms(self, value: Any, profile_url: str) -> bool:
        """Whether a resource or element conforms to a profile (no errors); used by slicing and conformsTo()."""
        compiled = self.registry.profile(profile_url)
        if compiled is None:
            return False
        if not isinstance(value, dict):
            return False
        sink: list[Issue] = []
        if "resourceType" in value:
            if value["resourceType"] != compiled.type:
                return False
            scope = self._scope(value, value.get("resourceType", ""), value, None)
            self._walker(sink).walk_resource(value, compiled, scope, is_base=compiled.derivation != "constraint")
        else:
            scope = self._scope(value, "", value, None)
            walker = self._walker(sink)
            walker.check_item_rules(Item(value, None, compiled.type, "", 0), compiled.root, compiled, scope)
            walker.walk_object(value, compiled.root, compiled, scope, "", False)
        return not any(issue.is_error for issue in sink)

    # -- internals -------------------------------------------------------------------------------------------

    def _parse(self, raw: bytes | str, content_type: str | None) -> tuple[dict[str, Any], Locations | None] | Issue:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        is_xml = content_type == "xml" or (content_type is None and text.lstrip().startswith("<"))
        if is_xml:
            from lxml import etree

            from conformance.fhirxml import FhirXmlError, xml_to_json
            from conformance.validator.locations import xml_locations

            try:
                resource = xml_to_json(raw if isinstance(raw, bytes) else raw.encode())
            except FhirXmlError as error:
                return Issue("fatal", "structure", f"Error parsing XML: {error}", "$")
            try:
                locations = xml_locations(etree.fromstring(raw if isinstance(raw, bytes) else raw.encode(),
                                                           etree.XMLParser(resolve_entities=False, no_network=True)))
            except etree.XMLSyntaxError:
                locations = None
            return resource, locations
        try:
            resource = fhirjson.loads(raw)
        except fhirjson.FhirJsonError as error:
            return Issue("fatal", "structure", f"Error parsing JSON: {error}", "$")
        if not isinstance(resource, dict):
            return Issue("fatal", "structure", "The JSON is not an object", "$")
        return resource, json_locations(text)

    def _walker(self, sink: list[Issue]) -> Walker:
        return Walker(self.registry, sink, lambda *args: self._nested(sink, *args), self.conforms,
                      self.unknown_extensions, skip_invariants=_CONTAINED_INVARIANTS if self.contained == "ignore"
                      else frozenset(), display_severity=self.display_issues,
                      allowed_extension_domains=self.allowed_extension_domains)

    def _validate_top(self, resource: dict[str, Any], profiles: Sequence[str], issues: list[Issue],
                      structure: Sequence[Any] | None = None) -> None:
        resource_type = resource.get("resourceType")
        if not isinstance(resource_type, str):
            issues.append(Issue("fatal", "structure", "Unable to find resourceType property", "$"))
            return
        if self.registry.base(resource_type) is None:
            issues.append(Issue("fatal", "structure", f"Unknown resource type '{resource_type}'", resource_type))
            return
        self._structure(resource, resource_type, issues, structure)
        scope = self._scope(resource, resource_type, resource, None)
        self._validate_resource(resource, scope, list(profiles), issues, is_base=True)

    def _structure(self, resource: dict[str, Any], expression: str, issues: list[Issue],
                   found: Sequence[Any] | None = None) -> None:
        from conformance.structure import check_structure

        if found is None:
            try:
                found = check_structure(resource, self.type_model)
            except Exception:  # noqa: BLE001 - the type model may be unavailable; the profile walk still runs
                return
        for issue in found:
            if issue.code == "required":
                continue  # cardinality is reported by the profile walk, with the profile's numbers
            if self.contained == "ignore" and ".contained[" in issue.expression:
                continue
            issues.append(Issue(issue.severity, issue.code, issue.message, _rebase(issue.expression, expression)))

    def _scope(self, resource: dict[str, Any], expression: str, root: dict[str, Any],
               bundle: bundles.BundleIndex | None, container: dict[str, Any] | None = None) -> ResourceScope:
        holder = container if container is not None else resource
        contained = {
            c["id"]: c for c in holder.get("contained", ()) if isinstance(c, dict) and isinstance(c.get("id"), str)
        } if isinstance(holder.get("contained"), list) else {}

        def resolve(reference: str) -> dict[str, Any] | None:
            if reference.startswith("#"):
                if reference == "#":
                    return holder
                return contained.get(reference[1:])
            if bundle is not None:
                return bundle.resolve(reference)
            return None

        return ResourceScope(resource, expression, root, resolve, bundle.kind if bundle else None, contained,
                             reference_problem=bundle.problem if bundle else None)

    def _validate_resource(self, resource: dict[str, Any], scope: ResourceScope, profiles: list[str],
                           issues: list[Issue], is_base: bool) -> None:
        resource_type = resource.get("resourceType", "")
        walker = self._walker(issues)
        wanted: list[str] = []
        if is_base:
            base = self.registry.base(resource_type)
            if base is not None:
                walker.walk_resource(resource, base, scope, is_base=True)
            claimed = resource.get("meta", {}).get("profile", []) if isinstance(resource.get("meta"), dict) else []
            wanted.extend(p for p in claimed if isinstance(p, str))
            if resource_type == "Observation" and self.vital_signs_by_code \
                    and not any(self.registry.profile(url) for url in wanted):
                # the spec's vital-signs profiles, unless the resource claims a profile that is loaded: that is
                # its statement of conformance (Nictiz models its vital signs beside, not on, the HL7 ones)
                vital = resource_rules.vital_signs_profile(resource)
                if vital is not None and vital[0] not in wanted:
                    issues.append(Issue("information", "informational", vital[1], scope.expression))
                    wanted.append(vital[0])
        for url in profiles:
            if url not in wanted:
                wanted.append(url)
        for url in wanted:
            compiled = self.registry.profile(url)
            if compiled is None:
                problem = self.registry.problem(url)
                issues.append(Issue("warning" if problem is None else "error", "not-found",
                                    f"Profile {url} could not be {'found' if problem is None else 'used: ' + problem}"
                                    ", so the resource was not checked against it", scope.expression))
                continue
            if compiled.type != resource_type and compiled.type not in ("Resource", "DomainResource"):
                issues.append(Issue("error", "structure",
                                    f"The profile {url} is for {compiled.type}, not {resource_type}",
                                    scope.expression))
                continue
            if compiled.url.startswith(CORE_PREFIX) and compiled.derivation != "constraint":
                continue  # the base definition has been walked already
            walker.walk_resource(resource, compiled, scope, is_base=False)
        if is_base and resource_type == "QuestionnaireResponse":
            self._questionnaire_response(resource, scope, issues)
        if is_base:
            self._resource_rules(resource, resource_type, scope, issues)
        if is_base and resource_type == "Bundle":
            bundles.check_entries(resource, scope.expression,
                                  lambda s, c, m, e: issues.append(Issue(s, c, m, e)))

    def _resource_rules(self, resource: dict[str, Any], resource_type: str, scope: ResourceScope,
                        issues: list[Issue]) -> None:
        def report(severity: str, code: str, message: str, expression: str) -> None:
            issues.append(Issue(severity, code, message, expression))

        if resource_type == "MeasureReport" and isinstance(resource.get("measure"), str):
            measure = self.registry.resource(resource["measure"])
            if measure is not None and measure.get("resourceType") == "Measure":
                resource_rules.check_measure_report(resource, measure, scope.expression, report)
        elif resource_type == "Bundle":
            signatures.check_bundle_signature(resource, scope.expression, report)
        elif resource_type == "StructureDefinition":
            base_url = resource.get("baseDefinition")
            base_profile = self.registry.profile(base_url) if isinstance(base_url, str) else None
            definitions.check_structure_definition(resource, base_profile, self.registry.base, scope.expression,
                                                   report)
        elif resource_type == "SearchParameter":
            derived_from = resource.get("derivedFrom")
            parent = self.registry.resource(derived_from) if isinstance(derived_from, str) else None
            resource_rules.check_search_parameter(resource, parent, self.registry.resource_types,
                                                  scope.expression, report)

    def _questionnaire_response(self, response: dict[str, Any], scope: ResourceScope, issues: list[Issue]) -> None:
        canonical = response.get("questionnaire")
        if not isinstance(canonical, str):
            return
        if canonical.startswith("#"):
            questionnaire = scope.resolve_reference(canonical)
        else:
            questionnaire = self.registry.resource(canonical)
        if questionnaire is not None and questionnaire.get("resourceType") != "Questionnaire":
            questionnaire = None
        checker = QuestionnaireChecker(self.registry.terminology, self.registry.resource_types,
                                       lambda s, c, m, e: issues.append(Issue(s, c, m, e)))
        checker.check(response, questionnaire, scope.expression)

    def _nested(self, issues: list[Issue], resource: dict[str, Any], expression: str, scope: ResourceScope,
                profiles: list[str], is_base: bool) -> None:
        """A resource inside another: contained, a Bundle entry, a Parameters value."""
        if not isinstance(resource.get("resourceType"), str):
            issues.append(Issue("error", "structure", "Unable to find resourceType property", expression))
            return
        if self.registry.base(resource["resourceType"]) is None:
            issues.append(Issue("error", "structure", f"Unknown resource type '{resource['resourceType']}'",
                                expression))
            return
        parent = scope.resource
        if expression.startswith(scope.expression + ".contained["):
            if self.contained == "ignore":
                return
            nested_scope = self._scope(resource, expression, scope.root, None, container=parent)
            nested_scope.resolve_reference = _chain(nested_scope.resolve_reference, scope.resolve_reference)
        elif parent.get("resourceType") == "Bundle":
            if scope.own_bundle_index is None:
                scope.own_bundle_index = bundles.BundleIndex(parent)
            index = scope.own_bundle_index
            nested_scope = self._scope(resource, expression, resource, index)
        else:
            nested_scope = self._scope(resource, expression, resource, None)
            nested_scope.resolve_reference = _chain(nested_scope.resolve_reference, scope.resolve_reference)
            nested_scope.in_bundle_kind = scope.in_bundle_kind
            nested_scope.reference_problem = scope.reference_problem
        if len(profiles) > 1:
            self._validate_resource(resource, nested_scope, [], issues, is_base)
            self._validate_any_of(resource, nested_scope, profiles, issues)
            return
        self._validate_resource(resource, nested_scope, profiles, issues, is_base)

    def _validate_any_of(self, resource: dict[str, Any], scope: ResourceScope, profiles: list[str],
                         issues: list[Issue]) -> None:
        """Several profiles on a type are alternatives: the resource must conform to one of them. A profile that
        cannot be used leaves the question open (a warning), as it might have matched."""
        attempts: list[list[Issue]] = []
        unusable: list[str] = []
        evaluated = set(scope.evaluated)
        for url in profiles:
            if self.registry.profile(url) is None:
                unusable.append(url)
                continue
            sink: list[Issue] = []
            scope.evaluated = set(evaluated)
            self._validate_resource(resource, scope, [url], sink, is_base=False)
            if not any(issue.is_error for issue in sink):
                issues.extend(sink)
                return
            attempts.append(sink)
        if unusable:
            usable = " or ".join(p for p in profiles if p not in unusable) or "any usable profile"
            issues.append(Issue("warning", "not-found",
                                f"The resource does not conform to {usable}, and could not be checked against "
                                f"{' or '.join(unusable)}", scope.expression))
            return
        issues.append(Issue("error", "structure",
                            f"The resource does not conform to any of the profiles {', '.join(profiles)}",
                            scope.expression))
        for sink in attempts:
            issues.extend(sink)


_CONTAINED_INVARIANTS = frozenset({"dom-3"})  # contained resources are referenced: not checked when ignored


def _chain(first: Any, second: Any) -> Any:
    def resolve(reference: str) -> dict[str, Any] | None:
        return first(reference) or second(reference)
    return resolve


def _rebase(expression: str, root: str) -> str:
    return expression if expression.startswith(root) else f"{root}.{expression}" if expression else root


def _location_key(expression: str) -> str:
    """`Observation.value.ofType(Quantity)` -> `Observation.valueQuantity` (the JSON property name)."""
    return re.sub(r"\.(\w+)\.ofType\((\w)(\w*)\)", lambda m: f".{m.group(1)}{m.group(2).upper()}{m.group(3)}",
                  expression)


"""The OpenAPI description of the FHIR REST API (`/openapi.json`), generated — like the CapabilityStatement,
and from it — from what the server registers: resource types, interactions, search parameters (per type, from
the registry), operations (parameters from their OperationDefinitions when the loaded packages have them), the
two formats and the SMART security scheme. The FHIR routes are one catch-all Starlette route, which FastAPI
cannot describe by itself; this module adds the paths FHIR defines on it, so that clients and fuzzers
(tests/reliability/test_schemathesis.py) see what the server actually accepts."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from gateway.fhir.capability import capability_statement
from gateway.fhir.context import RequestScope, Services
from gateway.fhir.formats import JSON, XML

BASE = "/fhir"
ID = r"^[A-Za-z0-9\-.]{1,64}$"  # FHIR `id` (gateway.fhir.write_checks.ID_PATTERN)
_PREFIX = "(eq|ne|gt|lt|ge|le|sa|eb|ap)?"
_NUMBER = r"[+-]?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?"
_DATE = r"[0-9]{4}(-[0-9]{2}(-[0-9]{2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?)?)?"
_VALUE_SCHEMAS: dict[str, dict[str, Any]] = {  # one value of a search parameter (commas OR several of them)
    "date": {"type": "string", "pattern": f"^{_PREFIX}{_DATE}$"},
    "number": {"type": "string", "pattern": f"^{_PREFIX}{_NUMBER}$"},
    "quantity": {"type": "string", "pattern": rf"^{_PREFIX}{_NUMBER}(\|[^|]*\|[^|]*)?$"},
    "token": {"type": "string", "description": "[system|]code"},
    "reference": {"type": "string", "description": "[Type/]id or an absolute URL"},
}
_STRING = {"type": "string"}
# The methods each operation handler accepts (the others answer 405); FHIR's default for the rest.
_OPERATION_METHODS = {"validate": ("post",), "process-message": ("post",), "summary": ("get",),
                      "explain-access": ("get",)}
_PRIMITIVE_SCHEMAS = {"boolean": {"type": "string", "enum": ["true", "false"]},
                      "integer": {"type": "string", "pattern": "^[0-9]{1,9}$"},
                      "dateTime": {"type": "string", "pattern": f"^{_DATE}$"}}


def install_openapi(app: FastAPI, services: Services) -> None:
    """Make `app.openapi()` (served at /openapi.json) FastAPI's own description plus the FHIR paths."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(title=app.title, version=app.version, routes=app.routes,
                               description="zcc-gateway: FHIR R4 (4.0.1) server, ingestion and capacity feeds. "
                               f"The FHIR API lives under {BASE}; its CapabilityStatement is {BASE}/metadata.")
            fhir = fhir_openapi(services)
            spec["paths"] = {**spec.get("paths", {}), **fhir["paths"]}
            components = spec.setdefault("components", {})
            for section, values in fhir["components"].items():
                components.setdefault(section, {}).update(values)
            spec["tags"] = fhir["tags"]
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def fhir_openapi(services: Services) -> dict[str, Any]:
    """`paths`, `components` and `tags` for the FHIR API, from the CapabilityStatement of this server."""
    rest = capability_statement(RequestScope(services))["rest"][0]
    return _Builder(services, rest).build()


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _param(name: str, where: str = "query", schema: dict[str, Any] | None = None, description: str = "",
           required: bool = False) -> dict[str, Any]:
    param: dict[str, Any] = {"name": name, "in": where, "required": required, "schema": schema or _STRING}
    if description:
        param["description"] = description
    return param


def _short(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first if len(first) <= 200 else first[:197] + "..."


class _Builder:
    def __init__(self, services: Services, rest: dict[str, Any]) -> None:
        self.services = services
        self.rest = rest
        self.types = sorted(entry["type"] for entry in rest["resource"])
        self.type_interactions = {i["code"] for entry in rest["resource"][:1] for i in entry.get("interaction", [])}
        self.system_interactions = {i["code"] for i in rest.get("interaction", [])}
        self.paths: dict[str, dict[str, Any]] = {}
        self.secured = bool(rest.get("security"))

    # -- the pieces -----

    def components(self) -> dict[str, Any]:
        resource = {
            "type": "object",
            "description": "A FHIR R4 resource (JSON representation; the XML representation carries the same "
            "content). Which elements are allowed depends on `resourceType` and its profiles.",
            "required": ["resourceType"],
            "properties": {
                "resourceType": {"type": "string", "enum": self.types},
                "id": {"type": "string", "pattern": ID},
                "meta": {"type": "object", "properties": {
                    "versionId": {"type": "string"}, "lastUpdated": {"type": "string"},
                    "profile": {"type": "array", "items": {"type": "string"}}}},
            },
            "additionalProperties": True,
        }
        entry_request = {
            "type": "object", "required": ["method", "url"],
            "properties": {"method": {"type": "string", "enum": ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"]},
                           "url": {"type": "string"}, "ifMatch": {"type": "string"},
                           "ifNoneExist": {"type": "string"}, "ifNoneMatch": {"type": "string"}},
        }
        bundle = {
            "type": "object", "required": ["resourceType", "type"],
            "properties": {
                "resourceType": {"type": "string", "enum": ["Bundle"]},
                "type": {"type": "string", "enum": ["document", "message", "transaction", "transaction-response",
                                                    "batch", "batch-response", "history", "searchset",
                                                    "collection"]},
                "total": {"type": "integer", "minimum": 0},
                "link": {"type": "array", "items": {"type": "object", "properties": {
                    "relation": {"type": "string"}, "url": {"type": "string"}}}},
                "entry": {"type": "array", "items": {"type": "object", "properties": {
                    "fullUrl": {"type": "string"}, "resource": _ref("Resource"), "request": entry_request,
                    "response": {"type": "object"}, "search": {"type": "object"}}}},
            },
            "additionalProperties": True,
        }
        request_bundle = {**bundle, "properties": {**bundle["properties"], "type": {
            "type": "string", "enum": sorted(code for code in ("batch", "transaction")
                                             if code in self.system_interactions)}}}
        outcome = {
            "type": "object", "required": ["resourceType", "issue"],
            "properties": {
                "resourceType": {"type": "string", "enum": ["OperationOutcome"]},
                "issue": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "required": ["severity", "code"],
                    "properties": {"severity": {"type": "string",
                                                "enum": ["fatal", "error", "warning", "information"]},
                                   "code": {"type": "string"}, "diagnostics": {"type": "string"},
                                   "expression": {"type": "array", "items": {"type": "string"}}}}},
            },
            "additionalProperties": True,
        }
        capability = {"type": "object", "required": ["resourceType", "fhirVersion"],
                      "properties": {"resourceType": {"type": "string", "enum": ["CapabilityStatement"]},
                                     "fhirVersion": {"type": "string"}}, "additionalProperties": True}
        search_form = {"type": "object", "description": "search parameters, as in the query string",
                       "properties": {name: p["schema"] for name, p in self.common_params().items()
                                      if name not in {"_type", "_format", "_pretty"}},
                       "additionalProperties": {"type": "string"}}
        components: dict[str, Any] = {"parameters": self.common_params(), "responses": self.error_responses(),
                                      "schemas": {
            "Resource": resource, "Bundle": bundle, "RequestBundle": request_bundle,
            "OperationOutcome": outcome, "CapabilityStatement": capability, "SearchForm": search_form}}
        security = self.rest.get("security") or {}
        urls = {ext.get("url"): ext.get("valueUri") for extension in security.get("extension", [])
                for ext in extension.get("extension", [])}
        token_url = urls.get("token") or "/auth/token"
        components["securitySchemes"] = {
            "smart": {"type": "oauth2", "description": "SMART Backend Services: a client-credentials grant with a "
                      "signed JWT client assertion (private_key_jwt); scopes like system/Patient.rs",
                      "flows": {"clientCredentials": {"tokenUrl": token_url, "scopes": {
                          "system/*.cruds": "every interaction on every type (narrowed by the client registration)",
                      }}}},
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
        }
        return components

    def common_params(self) -> dict[str, dict[str, Any]]:
        """The parameters that shape a search result, plus `_id`/`_lastUpdated` (every type has them) and the
        format parameters: `components.parameters`, referenced by every search."""
        params = [
            _param("_count", schema={"type": "string", "pattern": "^[0-9]{1,9}$"},
                   description=f"page size (at most {self.services.settings.max_count})"),
            _param("_offset", schema={"type": "string", "pattern": "^[0-9]{1,9}$"}),
            _param("_sort", description="comma-separated parameter names, `-` for descending"),
            _param("_summary", schema={"type": "string", "enum": ["true", "false", "text", "data", "count"]}),
            _param("_elements", description="comma-separated element names"),
            _param("_total", schema={"type": "string", "enum": ["none", "estimate", "accurate"]}),
            _param("_include", description="Type:param[:Target]"),
            _param("_revinclude", description="Type:param[:Target]"),
            _param("_type", description="comma-separated resource types (system-level search only)"),
            _param("_format", schema={"type": "string", "enum": ["json", "xml", JSON, XML]},
                   description="response format; overrides Accept"),
            _param("_pretty", schema={"type": "string", "enum": ["true", "false"]}),
            *(self.search_param(entry) for entry in self.rest.get("searchParam", [])),
        ]
        return {param["name"]: param for param in params}

    @staticmethod
    def param_ref(name: str) -> dict[str, str]:
        return {"$ref": f"#/components/parameters/{name}"}

    def result_params(self, system: bool = False) -> list[dict[str, Any]]:
        names = ["_count", "_offset", "_sort", "_summary", "_elements", "_total", "_include", "_revinclude"]
        names += ["_type"] if system else []
        names += [entry["name"] for entry in self.rest.get("searchParam", [])]
        return [self.param_ref(name) for name in names]

    def search_param(self, entry: dict[str, Any]) -> dict[str, Any]:
        schema = _VALUE_SCHEMAS.get(entry["type"], _STRING)
        text = f"{entry['type']}: {_short(entry.get('documentation', ''))}".rstrip(": ")
        return _param(entry["name"], schema=schema, description=text)

    def format_params(self) -> list[dict[str, Any]]:
        return [self.param_ref("_format"), self.param_ref("_pretty")]

    def type_param(self) -> dict[str, Any]:
        return _param("type", "path", {"type": "string", "enum": self.types}, "a resource type the server knows",
                      required=True)

    @staticmethod
    def id_param(name: str = "id", description: str = "logical id") -> dict[str, Any]:
        return _param(name, "path", {"type": "string", "pattern": ID}, description, required=True)

    @staticmethod
    def body(schema: str, description: str, required: bool = True) -> dict[str, Any]:
        return {"required": required, "description": description,
                "content": {JSON: {"schema": _ref(schema)}, XML: {"schema": _ref(schema)}}}

    @staticmethod
    def error_responses() -> dict[str, Any]:
        """`components.responses`: every error is an OperationOutcome, in the negotiated format."""
        texts: dict[int | str, str] = {400: "invalid request (OperationOutcome)", 401: "no or an invalid access token",
                 403: "not allowed for this token or by consent", 404: "unknown type, resource or version",
                 405: "method not allowed here", 406: "the requested format cannot be produced",
                 409: "version conflict", 410: "deleted", 412: "precondition (If-Match, condition) failed",
                 413: "body too large", 415: "unsupported Content-Type", 422: "the resource does not conform",
                 429: "rate limit exceeded (Retry-After)",
                 503: "the database is unavailable; nothing was changed (Retry-After)"}
        texts["4XX"] = "other client errors (408, 431, ...)"
        outcome = {JSON: {"schema": _ref("OperationOutcome")}, XML: {"schema": _ref("OperationOutcome")}}
        return {f"Error{status}": {"description": text, "content": outcome} for status, text in texts.items()}

    @staticmethod
    def responses(success: dict[int, tuple[str, str | None]], errors: tuple[int, ...]) -> dict[str, Any]:
        answers: dict[str, Any] = {}
        for status, (description, schema) in success.items():
            answers[str(status)] = {"description": description}
            if schema:
                answers[str(status)]["content"] = {JSON: {"schema": _ref(schema)}, XML: {"schema": _ref(schema)}}
        for status in (*errors, 401, 403, 406, 429, 503, "4XX"):
            answers.setdefault(str(status), {"$ref": f"#/components/responses/Error{status}"})
        return answers

    def add(self, path: str, method: str, operation: dict[str, Any], public: bool = False) -> None:
        if self.secured and not public:
            operation["security"] = [{"smart": []}, {"bearer": []}]
        self.paths.setdefault(BASE + path, {})[method] = operation

    # -- the paths -----

    def build(self) -> dict[str, Any]:
        components = self.components()
        self.system()
        self.type_level()
        self.instance_level()
        self.per_type_search()
        self.operations()
        tags = [{"name": name, "description": text} for name, text in (
            ("fhir", "FHIR R4 RESTful API (generated from the CapabilityStatement)"),
            ("fhir-search", "search per resource type, with the type's own search parameters"),
            ("fhir-operations", "FHIR operations ($...)"))]
        return {"paths": self.paths, "components": components, "tags": tags}

    def system(self) -> None:
        self.add("/metadata", "get", {
            "tags": ["fhir"], "operationId": "fhir-capabilities", "summary": "CapabilityStatement",
            "parameters": self.format_params(),
            "responses": self.responses({200: ("the CapabilityStatement", "CapabilityStatement")}, ())}, public=True)
        if "search-system" in self.system_interactions:
            self.add("", "get", {
                "tags": ["fhir"], "operationId": "fhir-search-system", "summary": "search all resource types",
                "parameters": self.result_params(system=True) + self.format_params(),
                "responses": self.responses({200: ("searchset Bundle", "Bundle")}, (400,))})
            self.add("/_search", "post", {
                "tags": ["fhir"], "operationId": "fhir-search-system-post", "summary": "search all types (POST)",
                "parameters": self.format_params(),
                "requestBody": {"required": False, "content": {
                    "application/x-www-form-urlencoded": {"schema": _ref("SearchForm")}}},
                "responses": self.responses({200: ("searchset Bundle", "Bundle")}, (400, 415))})
        if self.system_interactions & {"batch", "transaction"}:
            self.add("", "post", {
                "tags": ["fhir"], "operationId": "fhir-batch-transaction", "summary": "batch or transaction",
                "parameters": self.format_params(),
                "requestBody": self.body("RequestBundle", "a Bundle of type batch or transaction"),
                "responses": self.responses({200: ("batch-response or transaction-response Bundle", "Bundle")},
                                            (400, 404, 409, 412, 413, 415, 422))})
        if "history-system" in self.system_interactions:
            self.add("/_history", "get", {
                "tags": ["fhir"], "operationId": "fhir-history-system", "summary": "history of every resource",
                "parameters": self.history_params(),
                "responses": self.responses({200: ("history Bundle", "Bundle")}, (400,))})

    def history_params(self) -> list[dict[str, Any]]:
        return [_param("_count", schema={"type": "string", "pattern": "^[0-9]{1,9}$"}),
                _param("_since", schema={"type": "string", "pattern": f"^{_DATE}$"}),
                _param("_at", schema={"type": "string", "pattern": f"^{_DATE}$"}), *self.format_params()]

    def type_level(self) -> None:
        interactions = self.type_interactions
        conditional = [_param("If-None-Exist", "header", description="conditional create: a search query"),
                       _param("Prefer", "header", {"type": "string", "enum": [
                           "return=minimal", "return=representation", "return=OperationOutcome"]})]
        methods: dict[str, dict[str, Any]] = {}
        if "search-type" in interactions:
            methods["get"] = {
                "operationId": "fhir-search-type", "summary": "search a type (parameters every type has)",
                "description": "The type's own search parameters are listed under `GET /fhir/<Type>`.",
                "parameters": [self.type_param(), *self.result_params(), *self.format_params()],
                "responses": self.responses({200: ("searchset Bundle", "Bundle")}, (400, 404))}
        if "create" in interactions:
            methods["post"] = {
                "operationId": "fhir-create", "summary": "create (conditional with If-None-Exist)",
                "parameters": [self.type_param(), *conditional, *self.format_params()],
                "requestBody": self.body("Resource", "the resource; its resourceType must be {type}"),
                "responses": self.responses({201: ("created", "Resource"), 200: ("If-None-Exist matched", "Resource")},
                                            (400, 404, 409, 412, 413, 415, 422))}
        if "update" in interactions:
            methods["put"] = {
                "operationId": "fhir-update-conditional", "summary": "conditional update (search in the query)",
                "parameters": [self.type_param(), conditional[1], *self.format_params()],
                "requestBody": self.body("Resource", "the resource"),
                "responses": self.responses({200: ("updated", "Resource"), 201: ("created", "Resource")},
                                            (400, 404, 409, 412, 413, 415, 422))}
        if "delete" in interactions:
            methods["delete"] = {
                "operationId": "fhir-delete-conditional", "summary": "conditional delete (search in the query)",
                "parameters": [self.type_param()],
                "responses": self.responses({204: ("deleted (or nothing matched)", None)}, (400, 404, 412))}
        for method, operation in methods.items():
            self.add("/{type}", method, {"tags": ["fhir"], **operation})
        if "search-type" in interactions:
            self.add("/{type}/_search", "post", {
                "tags": ["fhir"], "operationId": "fhir-search-type-post", "summary": "search a type (POST)",
                "parameters": [self.type_param(), *self.format_params()],
                "requestBody": {"required": False, "content": {
                    "application/x-www-form-urlencoded": {"schema": _ref("SearchForm")}}},
                "responses": self.responses({200: ("searchset Bundle", "Bundle")}, (400, 404, 415))})
        if "history-type" in interactions:
            self.add("/{type}/_history", "get", {
                "tags": ["fhir"], "operationId": "fhir-history-type", "summary": "history of a type",
                "parameters": [self.type_param(), *self.history_params()],
                "responses": self.responses({200: ("history Bundle", "Bundle")}, (400, 404))})

    def instance_level(self) -> None:
        interactions = self.type_interactions
        path = [self.type_param(), self.id_param()]
        methods: dict[str, dict[str, Any]] = {}
        if "read" in interactions:
            methods["get"] = {
                "operationId": "fhir-read", "summary": "read",
                "parameters": [*path, _param("_summary", schema={"type": "string", "enum": [
                    "true", "false", "text", "data"]}), _param("_elements"),
                    _param("If-None-Match", "header"), _param("If-Modified-Since", "header"), *self.format_params()],
                "responses": self.responses({200: ("the resource", "Resource"), 304: ("not modified", None)},
                                            (400, 404, 410))}
        if "update" in interactions:
            methods["put"] = {
                "operationId": "fhir-update", "summary": "update (or create with a client id)",
                "parameters": [*path, _param("If-Match", "header", description='W/"<versionId>"'),
                               _param("Prefer", "header"), *self.format_params()],
                "requestBody": self.body("Resource", "the resource; resourceType and id must match the URL"),
                "responses": self.responses({200: ("updated", "Resource"), 201: ("created", "Resource")},
                                            (400, 404, 409, 412, 413, 415, 422))}
        if "delete" in interactions:
            methods["delete"] = {
                "operationId": "fhir-delete", "summary": "delete", "parameters": path,
                "responses": self.responses({204: ("deleted", None)}, (400, 404, 409))}
        for method, operation in methods.items():
            self.add("/{type}/{id}", method, {"tags": ["fhir"], **operation})
        if "history-instance" in interactions:
            self.add("/{type}/{id}/_history", "get", {
                "tags": ["fhir"], "operationId": "fhir-history-instance", "summary": "history of a resource",
                "parameters": [*path, *self.history_params()],
                "responses": self.responses({200: ("history Bundle", "Bundle")}, (400, 404))})
        if "vread" in interactions:
            self.add("/{type}/{id}/_history/{vid}", "get", {
                "tags": ["fhir"], "operationId": "fhir-vread", "summary": "read a version",
                "parameters": [*path, self.id_param("vid", "version id"), *self.format_params()],
                "responses": self.responses({200: ("the version", "Resource")}, (400, 404, 410))})

    def per_type_search(self) -> None:
        for entry in self.rest["resource"]:
            if not any(i["code"] == "search-type" for i in entry.get("interaction", [])):
                continue
            resource_type = entry["type"]
            own = [self.search_param(param) for param in entry.get("searchParam", [])
                   if param["name"] not in {"_id", "_lastUpdated"}]
            include = entry.get("searchInclude") or []
            params = [*self.result_params(), *own, *self.format_params()]
            if include:
                params = [_param("_include", schema={"type": "string", "enum": include},
                                 description="Type:param of this type") if p == self.param_ref("_include") else p
                          for p in params]
            self.add(f"/{resource_type}", "get", {
                "tags": ["fhir-search"], "operationId": f"fhir-search-{resource_type}",
                "summary": f"search {resource_type}", "parameters": params,
                "responses": self.responses({200: ("searchset Bundle", "Bundle")}, (400,))})

    def operations(self) -> None:
        seen: set[tuple[str, str]] = set()
        levels: list[tuple[str, list[dict[str, Any]]]] = []
        for operation in self.services.pipeline.operations.values():
            definition = self.services.packages.resolve(operation.definition) or {}
            query = [self.operation_param(p) for p in definition.get("parameter", [])
                     if p.get("use") == "in" and p.get("type") in {"string", "boolean", "integer", "dateTime",
                                                                    "code", "uri", "token"}]
            types = sorted(operation.resource_types) if operation.resource_types is not None else None
            if "system" in operation.levels:
                levels.append((f"/${operation.name}", []))
            if "type" in operation.levels:
                levels += [(f"/{t}/${operation.name}", []) for t in types] if types else [
                    (f"/{{type}}/${operation.name}", [self.type_param()])]
            if "instance" in operation.levels:
                levels += [(f"/{t}/{{id}}/${operation.name}", [self.id_param()]) for t in types] if types else [
                    (f"/{{type}}/{{id}}/${operation.name}", [self.type_param(), self.id_param()])]
            for path, path_params in levels:
                default = ("get", "post") if definition.get("affectsState") is False else ("post",)
                for method in _OPERATION_METHODS.get(operation.name, default):
                    if (path, method) in seen:
                        continue
                    seen.add((path, method))
                    spec: dict[str, Any] = {
                        "tags": ["fhir-operations"],
                        "operationId": f"fhir-op-{path.strip('/').replace('/', '-').replace('$', '')}-{method}"
                        .replace("{", "").replace("}", ""),
                        "summary": f"${operation.name}", "description": operation.documentation,
                        "externalDocs": {"url": operation.definition},
                        "parameters": [*path_params, *query, *self.format_params()],
                        "responses": self.responses({200: ("the result", "Resource")}, (400, 404, 405, 422))}
                    if method == "post":
                        spec["requestBody"] = self.body("Resource", "the input: a Parameters resource or, "
                                                        "where the operation allows, the resource itself",
                                                        required=operation.name != "validate")
                    self.add(path, method, spec)
            levels = []

    @staticmethod
    def operation_param(parameter: dict[str, Any]) -> dict[str, Any]:
        schema = _PRIMITIVE_SCHEMAS.get(parameter.get("type", ""), _STRING)
        return _param(parameter["name"], schema=schema, description=_short(parameter.get("documentation", "")),
                      required=int(parameter.get("min", 0) or 0) > 0 and parameter.get("type") != "Resource")

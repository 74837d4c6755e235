"""Compile SearchParameter FHIRPath expressions once into fast Python callables.

Indexing runs every search parameter of a resource on every write, so evaluating FHIRPath through a general
interpreter per write is too slow. The R4 core expressions use a small subset of FHIRPath: paths joined by
`|`, choice types selected with `as X` / `.as(X)` / `.ofType(X)`, `.where(resolve() is X)`,
`.where(elem='literal')`, `.extension('url')`, `hasExtension('url')`, `[n]`, `first()` and `exists()`.
This module parses that subset and compiles it against the type model (conformance.typemodel), so every step
knows statically which JSON properties to read (`Observation.value as Quantity` becomes a read of
`valueQuantity`). Anything outside the subset is compiled once by fhirpathpy and cached.

A compiled expression maps a resource dict to a list of `Node`s: `(fhir_type, json_value)` tuples. The type is
what lets the indexer treat a CodeableConcept differently from an Identifier; it is None only for values that
came from the fhirpathpy fallback (the indexer then infers it from the shape).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from conformance.typemodel import TypeModel

Node = tuple[str | None, Any]
Step = Callable[[list[Node]], list[Node]]
Extractor = Callable[[dict[str, Any]], list[Node]]

# FHIR types that are specialisations (profiles in R4) of another type: `as Quantity` also selects them.
_SUBTYPES: dict[str, frozenset[str]] = {
    "Quantity": frozenset(
        {"Quantity", "Age", "Distance", "Duration", "Count", "SimpleQuantity", "MoneyQuantity"}
    ),
    "uri": frozenset({"uri", "url", "canonical", "oid", "uuid"}),
    "string": frozenset({"string", "code", "id", "markdown"}),
}
_ABSTRACT_RESOURCES = frozenset({"Resource", "DomainResource"})


class UnsupportedExpressionError(ValueError):
    """The expression uses FHIRPath outside the hand-compiled subset (the caller falls back to fhirpathpy)."""


# -- parsing -----

_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^'\\]|\\.)*')|(?P<number>\d+(?:\.\d+)?)|(?P<ident>[A-Za-z_][A-Za-z0-9_]*|`[^`]+`)"
    r"|(?P<op>!=|[.()\[\]|=,]))"
)


@dataclass(frozen=True, slots=True)
class Ast:
    """A parsed FHIRPath expression node: `kind` plus operands (sub-trees or strings)."""

    kind: str  # union, path, call, as, is, index, eq, ne, and, literal, this
    args: tuple[Any, ...]


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise UnsupportedExpressionError(f"cannot tokenize at {text[position : position + 20]!r}")
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "ident" and value.startswith("`"):
            value = value[1:-1]
        tokens.append((kind, value))
        position = match.end()
    return tokens


class _Parser:
    """Recursive descent over the subset; precedence: `and` < `=`/`!=` < `|` < `is`/`as` < invocation."""

    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.position = 0

    def parse(self) -> Ast:
        tree = self._and()
        if self.position != len(self.tokens):
            raise UnsupportedExpressionError(f"unexpected {self.tokens[self.position][1]!r}")
        return tree

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _take(self, value: str | None = None) -> tuple[str, str]:
        token = self._peek()
        if token is None or (value is not None and token[1] != value):
            raise UnsupportedExpressionError(f"expected {value!r}")
        self.position += 1
        return token

    def _and(self) -> Ast:
        left = self._equality()
        while self._peek() == ("ident", "and"):
            self._take()
            left = Ast("and", (left, self._equality()))
        if self._peek() in {("ident", "or"), ("ident", "implies"), ("ident", "xor")}:
            raise UnsupportedExpressionError("boolean operators other than `and`")
        return left

    def _equality(self) -> Ast:
        left = self._union()
        token = self._peek()
        if token in {("op", "="), ("op", "!=")}:
            self._take()
            left = Ast("eq" if token[1] == "=" else "ne", (left, self._union()))
        return left

    def _union(self) -> Ast:
        parts = [self._type_op()]
        while self._peek() == ("op", "|"):
            self._take()
            parts.append(self._type_op())
        return parts[0] if len(parts) == 1 else Ast("union", tuple(parts))

    def _type_op(self) -> Ast:
        left = self._invocations()
        while self._peek() in {("ident", "as"), ("ident", "is")}:
            operator = self._take()[1]
            left = Ast(operator, (left, self._type_name()))
        return left

    def _type_name(self) -> str:
        kind, value = self._take()
        if kind != "ident":
            raise UnsupportedExpressionError("type name expected")
        if self._peek() == ("op", ".") and value in {"FHIR", "System"}:
            self._take(".")
            value = self._take()[1]
        return value

    def _invocations(self) -> Ast:
        tree = self._term()
        while True:
            token = self._peek()
            if token == ("op", "."):
                self._take()
                tree = self._invocation(tree)
            elif token == ("op", "["):
                self._take()
                kind, value = self._take()
                if kind != "number" or "." in value:
                    raise UnsupportedExpressionError("only integer indexers")
                self._take("]")
                tree = Ast("index", (tree, int(value)))
            else:
                return tree

    def _term(self) -> Ast:
        token = self._peek()
        if token is None:
            raise UnsupportedExpressionError("unexpected end")
        if token == ("op", "("):
            self._take()
            tree = self._and()
            self._take(")")
            return tree
        if token[0] == "string":
            self._take()
            return Ast("literal", (_unquote(token[1]),))
        if token[0] == "number":
            raise UnsupportedExpressionError("numeric literals")
        if token in {("ident", "true"), ("ident", "false")}:
            self._take()
            return Ast("literal", (token[1] == "true",))
        return self._invocation(Ast("this", ()))

    def _invocation(self, base: Ast) -> Ast:
        kind, name = self._take()
        if kind != "ident":
            raise UnsupportedExpressionError(f"identifier expected, got {name!r}")
        if self._peek() != ("op", "("):
            return Ast("path", (base, name))
        self._take("(")
        args: list[Any] = []
        if name in {"as", "ofType", "is"}:
            args.append(self._type_name())
        elif self._peek() != ("op", ")"):
            args.append(self._and())
            while self._peek() == ("op", ","):
                self._take()
                args.append(self._and())
        self._take(")")
        return Ast("call", (base, name, tuple(args)))


def _unquote(literal: str) -> str:
    return re.sub(r"\\(.)", r"\1", literal[1:-1])


def parse_expression(text: str) -> Ast:
    """Parse an expression of the supported subset (raises UnsupportedExpressionError otherwise)."""
    return _Parser(text).parse()


# -- compilation -----

Types = frozenset[str]


@dataclass(frozen=True, slots=True)
class _Child:
    json_name: str
    type: str


class _Compiler:
    """Compiles an Ast against the type model for one resource type."""

    def __init__(self, model: TypeModel, resource_type: str) -> None:
        self.model = model
        self.resource_type = resource_type

    # Steps resolve element names statically for the input types known at compile time; values whose type is
    # only known at run time (a `Bundle.entry.resource`) are resolved through `_children` and memoised.
    def children(self, type_name: str, name: str) -> tuple[_Child, ...]:
        return _children(self.model, type_name, name)

    def compile(self, tree: Ast, types: Types) -> tuple[Step, Types]:
        method = getattr(self, f"_compile_{tree.kind}", None)
        if method is None:
            raise UnsupportedExpressionError(f"{tree.kind} outside a where()")
        return method(tree, types)

    def _compile_this(self, tree: Ast, types: Types) -> tuple[Step, Types]:
        return (lambda nodes: nodes), types

    def _compile_union(self, tree: Ast, types: Types) -> tuple[Step, Types]:
        compiled = []
        out: set[str] = set()
        for part in tree.args:
            try:
                step, part_types = self.compile(part, types)
            except _OtherResourceError:
                continue  # a branch for another resource type of a multi-base parameter
            compiled.append(step)
            out |= part_types
        if not compiled:
            raise _OtherResourceError()
        if len(compiled) == 1:
            return compiled[0], frozenset(out)
        branches = tuple(compiled)

        def union(nodes: list[Node]) -> list[Node]:
            result: list[Node] = []
            for branch in branches:
                result.extend(branch(nodes))
            return result

        return union, frozenset(out)

    def _compile_path(self, tree: Ast, types: Types) -> tuple[Step, Types]:
        base, name = tree.args
        if base.kind == "this" and types == frozenset({self.resource_type}):
            # The root: `Observation.code` (also `Resource.meta` / `DomainResource.text`) or a bare `id`.
            if name == self.resource_type or name in _ABSTRACT_RESOURCES:
                return (lambda nodes: nodes), types
            if name[:1].isupper() and self.model.resource(name) is not None:
                raise _OtherResourceError()
        base_step, base_types = self.compile(base, types)
        static: dict[str, tuple[_Child, ...]] = {}
        out: set[str] = set()
        for type_name in base_types:
            found = self.children(type_name, name)
            static[type_name] = found
            out.update(child.type for child in found)
        if not out and not (base_types & (_ABSTRACT_RESOURCES | {"Resource"})):
            raise UnsupportedExpressionError(f"no element {name!r} on {sorted(base_types)}")
        model = self.model

        def path(nodes: list[Node]) -> list[Node]:
            result: list[Node] = []
            for type_name, value in base_step(nodes):
                if type(value) is not dict:
                    continue
                if type_name in _ABSTRACT_RESOURCES:
                    type_name = value.get("resourceType")
                found = static.get(type_name) if type_name in static else _children(model, type_name, name)
                for child in found or ():
                    item = value.get(child.json_name)
                    if item is None:
                        continue
                    if type(item) is list:
                        result.extend((child.type, element) for element in item if element is not None)
                    else:
                        result.append((child.type, item))
            return result

        return path, frozenset(out)

    def _compile_as(self, tree: Ast, types: Types) -> tuple[Step, Types]:
        base, type_name = tree.args
        return self._type_filter(base, type_name, types)

    def _type_filter(self, base: Ast, type_name: str, types: Types) -> tuple[Step, Types]:
        base_step, base_types = self.compile(base, types)
        accepted = _SUBTYPES.get(type_name, frozenset({type_name}))
        if not (base_types & accepted) and not (base_types & _ABSTRACT_RESOURCES):
            # `as X` on a non-choice element of another type yields nothing; keep it compiled (empty).
            return (lambda nodes: []), frozenset()

        def type_filter(nodes: list[Node]) -> list[Node]:
            result = []
            for node in base_step(nodes):
                actual = node[0]
                if actual in _ABSTRACT_RESOURCES and type(node[1]) is dict:
                    actual = node[1].get("resourceType")
                if actual in accepted:
                    result.append(node)
            return result

        return type_filter, frozenset(base_types & accepted) or frozenset({type_name})

    def _compile_and(self, tree: Ast, types: Types) -> tuple[Step, Types]:
        """Three-valued `and` of two boolean singletons (`X.exists() and X != false`)."""
        left, right = (self.compile(part, types)[0] for part in tree.args)

        def conjunction(nodes: list[Node]) -> list[Node]:
            values = [_singleton_boolean(left(nodes)), _singleton_boolean(right(nodes))]
            if False in values:
                return [("boolean", False)]
            return [("boolean", True)] if values == [True, True] else []

        return conjunction, frozenset({"boolean"})

    def _compile_eq(self, tree: Ast, types: Types) -> tuple[Step, Types]:
        return self._comparison(tree, types, negate=False)

    def _compile_ne(self, tree: Ast, types: Types) -> tuple[Step, Types]:
        return self._comparison(tree, types, negate=True)

    def _comparison(self, tree: Ast, types: Types, negate: bool) -> tuple[Step, Types]:
        """`=` / `!=` between singletons; an empty operand makes the result empty (FHIRPath propagation)."""
        left, right = (self.compile(part, types)[0] for part in tree.args)

        def comparison(nodes: list[Node]) -> list[Node]:
            a, b = left(nodes), right(nodes)
            if len(a) != 1 or len(b) != 1:
                return []
            return [("boolean", (a[0][1] == b[0][1]) != negate)]

        return comparison, frozenset({"boolean"})

    def _compile_literal(self, tree: Ast, types: Types) -> tuple[Step, Types]:
        value = tree.args[0]
        type_name = "boolean" if isinstance(value, bool) else "string"
        return (lambda nodes: [(type_name, value)]), frozenset({type_name})

    def _compile_index(self, tree: Ast, types: Types) -> tuple[Step, Types]:
        base, position = tree.args
        base_step, base_types = self.compile(base, types)

        def index(nodes: list[Node]) -> list[Node]:
            values = base_step(nodes)
            return [values[position]] if position < len(values) else []

        return index, base_types

    def _compile_call(self, tree: Ast, types: Types) -> tuple[Step, Types]:
        base, name, args = tree.args
        if name in {"as", "ofType"}:
            return self._type_filter(base, args[0], types)
        base_step, base_types = self.compile(base, types)
        if name == "first" and not args:
            return (lambda nodes: base_step(nodes)[:1]), base_types
        if name == "exists" and not args:
            return (lambda nodes: [("boolean", bool(base_step(nodes)))]), frozenset({"boolean"})
        if name == "where" and len(args) == 1:
            predicate = self._predicate(args[0], base_types)
            return (lambda nodes: [node for node in base_step(nodes) if predicate(node)]), base_types
        if name == "extension" and len(args) == 1 and args[0].kind == "literal":
            url = args[0].args[0]
            extension_step, _ = self._compile_path(Ast("path", (Ast("this", ()), "extension")), base_types)

            def extension(nodes: list[Node]) -> list[Node]:
                return [node for node in extension_step(base_step(nodes)) if node[1].get("url") == url]

            return extension, frozenset({"Extension"})
        raise UnsupportedExpressionError(f"function {name}()")

    def _predicate(self, tree: Ast, types: Types) -> Callable[[Node], bool]:
        """A where() criterion evaluated against one node ($this)."""
        if tree.kind == "and":
            left, right = (self._predicate(part, types) for part in tree.args)
            return lambda node: left(node) and right(node)
        if tree.kind == "is":
            operand, type_name = tree.args
            if operand == Ast("call", (Ast("this", ()), "resolve", ())):
                return lambda node: reference_target_type(node[1]) == type_name
            raise UnsupportedExpressionError("`is` other than resolve() is X")
        if tree.kind in {"eq", "ne"}:
            left, right = tree.args
            if right.kind != "literal":
                raise UnsupportedExpressionError("comparison with a non-literal")
            step, _ = self.compile(left, types)
            expected = right.args[0]
            if tree.kind == "eq":
                return lambda node: any(value == expected for _, value in step([node]))
            return lambda node: all(value != expected for _, value in step([node]))
        if tree.kind == "call" and tree.args[1] == "hasExtension" and tree.args[0].kind == "this":
            (url_tree,) = tree.args[2]
            if url_tree.kind != "literal":
                raise UnsupportedExpressionError("hasExtension() without a literal url")
            url = url_tree.args[0]
            return lambda node: (
                type(node[1]) is dict
                and any(type(ext) is dict and ext.get("url") == url for ext in node[1].get("extension", ()))
            )
        raise UnsupportedExpressionError(f"where() criterion {tree.kind}")


def _singleton_boolean(nodes: list[Node]) -> bool | None:
    if len(nodes) != 1:
        return None
    value = nodes[0][1]
    return value if isinstance(value, bool) else True  # a single non-boolean item counts as true


class _OtherResourceError(UnsupportedExpressionError):
    """The (branch of the) expression is rooted at another resource type: it contributes nothing here."""


@cache
def _children_cached(model_id: int, type_name: str, name: str) -> tuple[_Child, ...]:
    model = _MODELS[model_id]
    info = model.type(type_name)
    if info is None:
        return ()
    element = info.elements.get(name)
    if element is not None and element.choice is None:
        return (_Child(element.name, element.type),)
    return tuple(_Child(json_name, info.elements[json_name].type) for json_name in info.choices.get(name, ()))


_MODELS: dict[int, TypeModel] = {}


def _children(model: TypeModel, type_name: str | None, name: str) -> tuple[_Child, ...]:
    if type_name is None:
        return ()
    _MODELS.setdefault(id(model), model)
    return _children_cached(id(model), type_name, name)


def reference_target_type(reference: Any) -> str | None:
    """The resource type a Reference points to: from `reference` (relative or absolute URL) or `type`."""
    if type(reference) is not dict:
        return None
    literal = reference.get("reference")
    if isinstance(literal, str) and not literal.startswith("#"):
        parts = literal.split("/_history/")[0].rstrip("/").split("/")
        if len(parts) >= 2 and parts[-2][:1].isupper():
            return parts[-2]
    declared = reference.get("type")
    if isinstance(declared, str):
        return declared.rsplit("/", 1)[-1]
    return None


# -- public entry points -----


@dataclass(frozen=True)
class CompiledExpression:
    """An expression compiled for one resource type; `hand_compiled` is False when fhirpathpy evaluates it."""

    text: str
    resource_type: str
    hand_compiled: bool
    evaluate: Extractor

    def __call__(self, resource: dict[str, Any]) -> list[Node]:
        return self.evaluate(resource)


def compile_expression(text: str, resource_type: str, model: TypeModel) -> CompiledExpression:
    """Compile `text` for resources of `resource_type`: hand-compiled when possible, else via fhirpathpy."""
    try:
        tree = parse_expression(text)
        compiler = _Compiler(model, resource_type)
        try:
            step, _ = compiler.compile(tree, frozenset({resource_type}))
        except _OtherResourceError:
            step = _nothing
        root_type = resource_type

        def evaluate(resource: dict[str, Any]) -> list[Node]:
            return step([(root_type, resource)])

        return CompiledExpression(text, resource_type, True, evaluate)
    except UnsupportedExpressionError:
        return CompiledExpression(text, resource_type, False, _fhirpathpy_extractor(text))


def _nothing(nodes: list[Node]) -> list[Node]:
    return []


@cache
def _fhirpathpy_extractor(text: str) -> Extractor:
    """fhirpathpy compiles the expression once; its results carry no FHIR type (inferred by the indexer)."""
    import fhirpathpy
    from fhirpathpy.models import models

    compiled = fhirpathpy.compile(text, models["r4"])

    def evaluate(resource: dict[str, Any]) -> list[Node]:
        try:
            values = compiled(resource, {})
        except Exception:  # noqa: BLE001 - a fallback evaluation error must not fail a write; index nothing
            return []
        return [(None, value) for value in values if value is not None]

    return evaluate

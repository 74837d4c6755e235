"""FHIR packages: NPM tarballs and folders of JSON or XML resources, indexed by canonical URL and type.

A `PackageSet` holds several packages (R4 core, Nictiz zib/nl-core, the gateway's own profiles) and answers
"give me the StructureDefinition for this URL" or "all SearchParameters". Files are parsed lazily per
resource type; a small manifest (file -> resourceType, url, version, id) is built once per package.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance import fhirjson

CORE_PACKAGE = "hl7.fhir.r4.examples"
CORE_VERSION = "4.0.1"

DEFINITION_TYPES = frozenset(
    {
        "StructureDefinition",
        "SearchParameter",
        "ValueSet",
        "CodeSystem",
        "ConceptMap",
        "OperationDefinition",
        "CapabilityStatement",
        "NamingSystem",
        "CompartmentDefinition",
        "ImplementationGuide",
    }
)


@dataclass
class PackageEntry:
    resource_type: str
    id: str | None
    url: str | None
    version: str | None
    source: str  # file name inside the package
    _content: dict[str, Any] | None = None


@dataclass
class Package:
    name: str
    version: str
    canonical: str | None
    path: str
    entries: list[PackageEntry] = field(default_factory=list)
    _loader: Any = None

    def resource(self, entry: PackageEntry) -> dict[str, Any]:
        if entry._content is None:
            entry._content = self._loader(entry.source)
        return entry._content


def _parse_file(name: str, data: bytes) -> dict[str, Any] | None:
    if name.endswith(".json"):
        parsed = fhirjson.loads_trusted(data)
    elif name.endswith(".xml"):
        from conformance.fhirxml import xml_to_json  # needs core definitions; imported lazily

        parsed = xml_to_json(data)
    else:
        return None
    if isinstance(parsed, dict) and "resourceType" in parsed:
        return parsed
    return None


def _entry_for(name: str, resource: dict[str, Any]) -> PackageEntry:
    return PackageEntry(
        resource_type=resource["resourceType"],
        id=resource.get("id"),
        url=resource.get("url") if isinstance(resource.get("url"), str) else None,
        version=resource.get("version") if isinstance(resource.get("version"), str) else None,
        source=name,
        _content=resource,
    )


def _read_manifest(raw: bytes) -> dict[str, Any]:
    return fhirjson.loads_trusted(raw)


def load_package(path: str | Path) -> Package:
    """Load an NPM tarball (.tgz) or a folder (with `package/` inside, or resources directly)."""
    path = Path(path)
    if path.is_file() and path.suffix in {".tgz", ".gz"}:
        return _load_tarball(path)
    if (path / "package" / "package.json").exists():
        path = path / "package"
    return _load_folder(path)


def _load_tarball(path: Path) -> Package:
    with tarfile.open(path, "r:gz") as archive:
        files = {
            member.name.removeprefix("package/"): archive.extractfile(member).read()  # type: ignore[union-attr]
            for member in archive.getmembers()
            if member.isfile()
        }
    manifest = _read_manifest(files.get("package.json", b"{}"))
    package = Package(
        manifest.get("name", path.stem), manifest.get("version", ""), manifest.get("canonical"), str(path)
    )
    for name, data in sorted(files.items()):
        if "/" in name or name == "package.json" or name.startswith("."):
            continue
        resource = _parse_file(name, data)
        if resource is not None:
            package.entries.append(_entry_for(name, resource))
    package._loader = lambda source: _parse_file(source, files[source])
    return package


def _cache_dir() -> Path:
    return Path(os.environ.get("ZCC_CACHE_DIR", "var/cache")) / "packages"


def _load_folder(folder: Path) -> Package:
    manifest_file = folder / "package.json"
    manifest = _read_manifest(manifest_file.read_bytes()) if manifest_file.exists() else {}
    package = Package(
        manifest.get("name", folder.name), manifest.get("version", ""), manifest.get("canonical"), str(folder)
    )
    package._loader = lambda source: _parse_file(source, (folder / source).read_bytes())
    files = sorted(
        file
        for file in folder.rglob("*")
        if file.is_file()
        and file.suffix in {".json", ".xml"}
        and file.name != "package.json"
        and not file.name.startswith(".")
    )
    stamp = hashlib.sha256(
        "\n".join(f"{file}:{file.stat().st_mtime_ns}:{file.stat().st_size}" for file in files).encode()
    ).hexdigest()[:24]
    cache = _cache_dir() / f"{stamp}.json"
    if cache.exists():
        for row in fhirjson.loads_trusted(cache.read_bytes()):
            package.entries.append(PackageEntry(*row))
        return package
    for file in files:
        resource = _parse_file(file.name, file.read_bytes())
        if resource is not None:
            entry = _entry_for(str(file.relative_to(folder)), resource)
            entry._content = None  # re-read on demand; keeps memory small
            package.entries.append(entry)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        rows = [[e.resource_type, e.id, e.url, e.version, e.source] for e in package.entries]
        cache.write_bytes(fhirjson.dumps(rows))
    except OSError:
        pass  # a read-only cache only costs start-up time
    return package


class PackageSet:
    """Several packages searchable together; later packages do not override earlier canonical URLs."""

    def __init__(self, packages: Iterable[Package] = ()) -> None:
        self.packages: list[Package] = []
        self._by_url: dict[str, list[tuple[Package, PackageEntry]]] = {}
        self._by_type: dict[str, list[tuple[Package, PackageEntry]]] = {}
        for package in packages:
            self.add(package)

    @classmethod
    def from_paths(cls, paths: Iterable[str | Path]) -> PackageSet:
        return cls(load_package(path) for path in paths)

    def add(self, package: Package) -> None:
        self.packages.append(package)
        for entry in package.entries:
            self._by_type.setdefault(entry.resource_type, []).append((package, entry))
            if entry.url:
                self._by_url.setdefault(entry.url, []).append((package, entry))

    def resolve(self, canonical: str) -> dict[str, Any] | None:
        """Resolve `url` or `url|version` to a resource; without version the first loaded wins."""
        url, _, version = canonical.partition("|")
        for package, entry in self._by_url.get(url, []):
            if not version or entry.version == version:
                return package.resource(entry)
        return None

    def of_type(self, resource_type: str) -> Iterator[dict[str, Any]]:
        for package, entry in self._by_type.get(resource_type, []):
            yield package.resource(entry)

    def structure_definition(self, type_name: str) -> dict[str, Any] | None:
        """The core StructureDefinition of a resource or data type (by name or URL)."""
        if "/" in type_name:
            return self.resolve(type_name)
        return self.resolve(f"http://hl7.org/fhir/StructureDefinition/{type_name}")

    def resource_types(self) -> list[str]:
        """All concrete resource types defined by the loaded core StructureDefinitions."""
        names = []
        for sd in self.of_type("StructureDefinition"):
            if sd.get("kind") == "resource" and sd.get("derivation") == "specialization" and not sd.get("abstract"):
                names.append(sd["type"])
        return sorted(set(names))

    def examples(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """(file name, resource) for every non-definition resource in the packages."""
        for package in self.packages:
            for entry in package.entries:
                if entry.resource_type not in DEFINITION_TYPES:
                    yield entry.source, package.resource(entry)


def default_package_paths(root: str | Path = ".") -> list[Path]:
    """The R4 core package in the local cache (`var/packages`), fetched by `make`."""
    return [Path(root) / "var" / "packages" / f"{CORE_PACKAGE}#{CORE_VERSION}" / "package"]


def installed_package_paths(root: str | Path = ".") -> list[Path]:
    """Every package in the local cache (`var/packages/<name>#<version>/package`), the R4 core first: what
    `make` installed (R4 core from npm, the Nictiz zib2020/nl-core packages from their package folder)."""
    core = default_package_paths(root)
    cache = Path(root) / "var" / "packages"
    others = sorted(
        folder.parent for folder in cache.glob("*/package/package.json") if folder.parent not in core
    ) if cache.is_dir() else []
    return [*core, *others]

#!/usr/bin/env python3
"""Render exporter/docs/upstream.md: the upstream facts the exporter relies on, with sources.

    python exporter/scripts/upstream_doc.py          # rewrite exporter/docs/upstream.md
    python exporter/scripts/upstream_doc.py --check  # exit 1 when it is stale or an input is invalid
    python exporter/scripts/upstream_doc.py --verify DIR  # re-check every Go entry against
        # git clones DIR/<owner>/<name> (e.g. DIR/kubevirt/kubevirt) with their tags

Inputs, each naming the upstream repository, file and release tags it was read from:
  exporter/docs/upstream-objects.yaml     the schema of every field the records read
  exporter/docs/openshift-monitoring.yaml the OpenShift monitoring rules deploy/ relies on
  alerts/upstream-metrics.yaml            the metrics other components publish (summarised)

The inputs are validated first (`validate`): every field path a record reads
(`record_field_paths`) must be listed under its kind with a source, and nothing else.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import types
import typing
from pathlib import Path
from typing import Any

import msgspec
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "exporter" / "docs"
OBJECTS = DOCS / "upstream-objects.yaml"
MONITORING = DOCS / "openshift-monitoring.yaml"
METRICS = ROOT / "alerts" / "upstream-metrics.yaml"
OUTPUT = DOCS / "upstream.md"
sys.path.insert(0, str(ROOT / "exporter"))

from ov_exporter.records import KINDS  # noqa: E402

# ------------------------------------------------------------------ record field paths


def _strip_optional(annotation: Any) -> Any:
    """`X | None` -> X, `Annotated[X, ...]` -> X (repeatedly)."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def _is_record(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, msgspec.Struct)


def record_field_paths(record: type, prefix: str = "") -> list[str]:
    """Every leaf JSON path a record reads, in declaration order: nested records are
    followed, `[]` marks a list of records, names are the encoded ones (camelCase by
    the records' rename, or their explicit `name=`)."""
    paths: list[str] = []
    for field in msgspec.structs.fields(record):
        annotation = _strip_optional(field.type)
        path = prefix + field.encode_name
        if typing.get_origin(annotation) is list:
            item = _strip_optional(typing.get_args(annotation)[0])
            if _is_record(item):
                paths += record_field_paths(item, path + "[].")
                continue
        if _is_record(annotation):
            paths += record_field_paths(annotation, path + ".")
            continue
        paths.append(path)
    return paths


# ------------------------------------------------------------------ loading and validation


class InputError(Exception):
    """An input file that cannot be used; the message names the file and the entry."""


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def load_yaml(path: Path) -> dict:
    rel = _shown(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"{rel}: cannot read: {exc}") from exc
    if not isinstance(data, dict):
        raise InputError(f"{rel}: expected a mapping at the top level")
    return data


def _is_text_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) and v for v in value)


def _check_field(where: str, entry: Any, read: list[str]) -> list[str]:
    if not isinstance(entry, dict):
        return [f"{where}: expected a mapping, got {entry!r}"]
    kinds_of_answer = [k for k in ("go", "rust", "not_upstream", "unverified") if k in entry]
    if len(kinds_of_answer) != 1:
        return [f"{where}: needs exactly one of go, rust, not_upstream, unverified (has {kinds_of_answer or 'none'})"]
    answer = kinds_of_answer[0]
    errors = []
    if not isinstance(entry[answer], str) or not entry[answer].strip():
        errors.append(f"{where}.{answer}: expected non-empty text")
    if answer in ("go", "rust") and not isinstance(entry.get("in"), str):
        errors.append(f"{where}.in: the declaring {answer.capitalize()} type is missing")
    if answer == "rust" or "repository" in entry:
        for key in ("repository", "file"):
            if not isinstance(entry.get(key), str):
                errors.append(f"{where}.{key}: required when read outside the kind's repository")
    if answer == "rust" and not _is_text_list(entry.get("tags")):
        errors.append(f"{where}.tags: required when read outside the kind's repository")
    own_tags = "repository" not in entry
    for key in ("since",):
        if key in entry and own_tags and entry[key] not in read:
            errors.append(f"{where}.{key}: {entry[key]!r} is not a tag in `read`")
    for key in ("default_since", "enum_since", "was"):
        value = entry.get(key)
        if value is None:
            continue
        if not isinstance(value, dict):
            errors.append(f"{where}.{key}: expected a mapping")
        elif own_tags:
            tags = value.values() if key in ("enum_since", "was") else value.keys()
            errors += [f"{where}.{key}: {t!r} is not a tag in `read`" for t in tags if t not in read]
    return errors


def validate_objects(objects: dict) -> list[str]:
    """Every problem with upstream-objects.yaml, each naming the kind and field."""
    file = _shown(OBJECTS)
    kinds = objects.get("kinds")
    if not isinstance(kinds, dict):
        return [f"{file}: `kinds` must be a mapping of kind name to entry"]
    errors = [
        f"{file}: kinds.{name}: not a kind of ov_exporter.records.KINDS"
        for name in kinds
        if name not in {k.kind for k in KINDS}
    ]
    for info in KINDS:
        where = f"{file}: kinds.{info.kind}"
        kind = kinds.get(info.kind)
        if not isinstance(kind, dict):
            errors.append(f"{where}: missing (every kind of ov_exporter.records.KINDS needs its upstream source)")
            continue
        if not isinstance(kind.get("repository"), str) or kind["repository"].count("/") != 1:
            errors.append(f"{where}.repository: expected owner/name")
        path = kind.get("path")
        if not (isinstance(path, str) and path) and not _is_text_list(path):
            errors.append(f"{where}.path: expected the Go types file (or a list of them)")
        read = kind.get("read")
        tags = kind.get("tags")
        if not _is_text_list(read):
            errors.append(f"{where}.read: expected the list of tags read")
            read = []
        if not (_is_text_list(tags) and len(tags) == 2 and read and tags == [read[0], read[-1]]):
            errors.append(f"{where}.tags: expected [oldest, newest] of `read`")
        fields = kind.get("fields")
        if not isinstance(fields, dict):
            errors.append(f"{where}.fields: expected a mapping of field path to entry")
            continue
        read_by_record = record_field_paths(info.record)
        for path in read_by_record:
            if path not in fields:
                errors.append(f"{where}.fields: {path!r} is read by {info.record.__name__} but not listed")
        for path, entry in fields.items():
            if path not in read_by_record:
                errors.append(f"{where}.fields: {path!r} is not read by {info.record.__name__} (stale entry)")
            else:
                errors += _check_field(f"{where}.fields.{path}", entry, read)
    return errors


def validate_monitoring(monitoring: dict) -> list[str]:
    file = _shown(MONITORING)
    rules = monitoring.get("rules")
    if not isinstance(rules, list) or not rules:
        return [f"{file}: `rules` must be a non-empty list"]
    errors = []
    for i, rule in enumerate(rules):
        where = f"{file}: rules[{i}]"
        if not isinstance(rule, dict):
            errors.append(f"{where}: expected a mapping")
            continue
        where = f"{file}: rules[{rule.get('id', i)}]"
        for key in ("id", "rule"):
            if not isinstance(rule.get(key), str) or not rule[key].strip():
                errors.append(f"{where}.{key}: expected text")
        sources = rule.get("sources")
        if not isinstance(sources, list) or not sources:
            errors.append(f"{where}.sources: every rule needs at least one upstream source")
            continue
        for j, source in enumerate(sources):
            if not isinstance(source, dict):
                errors.append(f"{where}.sources[{j}]: expected a mapping")
                continue
            for key in ("repository", "path", "shows"):
                if not isinstance(source.get(key), str) or not source[key].strip():
                    errors.append(f"{where}.sources[{j}].{key}: expected text")
            if not _is_text_list(source.get("refs")):
                errors.append(f"{where}.sources[{j}].refs: expected the tags or branches read")
    return errors


# ------------------------------------------------------------------ verification against clones
# `--verify DIR` re-checks every `go` entry against git clones DIR/<owner>/<name>: the
# JSON path is followed through the Go structs' json tags (inline and embedded structs
# included, imports resolved through the repository's go.mod modules, its vendor/
# directories, or a clone of the kubernetes module at the version go.mod requires).


class GoPackage:
    """The structs, named types and imports of one Go package directory at one tag."""

    _STRUCT = re.compile(r"(?m)^(?:type\s+|\t)(\w+)\s+struct\s*\{")
    _NAMED = re.compile(r"(?m)^(?:type\s+|\t)(\w+)\s+=?\s*([\w.\[\]*]+)\s*$")
    _FIELD = re.compile(r"^(\w+)\s+([^\s`]+)\s*(?:`([^`]*)`)?$")
    _EMBED = re.compile(r"^(\*?[\w.]+)\s*(?:`([^`]*)`)?$")
    _IMPORT = re.compile(r'(?:(\w+|\.)\s+)?"([^"]+)"')

    def __init__(self, sources: dict[str, str]) -> None:
        self.structs: dict[str, tuple[str, list[tuple[str, str, bool]]]] = {}  # name -> (file, [(json, type, inline)])
        self.named: dict[str, tuple[str, str]] = {}  # `type X Y`: name -> (file, Y)
        self.imports: dict[str, dict[str, str]] = {}  # file -> alias -> import path
        for file, text in sources.items():
            text = re.sub(r"(?m)//.*$", "", re.sub(r"/\*.*?\*/", "", text, flags=re.S))
            aliases: dict[str, str] = {}
            for block in re.findall(r"import\s*\((.*?)\)", text, re.S):
                for alias, path in self._IMPORT.findall(block):
                    aliases[alias or path.rsplit("/", 1)[-1]] = path
            for alias, path in re.findall(r'(?m)^import\s+(?:(\w+)\s+)?"([^"]+)"', text):
                aliases[alias or path.rsplit("/", 1)[-1]] = path
            self.imports[file] = aliases
            for match in self._STRUCT.finditer(text):
                self.structs[match.group(1)] = (file, self._fields(text, match.end() - 1))
            for name, underlying in self._NAMED.findall(text):
                if underlying not in ("struct", "interface"):
                    self.named.setdefault(name, (file, underlying))

    @classmethod
    def _fields(cls, text: str, start: int) -> list[tuple[str, str, bool]]:
        depth, end = 0, start
        for end in range(start, len(text)):
            depth += {"{": 1, "}": -1}.get(text[end], 0)
            if depth == 0:
                break
        fields, nested = [], 0
        for line in (line.strip() for line in text[start + 1 : end].splitlines()):
            if nested or line.endswith("{"):  # an anonymous struct inside: not followed
                nested += line.count("{") - line.count("}")
                continue
            named, embedded = cls._FIELD.match(line), cls._EMBED.match(line)
            if named and (named.group(1)[0].isupper() or named.group(3)):
                tag = re.search(r'json:"([^"]*)"', named.group(3) or "")
                name = tag.group(1).split(",")[0] if tag else named.group(1)
                fields.append((name, named.group(2), bool(tag) and not name and ",inline" in tag.group(1)))
            elif embedded:
                tag = re.search(r'json:"([^"]*)"', embedded.group(2) or "")
                name = tag.group(1).split(",")[0] if tag else ""
                fields.append((name, embedded.group(1), not name))
        return fields


class GoRepo:
    """One git clone at one tag: its Go packages, found by import path."""

    _KUBERNETES = {
        "k8s.io/api": "kubernetes/api",
        "k8s.io/apimachinery": "kubernetes/apimachinery",
        "k8s.io/metrics": "kubernetes/metrics",
    }

    def __init__(self, clones: Path, repository: str, tag: str) -> None:
        self.clones, self.repository, self.tag = clones, repository, tag
        self.git_dir = clones / repository
        if not self.git_dir.exists():
            raise InputError(f"{self.git_dir}: no clone of {repository}")
        self._packages: dict[str, GoPackage | None] = {}
        self._requires: dict[str, str] = {}
        self.modules: list[tuple[str, str]] = []  # (module path, directory), longest first
        for path in self._git("ls-tree", "-r", "--name-only", tag).splitlines():
            if path.endswith("go.mod") and "vendor/" not in path:
                text = self._git("show", f"{tag}:{path}")
                module = re.search(r"(?m)^module\s+(\S+)", text)
                if module:
                    self.modules.append((module.group(1), path[: -len("go.mod")].rstrip("/")))
                self._requires.update(re.findall(r"(?m)^\s*(k8s\.io/\w+)\s+(v[0-9][^\s]*)", text))
        self.modules.sort(key=lambda m: -len(m[0]))

    def _git(self, *args: str) -> str:
        proc = subprocess.run(["git", "-C", str(self.git_dir), *args], capture_output=True, text=True)
        return proc.stdout

    def _files(self, directory: str) -> list[str]:
        listing = self._git("ls-tree", "--name-only", f"{self.tag}:{directory}" if directory else self.tag)
        return [
            f"{directory}/{name}".lstrip("/")
            for name in listing.split()
            if name.endswith(".go") and not name.endswith("_test.go")
        ]

    def package(self, import_path: str) -> tuple[GoRepo, GoPackage] | None:
        """The repository and package an import path resolves to here, or None."""
        for module, directory in self.modules:
            if import_path == module or import_path.startswith(module + "/"):
                return self, self._package("/".join(p for p in (directory, import_path[len(module) + 1 :]) if p))
        for _, directory in self.modules:
            vendored = "/".join(p for p in (directory, "vendor", import_path) if p)
            if self._files(vendored):
                return self, self._package(vendored)
        for module, repository in self._KUBERNETES.items():
            if import_path.startswith(module + "/") and repository != self.repository:
                version = self._requires.get(module, "")
                tag = version if re.fullmatch(r"v\d+\.\d+\.\d+", version) else self.tag
                return GoRepo(self.clones, repository, tag).package(import_path)
        return None

    def _package(self, directory: str) -> GoPackage:
        if directory not in self._packages:
            files = self._files(directory)
            self._packages[directory] = GoPackage({f: self._git("show", f"{self.tag}:{f}") for f in files})
        return self._packages[directory]


def _go_base(type_expr: str) -> str:
    return re.sub(r"^(\*|\[\]|map\[[^\]]*\])+", "", type_expr)


def resolve_go_path(repo: GoRepo, package_dir: str, type_name: str, path: str) -> tuple[str, str]:
    """(Go type, declaring struct) of a JSON path ("spec.items[].count") from a root type
    in a package directory of `repo`. Raises LookupError naming the step that fails."""
    here, package = repo, repo._package(package_dir)
    name, file = type_name, ""
    steps = path.split(".")
    for i, step in enumerate(steps):
        key = step.removesuffix("[]")
        while name not in package.structs and name in package.named:  # type X Y
            file, underlying = package.named[name]
            here, package, name = _lookup(here, package, file, underlying)
        if name not in package.structs:
            raise LookupError(f"{'.'.join(steps[:i]) or 'root'}: {name} is not a struct here")
        found = _find_field(here, package, name, key)
        if found is None:
            raise LookupError(f"{'.'.join(steps[: i + 1])}: no json field {key!r} in {name}")
        here, package, struct, file, go_type = found
        if step.endswith("[]") and not go_type.lstrip("*").startswith("[]"):
            raise LookupError(f"{'.'.join(steps[: i + 1])}: {go_type} is not a list")
        if i == len(steps) - 1:
            return go_type, struct
        here, package, name = _lookup(here, package, file, go_type)
    raise LookupError(f"{path}: empty path")


def _lookup(repo: GoRepo, package: GoPackage, file: str, type_expr: str) -> tuple[GoRepo, GoPackage, str]:
    base = _go_base(type_expr)
    if "." not in base:
        return repo, package, base
    alias, name = base.split(".", 1)
    import_path = package.imports.get(file, {}).get(alias)
    target = repo.package(import_path) if import_path else None
    if target is None:
        raise LookupError(f"{type_expr}: package {import_path or alias} not found")
    return target[0], target[1], name


def _find_field(repo: GoRepo, package: GoPackage, struct: str, key: str, seen: frozenset = frozenset()):
    file, fields = package.structs[struct]
    for name, go_type, inline in fields:
        if not inline and name == key:
            return repo, package, struct, file, go_type
    for _name, go_type, inline in fields:
        if inline:
            try:
                inner_repo, inner_package, inner = _lookup(repo, package, file, go_type)
            except LookupError:
                continue
            if inner in inner_package.structs and (id(inner_package), inner) not in seen:
                found = _find_field(inner_repo, inner_package, inner, key, seen | {(id(inner_package), inner)})
                if found:
                    return found
    return None


def verify_objects(objects: dict, clones: Path) -> tuple[int, list[str]]:
    """(entries checked, problems): every `go` entry resolves at the newest tag to its
    type and declaring struct, and exists at its `since` tag (else the oldest)."""
    checked, problems = 0, []
    repos: dict[tuple[str, str], GoRepo] = {}
    for info in KINDS:
        kind = objects["kinds"][info.kind]
        paths = kind["path"] if isinstance(kind["path"], list) else [kind["path"]]
        newest = GoRepo(clones, kind["repository"], kind["tags"][1])
        repos[(kind["repository"], kind["tags"][1])] = newest
        for types_file in paths:
            declared = newest._package(types_file.rpartition("/")[0]).structs.get(info.kind, ("nowhere",))[0]
            if declared != types_file:
                problems.append(
                    f"kinds.{info.kind}.path: {info.kind} is declared in {declared} at "
                    f"{kind['tags'][1]}, not {types_file}"
                )
        for path, entry in kind["fields"].items():
            if "go" not in entry:
                continue
            roots = [(p.rsplit("/", 1)[0] if "/" in p else "", info.kind, path) for p in paths]
            if isinstance(entry.get("shape"), str):
                roots = [roots[["v1beta1", "v1"].index(entry["shape"])]]
            driver = kind.get("driver_config")
            if driver and path.startswith("spec."):
                roots = [(driver["path"].rsplit("/", 1)[0], driver["type"], path.removeprefix("spec."))]
            for label, tag in (("newest", kind["tags"][1]), ("since", entry.get("since", kind["tags"][0]))):
                repo = repos.get((kind["repository"], tag)) or repos.setdefault(
                    (kind["repository"], tag), GoRepo(clones, kind["repository"], tag)
                )
                answers, errors = [], []
                for directory, root, rel in roots:
                    try:
                        answers.append(resolve_go_path(repo, directory, root, rel))
                    except LookupError as exc:
                        errors.append(str(exc))
                where = f"kinds.{info.kind}.fields.{path} at {tag}"
                if not answers:
                    problems.append(f"{where}: {'; '.join(errors)}")
                elif label == "newest" and (entry["go"], entry["in"]) not in answers:
                    problems.append(
                        f"{where}: upstream has {answers[0][0]} in {answers[0][1]}, "
                        f"the entry says {entry['go']} in {entry['in']}"
                    )
            checked += 1
    return checked, problems


# ------------------------------------------------------------------ rendering


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value)
    elif isinstance(value, dict):
        value = ", ".join(f"{k}: {v}" for k, v in value.items())
    return str(value).replace("|", "\\|").replace("\n", " ")


def _code(value: Any) -> str:
    return f"`{_cell(value)}`" if value not in (None, "") else ""


def _field_counts(fields: dict) -> tuple[int, int, int]:
    upstream = sum(1 for e in fields.values() if "go" in e or "rust" in e)
    not_upstream = sum(1 for e in fields.values() if "not_upstream" in e)
    unverified = sum(1 for e in fields.values() if "unverified" in e)
    return upstream, not_upstream, unverified


def _field_row(path: str, entry: dict, kind: dict) -> str:
    if "not_upstream" in entry:
        return f"| `{path}` | not upstream | | | | | {_cell(entry['not_upstream'])} |"
    if "unverified" in entry:
        return f"| `{path}` | unverified | | | | | {_cell(entry['unverified'])} |"
    declared = _code(entry.get("in"))
    if "file" in entry:
        where = f"{entry['repository']} " if "repository" in entry else ""
        tags = f" ({', '.join(entry['tags'])})" if "tags" in entry else ""
        declared += f" in {where}`{entry['file']}`{tags}"
    changes = []
    if "shape" in entry:
        changes.append(f"shape {_cell(entry['shape'])}")
    if "since" in entry:
        changes.append(f"since {entry['since']}")
    if "was" in entry:
        changes.append("type " + ", ".join(f"`{t}` from {tag}" for t, tag in entry["was"].items()))
    if "absent_in" in entry:
        changes.append(f"absent in {_cell(entry['absent_in'])}")
    default = _cell(entry.get("default"))
    if "default_since" in entry:
        default = ", ".join(f"{v} from {t}" for t, v in entry["default_since"].items())
    values = _cell(entry.get("enum"))
    if "enum_since" in entry:
        values += " (" + ", ".join(f"{v} from {t}" for v, t in entry["enum_since"].items()) + ")"
    kind_type = entry.get("go") or entry.get("rust")
    lang = "" if "go" in entry else " (Rust)"
    return (
        f"| `{path}` | `{_cell(kind_type)}`{lang} | {declared} | {_cell(changes)} | {default} | "
        f"{values} | {_cell(entry.get('note'))} |"
    )


def _objects_section(objects: dict) -> list[str]:
    out = [
        "## Objects the exporter reads",
        "",
        "Every field path a record in `exporter/ov_exporter/records/` reads, with the upstream "
        "type it has. A `go` type was found by following the path through the Go structs' "
        "`json` tags at every tag read; `vendor/...` files are the copies the kind's "
        "repository builds with at that tag. To check one: clone the repository and "
        "`git show TAG:PATH`.",
        "",
        "| Kind | apiVersions read | Repository | Types file | Releases read "
        "| Fields: upstream / not upstream / unverified |",
        "|---|---|---|---|---|---|",
    ]
    kinds = objects["kinds"]
    for info in KINDS:
        kind = kinds[info.kind]
        up, not_up, unverified = _field_counts(kind["fields"])
        out.append(
            f"| [{info.kind}](#{info.kind.lower()}) | {_cell(kind.get('api'))} | {kind['repository']} | "
            f"{_cell(kind['path'])} | {kind['tags'][0]} … {kind['tags'][1]} ({len(kind['read'])} read) | "
            f"{up} / {not_up} / {unverified} |"
        )
    for info in KINDS:
        kind = kinds[info.kind]
        paths = kind["path"] if isinstance(kind["path"], list) else [kind["path"]]
        out += [
            "",
            f"### {info.kind}",
            "",
            f"`{kind['repository']}` " + ", ".join(f"`{p}`" for p in paths) + f"; read at: {', '.join(kind['read'])}.",
        ]
        if "branch_heads" in kind:
            out.append(
                "Release branches read at commits: "
                + ", ".join(f"{b} `{c}`" for b, c in kind["branch_heads"].items())
                + "."
            )
        if "served" in kind:
            out.append(f"Served versions: {kind['served']}.")
        if "driver_config" in kind:
            driver = kind["driver_config"]
            out.append(f"The spec is free-form; its fields come from `{driver['type']}` in `{driver['path']}`.")
        out += [
            "",
            "| Field | Upstream type | Declared in | Since / changes | Default | Values | Note |",
            "|---|---|---|---|---|---|---|",
        ]
        out += [_field_row(path, entry, kind) for path, entry in kind["fields"].items()]
    return out


def _metrics_section(metrics: dict) -> list[str]:
    link = "../../alerts/upstream-metrics.yaml"
    components = metrics.get("components") or {}
    used: dict[str, int] = {}
    for entry in (metrics.get("metrics") or {}).values():
        used[entry.get("component")] = used.get(entry.get("component"), 0) + 1
    out = [
        "## Metrics other components publish",
        "",
        f"The full contract, metric by metric with its source, is [alerts/upstream-metrics.yaml]({link}); "
        "`tests/test_upstream_contract.py` holds the rules, dashboards and promtool tests to it. "
        "Per component:",
        "",
        "| Component | Repository | Releases checked | Scraped by | Metrics listed |",
        "|---|---|---|---|---|",
    ]
    for name, component in components.items():
        scrape = component.get("scrape") or {}
        monitor = scrape.get("servicemonitor") if isinstance(scrape, dict) else None
        scraped = ""
        if isinstance(monitor, dict):
            refs = monitor.get("tags") or monitor.get("ref") or []
            scraped = (
                f"job `{scrape.get('job', '')}`: {monitor.get('repository', '')} "
                f"`{monitor.get('path', '')}` ({_cell(refs)})"
            )
        releases = [str(r) for r in component.get("releases") or []]
        if len(releases) > 4:
            releases = [f"{releases[0]} … {releases[-1]} ({len(releases)} releases)"]
        out.append(
            f"| {name} | {component.get('repository', '')} | {_cell(releases)} | {scraped} | {used.get(name, 0)} |"
        )
    needs = metrics.get("needs_release") or {}
    if needs:
        out += ["", "Rules that need a newer release than the oldest supported one:", ""]
        out += [f"- `{name}`: {entry.get('release')} ({entry.get('reason')})" for name, entry in needs.items()]
    return out


def _monitoring_section(monitoring: dict) -> list[str]:
    out = [
        "## OpenShift monitoring rules the deployment relies on",
        "",
        "From [openshift-monitoring.yaml](openshift-monitoring.yaml).",
    ]
    for rule in monitoring["rules"]:
        out += ["", f"### {rule['id']}", "", " ".join(rule["rule"].split()), ""]
        for source in rule["sources"]:
            refs = [
                f"{r} (`{source['commits'][r]}`)" if r in (source.get("commits") or {}) else r for r in source["refs"]
            ]
            out.append(
                f"- {source['repository']} `{source['path']}` at {', '.join(refs)}: {' '.join(source['shows'].split())}"
            )
        if rule.get("unverified"):
            out += ["", f"Unverified: {' '.join(rule['unverified'].split())}"]
    return out


def render(objects: dict, monitoring: dict, metrics: dict) -> str:
    lines = [
        "# Upstream facts the exporter relies on",
        "",
        "Generated by `exporter/scripts/upstream_doc.py` from [upstream-objects.yaml](upstream-objects.yaml), "
        "[openshift-monitoring.yaml](openshift-monitoring.yaml) and "
        "[alerts/upstream-metrics.yaml](../../alerts/upstream-metrics.yaml): edit those and rerun it. "
        "Each fact names the upstream repository, file and release it was read at; "
        "`upstream_doc.py --verify DIR` re-checks every Go type against git clones DIR/<owner>/<name>.",
        "",
    ]
    lines += _objects_section(objects) + [""]
    lines += _metrics_section(metrics) + [""]
    lines += _monitoring_section(monitoring)
    return "\n".join(lines) + "\n"


def build() -> str:
    """The document from the current inputs; InputError when an input is invalid."""
    objects, monitoring, metrics = load_yaml(OBJECTS), load_yaml(MONITORING), load_yaml(METRICS)
    errors = validate_objects(objects) + validate_monitoring(monitoring)
    if errors:
        raise InputError("\n".join(errors))
    return render(objects, monitoring, metrics)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when exporter/docs/upstream.md is stale")
    parser.add_argument(
        "--verify", metavar="DIR", type=Path, help="re-check every Go entry against git clones DIR/<owner>/<name>"
    )
    args = parser.parse_args(argv)
    if args.verify:
        try:
            checked, problems = verify_objects(load_yaml(OBJECTS), args.verify)
        except InputError as exc:
            print(exc, file=sys.stderr)
            return 1
        print("\n".join(problems + [f"{checked} Go entries checked, {len(problems)} problems"]))
        return 1 if problems else 0
    try:
        text = build()
    except InputError as exc:
        print(exc, file=sys.stderr)
        return 1
    rel = _shown(OUTPUT)
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print(f"{rel} is stale: run python exporter/scripts/upstream_doc.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

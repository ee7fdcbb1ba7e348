"""Read Kubernetes objects and Prometheus samples from files.

Handles `oc get -o yaml|json` dumps (single objects, multi-document YAML, `List` and
`*List` with `items`), must-gather trees and Insights archives (objects without `kind`,
whose kind and namespace come from the path, see `layout_of`). Every problem is
reported with the file (and object, and field) and skipped; nothing else is lost.

Hostile input cannot stop or hang a load: only regular files are read (a symlink only
when it resolves inside the root), never more than the size cap; YAML aliases may add
at most MAX_YAML_ALIAS_EXPANSION nodes to what the file spells out; objects over the
size or nesting limits of `records` are skipped one by one.
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import yaml
from prometheus_client.parser import text_string_to_metric_families

from .. import upstream
from ..events import Emit, Ignored, ProblemFound, Samples, SamplesUpdated, Upserted, UpstreamSample
from ..records import (
    KINDS,
    MAX_OBJECT_BYTES,
    KindInfo,
    ObjectLimitError,
    convert,
    decode_json,
    kind_for,
    selector_matches,
)
from .promql import DERIVED_QUERIES, parse_query_data

log = logging.getLogger(__name__)

OBJECT_SUFFIXES = (".yaml", ".yml", ".json")
SAMPLE_SUFFIXES = (".prom",)
MAX_FILE_BYTES = 64 * 2**20
# Dumps from the API never use aliases; hand-written manifests use a few. Aliases may add
# this many nodes to a file once expanded (an alias bomb adds billions from 500 bytes).
MAX_YAML_ALIAS_EXPANSION = 100_000
KEPT_WITHOUT = " kept without "  # in the problem of an object loaded without its bad fields

# Path components that name a kind: plural, singular and Insights' folder names.
_KIND_BY_PATH_NAME: dict[str, KindInfo] = {}
for _k in KINDS:
    _KIND_BY_PATH_NAME.setdefault(_k.plural, _k)
    _KIND_BY_PATH_NAME.setdefault(_k.singular, _k)
    if _k.plural.endswith("s"):
        _KIND_BY_PATH_NAME.setdefault(_k.plural.replace("-", ""), _k)
# PodMetrics' plural is "pods": it must not claim must-gather `core/pods.yaml`; its folder is `podmetrics`.
for _k in KINDS:
    if _k.group == "metrics.k8s.io" and _KIND_BY_PATH_NAME.get(_k.plural) is _k:
        del _KIND_BY_PATH_NAME[_k.plural]


class _Loader(yaml.CSafeLoader if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader):  # type: ignore[misc]
    """Safe loader that keeps timestamps as strings (records parse them) ."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _Envelope(msgspec.Struct):
    """What tells a file's shape. Raw fields are not decoded here: a number out of range
    in one object's status must not sink the file."""

    kind: str = ""
    apiVersion: str = ""
    items: list[msgspec.Raw] | None = None
    status: msgspec.Raw = msgspec.Raw(b"")  # empty: absent (msgspec.Raw cannot be in a union)
    data: msgspec.Raw = msgspec.Raw(b"")

    def query_data(self) -> dict | None:
        """The `data` of a Prometheus query answer, or None when this is not one."""
        if not self.status or not self.data or bytes(self.status) == b"null":
            return None
        try:
            data = msgspec.json.decode(self.data)
        except msgspec.DecodeError:
            return None
        return data if isinstance(data, dict) and "resultType" in data else None


@dataclass
class LoadStats:
    """What one load saw, for `check` to judge whether it can vouch for the input."""

    files: int = 0  # object and sample files read (not empty)
    failed_files: int = 0  # files skipped whole (unreadable, over the cap, not parseable)
    objects: int = 0  # objects loaded into the store
    skipped_objects: int = 0  # objects skipped (over a limit, no name, undecodable)
    dropped_fields: int = 0  # objects kept with one or more fields dropped
    duplicates: int = 0  # objects defined twice, differently: the later one ignored
    sample_files: int = 0


class FileLoader:
    """Loads files and emits what they hold (events.py). One instance per load; counts
    what it saw and remembers where each object was found."""

    def __init__(self, emit: Emit, root: Path, max_file_bytes: int = MAX_FILE_BYTES) -> None:
        self.emit = emit
        self.root = root
        self.max_file_bytes = max_file_bytes
        self.samples: Samples = {}
        self.stats = LoadStats()
        self._seen_files: dict[tuple[int, int], str] = {}  # (device, inode) -> rel: links read once
        # (kind, namespace, name) -> (where, record): the first definition wins
        self._defined: dict[tuple[str, str, str], tuple[str, Any]] = {}
        # Kind keys of typed Lists seen (`VirtualMachineList`), even empty: listed, not missing.
        self.listed_kinds: set[str] = set()
        self.counts: dict[str, int] = {}  # kind key -> objects loaded
        self.problems: list[tuple[str, str]] = []  # (where, message), in the order found
        # (kind, namespace, name) -> (file, line): where the object was found (line 0 =
        # unknown). Findings point there in SARIF and JUnit reports.
        self.origins: dict[tuple[str, str, str], tuple[str, int]] = {}

    def origin(self, kind: str, namespace: str, name: str) -> tuple[str, int] | None:
        return self.origins.get((kind, namespace, name))

    def _ignored(self, reason: str) -> None:
        self.emit(Ignored(reason))

    def _problem(self, where: str, message: str) -> None:
        self.problems.append((where, message))
        self.emit(ProblemFound(where, message))

    @property
    def objects(self) -> int:
        return self.stats.objects

    @property
    def sample_files(self) -> int:
        return self.stats.sample_files

    # ------------------------------------------------------------ walking

    def load_tree(self) -> None:
        if not self.root.is_dir():
            raise NotADirectoryError(f"snapshot directory {self.root} does not exist or is not a directory")
        self._real_root = self.root.resolve()
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames.sort()
            for name in list(dirnames):
                if os.path.islink(os.path.join(dirpath, name)):
                    self._ignored("symlinked directory (not followed)")
            for filename in sorted(filenames):
                path = Path(dirpath, filename)
                if filename.endswith(OBJECT_SUFFIXES) or filename.endswith(SAMPLE_SUFFIXES):
                    self.load_file(path)

    def _rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    def _fail(self, rel: str, message: str) -> None:
        """A problem with the whole file: nothing (more) is read from it."""
        self.stats.failed_files += 1
        self._problem(rel, message)

    def _read(self, path: Path, rel: str) -> bytes | None:
        """The file's bytes, or None (reported). Regular files only, symlinks only inside
        the root, never more than max_file_bytes read, never blocking on a FIFO."""
        real = Path(os.path.realpath(path))
        root = getattr(self, "_real_root", None) or self.root.resolve()
        if real != path.absolute() and not real.is_relative_to(root):
            self._fail(rel, f"symlink to {real}, outside the snapshot directory; skipped")
            return None
        try:
            fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
        except OSError as exc:
            self._fail(rel, f"cannot read: {exc.strerror or exc}")
            return None
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                self._fail(rel, f"not a regular file ({_file_type(st.st_mode)}); skipped")
                return None
            first = self._seen_files.setdefault((st.st_dev, st.st_ino), rel)
            if first != rel:
                self._ignored("link to a file already read")
                return None
            data = f.read(self.max_file_bytes + 1)  # the cap holds even if the file grows
        if len(data) > self.max_file_bytes:
            self._fail(rel, f"file is over the {self.max_file_bytes}-byte cap; skipped")
            return None
        return data

    def load_file(self, path: Path) -> None:
        rel = self._rel(path)
        data = self._read(path, rel)
        if data is not None and not data.strip():
            return  # an empty file: nothing to load, nothing wrong
        self.stats.files += 1
        if data is None:
            return
        try:
            if path.name.endswith(SAMPLE_SUFFIXES):
                self._load_exposition(rel, data)
            elif path.name.endswith(".json"):
                self._load_json(rel, path, data)
            else:
                self._load_yaml(rel, path, data)
        except Exception as exc:  # noqa: BLE001 - one bad file never stops the load
            self._fail(rel, f"{type(exc).__name__}: {exc}")

    # ------------------------------------------------------------ formats

    def _load_json(self, rel: str, path: Path, data: bytes) -> None:
        data = data.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 BOM, as some Windows tools write
        try:
            top = msgspec.json.decode(data, type=_Envelope | list[msgspec.Raw])
        except RecursionError:
            self._fail(rel, "JSON nested too deeply to decode; skipped")
            return
        except msgspec.ValidationError:  # a subclass of DecodeError: must come first
            self._ignored(f"not an object (JSON {_json_type(data)})")
            return
        except msgspec.DecodeError as exc:
            self._fail(rel, f"invalid JSON: {exc}")
            return
        if isinstance(top, list):  # a bare JSON array of objects
            lines = _LineCounter(data)
            for i, raw in enumerate(top):
                item = bytes(raw)
                self._json_object(rel, path, item, f"[{i}]", line=lines.find(item))
            return
        if (query := top.query_data()) is not None:
            self._load_query_result(rel, query)
        elif top.items is not None and (top.kind.endswith("List") or not top.kind):
            item_kind = self._typed_list(top.kind, top.apiVersion)
            lines = _LineCounter(data)
            for i, raw in enumerate(top.items):
                item = bytes(raw)
                self._json_object(rel, path, item, f"items[{i}]", item_kind, top.apiVersion, line=lines.find(item))
        else:
            self._json_object(rel, path, data, "", line=1 + data[: len(data) - len(data.lstrip())].count(b"\n"))

    def _json_object(
        self, rel: str, path: Path, data: bytes, at: str, default_kind: str = "", default_api: str = "", line: int = 0
    ) -> None:
        try:
            env = msgspec.json.decode(data, type=_Envelope)
        except RecursionError:
            self._skip(f"{rel} {at}".strip(), "nested too deeply to decode; object skipped")
            return
        except (msgspec.DecodeError, msgspec.ValidationError):
            self._ignored(f"not an object (JSON {_json_type(data)})")
            return
        kind, namespace = self._resolve_kind(env.kind or default_kind, env.apiVersion or default_api, path)
        if kind is None:
            return
        self._add(kind, rel, at, lambda dropped: decode_json(kind.record, data, dropped), namespace, line)

    def _load_yaml(self, rel: str, path: Path, data: bytes) -> None:
        # Compose node by node (what yaml.load_all does) to keep each object's line, and
        # measure what aliases expand to before anything walks the result.
        loader = _Loader(data)
        docs: list[tuple[Any, yaml.Node]] = []
        try:
            while loader.check_node():
                node = loader.get_node()
                written, expanded = _yaml_size(node)
                if expanded is None:
                    self._fail(
                        rel,
                        f"YAML document {len(docs) + 1} holds an alias to a node that contains "
                        "it (recursive alias); refused",
                    )
                    return
                if expanded - written > MAX_YAML_ALIAS_EXPANSION:
                    self._fail(
                        rel,
                        f"YAML aliases expand document {len(docs) + 1} by more than "
                        f"{MAX_YAML_ALIAS_EXPANSION} nodes (limit {MAX_YAML_ALIAS_EXPANSION}); "
                        "refusing a possible alias bomb",
                    )
                    return
                docs.append((loader.construct_document(node), node))
        except yaml.YAMLError as exc:
            self._fail(rel, f"invalid YAML: {' '.join(str(exc).split())}")
            return
        finally:
            loader.dispose()
        for d, (doc, node) in enumerate(docs):
            at = f"document {d + 1}" if len(docs) > 1 else ""
            if isinstance(doc, list):  # a bare YAML list of objects
                for i, item in enumerate(doc):
                    self._dict_object(rel, path, item, f"{at}[{i}]".lstrip(), node=_child(node, i))
            else:
                self._dict_object(rel, path, doc, at, node=node)

    def _dict_object(
        self,
        rel: str,
        path: Path,
        doc: Any,
        at: str,
        default_kind: str = "",
        default_api: str = "",
        node: yaml.Node | None = None,
    ) -> None:
        if doc is None:
            return  # empty document between `---`
        if not isinstance(doc, dict):
            self._ignored("not an object")
            return
        kind_name = doc.get("kind") if isinstance(doc.get("kind"), str) else ""
        api = doc.get("apiVersion") if isinstance(doc.get("apiVersion"), str) else ""
        items = doc.get("items")
        if isinstance(items, list) and (kind_name.endswith("List") or not kind_name) and not default_kind:
            item_kind = self._typed_list(kind_name, api)
            items_node = _child(node, "items")
            for i, item in enumerate(items):
                self._dict_object(
                    rel, path, item, f"{at} items[{i}]".strip(), item_kind or "-", api, node=_child(items_node, i)
                )
            return
        if "status" in doc and isinstance(doc.get("data"), dict) and "resultType" in doc["data"]:
            self._load_query_result(rel, doc["data"])
            return
        default_kind = "" if default_kind == "-" else default_kind  # "-": an item of an untyped List
        kind, namespace = self._resolve_kind(kind_name or default_kind, api or default_api, path)
        if kind is None:
            return
        if node is not None and node.end_mark.index - node.start_mark.index > MAX_OBJECT_BYTES:
            self._skip(f"{rel} {at}".strip(), f"{kind.kind}: object spans more than {MAX_OBJECT_BYTES} bytes; skipped")
            return
        self._add(
            kind,
            rel,
            at,
            lambda dropped: convert(kind.record, doc, dropped),
            namespace,
            node.start_mark.line + 1 if node else 0,
        )

    # ------------------------------------------------------------ objects

    def _typed_list(self, list_kind: str, api: str) -> str:
        """The item kind of a `<Kind>List` ("" for a plain List); records the kind as listed."""
        if not list_kind.endswith("List") or list_kind == "List":
            return ""
        item_kind = list_kind[: -len("List")]
        kind = kind_for(api, item_kind) if api else _kind_by_name(item_kind)
        if kind is not None:
            self.listed_kinds.add(kind.key)
        return item_kind

    def _resolve_kind(self, kind_name: str, api: str, path: Path) -> tuple[KindInfo | None, str | None]:
        rel = path.relative_to(self.root) if path.is_relative_to(self.root) else path
        layout_kind, namespace = layout_of(rel)
        if kind_name:
            kind = kind_for(api, kind_name) if api else _kind_by_name(kind_name)
            if kind is None:
                self._ignored(f"kind {api + '/' if api else ''}{kind_name}")
            return kind, namespace
        if layout_kind is None:
            self._ignored("no kind")
        return layout_kind, namespace

    def _skip(self, where: str, message: str) -> None:
        self.stats.skipped_objects += 1
        self._problem(where, message)

    def _add(self, kind: KindInfo, rel: str, at: str, build, namespace: str | None, line: int = 0) -> None:
        where = f"{rel} {at}".strip()
        dropped: list[str] = []
        try:
            record = build(dropped)
        except ObjectLimitError as exc:
            self._skip(where, f"{kind.kind}: {exc}")
            return
        except msgspec.ValidationError as exc:
            self._skip(where, f"{kind.kind}: {exc}")
            return
        meta = record.metadata
        if not meta.name:
            self._skip(where, f"{kind.kind} has no metadata.name; skipped")
            return
        if kind.namespaced and not meta.namespace:
            meta.namespace = namespace or ""
        elif not kind.namespaced:
            meta.namespace = ""
        if kind.label_selector and not selector_matches(kind.label_selector, meta.labels):
            # e.g. every Pod of a must-gather: only virt-handler pods are read, as from the API
            self._ignored(f"kind {kind.group + '/' if kind.group else ''}{kind.versions[0]}/{kind.kind}")
            return
        ref = f"{kind.kind} {meta.namespace + '/' if meta.namespace else ''}{meta.name}"
        here = f"{rel}:{line}" if line else rel
        identity = (kind.kind, meta.namespace, meta.name)
        first = self._defined.get(identity)
        if first is not None:
            if first[1] == record:
                self._ignored("identical duplicate object")
            else:
                self.stats.duplicates += 1
                self._problem(
                    where,
                    f"{ref} is defined twice, differently: at {first[0]} and at {here}; "
                    f"kept the one at {first[0]} (first in path order), ignored this one",
                )
            return
        self._defined[identity] = (here, record)
        if dropped:
            self.stats.dropped_fields += 1
            self._problem(
                where, f"{ref}{KEPT_WITHOUT}{len(dropped)} field(s) that do not decode: " + "; ".join(dropped)
            )
        self.emit(Upserted(kind, record))
        self.origins[(kind.kind, meta.namespace, meta.name)] = (rel, line)
        self.counts[kind.key] = self.counts.get(kind.key, 0) + 1
        self.stats.objects += 1

    # ------------------------------------------------------------ samples

    def _keep(self, name: str, labels: dict[str, str], value: float, ts: float | None) -> None:
        name = upstream.ALIASES.get(name, name)
        if name in upstream.WANTED or name in DERIVED_QUERIES:  # derived: as `snapshot --out` writes them
            self.samples.setdefault(name, []).append(UpstreamSample(labels, value, ts))

    def _load_exposition(self, rel: str, data: bytes) -> None:
        try:
            families = list(text_string_to_metric_families(data.decode("utf-8")))
        except Exception as exc:  # the parser raises ValueError and friends
            self._fail(rel, f"invalid Prometheus text format: {exc}")
            return
        self.stats.sample_files += 1
        for fam in families:
            for s in fam.samples:
                self._keep(s.name, dict(s.labels), float(s.value), s.timestamp)

    def _load_query_result(self, rel: str, data: dict) -> None:
        """The `data` of a Prometheus /api/v1/query answer (vector or matrix)."""
        self.stats.sample_files += 1
        for error in parse_query_data(data, self.samples):
            where, _, message = error.partition(": ")
            self._problem(f"{rel} {where}" if message else rel, message or error)


def _child(node: yaml.Node | None, key: str | int) -> yaml.Node | None:
    """The YAML node under a mapping key or at a sequence index (None when unknown)."""
    if isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
        return node.value[key]
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                return v
    return None


class _LineCounter:
    """Line numbers of consecutive items in a JSON document: each item's source bytes
    are found after the previous one, so the whole file is scanned once."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos, self.line = data, 0, 1

    def find(self, item: bytes) -> int:
        at = self.data.find(item, self.pos)
        if at < 0:
            return 0
        self.line += self.data.count(b"\n", self.pos, at)
        self.pos = at
        return self.line


def _kind_by_name(kind_name: str) -> KindInfo | None:
    matches = [k for k in KINDS if k.kind == kind_name]
    return matches[0] if len(matches) == 1 else None


def _file_type(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a directory"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _json_type(data: bytes) -> str:
    first = data.lstrip()[:1]
    return {b'"': "string", b"[": "array", b"{": "object", b"t": "boolean", b"f": "boolean", b"n": "null"}.get(
        first, "number"
    )


def _yaml_size(root: yaml.Node) -> tuple[int, int | None]:
    """(nodes written, nodes once aliases are expanded) of one composed document;
    expanded is None for a recursive alias. Iterative: one visit per distinct node."""
    expanded: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    on_path: set[int] = set()
    while stack:
        node, done = stack.pop()
        key = id(node)
        children = (
            [c for pair in node.value for c in pair]
            if isinstance(node, yaml.MappingNode)
            else (node.value if isinstance(node, yaml.SequenceNode) else [])
        )
        if done:
            on_path.discard(key)
            expanded[key] = 1 + sum(expanded[id(c)] for c in children)
            continue
        if key in expanded:
            continue
        if key in on_path:
            return len(expanded), None  # a node containing itself
        on_path.add(key)
        stack.append((node, True))
        for child in children:
            if id(child) in on_path:
                return len(expanded), None
            if id(child) not in expanded:
                stack.append((child, False))
    return len(expanded), expanded[id(root)]


# Where the kind of an object without `kind` comes from: the documented layouts.
# `oc adm inspect` / must-gather (openshift/oc pkg/cli/admin/inspect/util.go
# dirPathForInfo, filenameForInfo; namespace.go; pod.go):
#   namespaces/<ns>/<group|core>/<plural>.yaml             a List
#   namespaces/<ns>/<group|core>/<plural>/<name>.yaml
#   namespaces/<ns>/<ns>.yaml                               the Namespace
#   namespaces/<ns>/pods/<pod>/<pod>.yaml                   a Pod
#   cluster-scoped-resources/<group|core>/<plural>.yaml and .../<plural>/<name>.yaml
# Insights archives (openshift/insights-operator docs/gathered-data.md) use the same
# `namespaces/` and `cluster-scoped-resources/` shapes, plus
#   config/<kind>/<name>.json, config/<kind>/<ns>/<name>.json (config/node/<node>.json,
#   config/pod/<ns>/<pod>.json), config/storage/<plural>/<name>.json
# Elsewhere, a file named after a kind (`oc get nodes -o yaml > nodes.yaml`) gives it.
_KIND_BY_GROUP_PLURAL = {(k.group, k.plural): k for k in KINDS}


def _by_group(group: str, plural: str) -> KindInfo | None:
    return _KIND_BY_GROUP_PLURAL.get(("" if group == "core" else group, plural.lower()))


def _layout_at(anchor: str, tail: list[str]) -> tuple[KindInfo | None, str | None]:
    n = len(tail)
    if anchor == "cluster-scoped-resources" and n in (2, 3):
        kind = _by_group(tail[0], tail[1])
        return (kind, None) if kind is not None and not kind.namespaced else (None, None)
    if anchor == "namespaces" and n >= 2:
        namespace = tail[0]
        if n == 2 and tail[1] == namespace:
            return _by_group("core", "namespaces"), None
        if n == 4 and tail[1] == "pods":
            return _by_group("core", "pods"), namespace
        kind = _by_group(tail[1], tail[2]) if n in (3, 4) else None
        return (kind, namespace) if kind is not None and kind.namespaced else (None, None)
    if anchor == "config" and 1 <= n <= 3:
        if tail[0] == "storage" and n == 3:
            tail, n = tail[1:], 2
        kind = _KIND_BY_PATH_NAME.get(tail[0].lower())
        if kind is None or (n == 3 and not kind.namespaced):
            return None, None
        return kind, tail[1] if n == 3 else None
    return None, None


ANCHORS = ("namespaces", "cluster-scoped-resources", "config")


def layout_of(rel: Path) -> tuple[KindInfo | None, str | None]:
    """(kind, namespace) that a file's path gives by a documented layout (above), the
    deepest anchor first; (None, None) when it follows none."""
    parts = list(rel.parts[:-1]) + [rel.stem]
    anchored = False
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] in ANCHORS:
            anchored = True
            kind, namespace = _layout_at(parts[i], parts[i + 1 :])
            if kind is not None:
                return kind, namespace
    if not anchored:
        return _KIND_BY_PATH_NAME.get(parts[-1].lower()), None
    return None, None


def kind_from_path(rel: Path) -> KindInfo | None:
    return layout_of(rel)[0]


def load_directory(emit: Emit, root: Path) -> FileLoader:
    """Emit every object and sample file below root (blocking)."""
    loader = FileLoader(emit, root)
    loader.load_tree()
    emit(SamplesUpdated(loader.samples if loader.sample_files else None, f"files in {root}"))
    for where, message in loader.problems:
        log.warning("%s: %s", where, message)
    return loader

"""Read Kubernetes objects and Prometheus samples from files.

Handles `oc get -o yaml|json` dumps (single objects, multi-document YAML, `List` and
`*List` with `items`), must-gather trees and Insights archives (objects without `kind`,
whose kind and namespace come from the path). Every problem is reported with the file
(and object, and field) and skipped; nothing else is lost.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Iterator

import msgspec
import yaml
from prometheus_client.parser import text_string_to_metric_families

from .. import upstream
from ..records import KINDS, KindInfo, convert, decode_json, kind_for, selector_matches
from ..store import MetricSample, Samples, Store
from .promql import DERIVED_QUERIES, parse_query_data

log = logging.getLogger(__name__)

OBJECT_SUFFIXES = (".yaml", ".yml", ".json")
SAMPLE_SUFFIXES = (".prom",)
MAX_FILE_BYTES = 64 * 2**20
MAX_YAML_ALIASES = 100  # dumps from the API never use aliases; many aliases = alias bomb

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
    kind: str = ""
    apiVersion: str = ""
    items: list[msgspec.Raw] | None = None
    status: Any = None
    data: Any = None


class FileLoader:
    """Loads files into a Store. One instance per load; counts what it saw."""

    def __init__(self, store: Store, root: Path, max_file_bytes: int = MAX_FILE_BYTES) -> None:
        self.store = store
        self.root = root
        self.max_file_bytes = max_file_bytes
        self.samples: Samples = {}
        self.sample_files = 0
        self.objects = 0

    # ------------------------------------------------------------ walking

    def load_tree(self) -> None:
        if not self.root.is_dir():
            raise NotADirectoryError(f"snapshot directory {self.root} does not exist or is not a directory")
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames.sort()
            for filename in sorted(filenames):
                path = Path(dirpath, filename)
                if filename.endswith(OBJECT_SUFFIXES) or filename.endswith(SAMPLE_SUFFIXES):
                    self.load_file(path)

    def _rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    def load_file(self, path: Path) -> None:
        rel = self._rel(path)
        try:
            size = path.stat().st_size
            if size > self.max_file_bytes:
                self.store.problem(rel, f"file is {size} bytes, over the {self.max_file_bytes}-byte cap; skipped")
                return
            data = path.read_bytes()
        except OSError as exc:
            self.store.problem(rel, f"cannot read: {exc.strerror or exc}")
            return
        if not data.strip():
            return
        try:
            if path.name.endswith(SAMPLE_SUFFIXES):
                self._load_exposition(rel, data)
            elif path.name.endswith(".json"):
                self._load_json(rel, path, data)
            else:
                self._load_yaml(rel, path, data)
        except Exception as exc:  # noqa: BLE001 - one bad file never stops the load
            self.store.problem(rel, f"{type(exc).__name__}: {exc}")

    # ------------------------------------------------------------ formats

    def _load_json(self, rel: str, path: Path, data: bytes) -> None:
        try:
            top = msgspec.json.decode(data, type=_Envelope | list[msgspec.Raw])
        except msgspec.DecodeError as exc:
            self.store.problem(rel, f"invalid JSON: {exc}")
            return
        except msgspec.ValidationError:
            self.store.ignored("not an object")
            return
        if isinstance(top, list):  # a bare JSON array of objects
            lines = _LineCounter(data)
            for i, raw in enumerate(top):
                item = bytes(raw)
                self._json_object(rel, path, item, f"[{i}]", line=lines.find(item))
            return
        if top.status is not None and isinstance(top.data, dict) and "resultType" in top.data:
            self._load_query_result(rel, top.data)
        elif top.items is not None and (top.kind.endswith("List") or not top.kind):
            item_kind = top.kind[: -len("List")] if top.kind.endswith("List") and top.kind != "List" else ""
            lines = _LineCounter(data)
            for i, raw in enumerate(top.items):
                item = bytes(raw)
                self._json_object(rel, path, item, f"items[{i}]", item_kind, top.apiVersion, line=lines.find(item))
        else:
            self._json_object(rel, path, data, "", line=1 + data[: len(data) - len(data.lstrip())].count(b"\n"))

    def _json_object(self, rel: str, path: Path, data: bytes, at: str,
                     default_kind: str = "", default_api: str = "", line: int = 0) -> None:
        try:
            env = msgspec.json.decode(data, type=_Envelope)
        except (msgspec.DecodeError, msgspec.ValidationError):
            self.store.ignored("not an object")
            return
        kind = self._resolve_kind(env.kind or default_kind, env.apiVersion or default_api, path)
        if kind is None:
            return
        self._add(kind, rel, at, lambda: decode_json(kind.record, data), path, line)

    def _load_yaml(self, rel: str, path: Path, data: bytes) -> None:
        if b"*" in data and b"&" in data:
            aliases = sum(1 for ev in yaml.parse(data, Loader=_Loader) if isinstance(ev, yaml.AliasEvent))
            if aliases > MAX_YAML_ALIASES:
                self.store.problem(rel, f"YAML uses {aliases} aliases (limit {MAX_YAML_ALIASES}); refusing a possible alias bomb")
                return
        # Compose node by node (what yaml.load_all does) to keep each object's line.
        loader = _Loader(data)
        docs: list[tuple[Any, yaml.Node]] = []
        try:
            while loader.check_node():
                node = loader.get_node()
                docs.append((loader.construct_document(node), node))
        except yaml.YAMLError as exc:
            self.store.problem(rel, f"invalid YAML: {' '.join(str(exc).split())}")
            return
        finally:
            loader.dispose()
        for d, (doc, node) in enumerate(docs):
            at = f"document {d + 1}" if len(docs) > 1 else ""
            self._dict_object(rel, path, doc, at, node=node)

    def _dict_object(self, rel: str, path: Path, doc: Any, at: str,
                     default_kind: str = "", default_api: str = "", node: yaml.Node | None = None) -> None:
        if doc is None:
            return  # empty document between `---`
        if isinstance(doc, list):
            for i, item in enumerate(doc):
                self._dict_object(rel, path, item, f"{at}[{i}]".lstrip(), node=_child(node, i))
            return
        if not isinstance(doc, dict):
            self.store.ignored("not an object")
            return
        kind_name = doc.get("kind") if isinstance(doc.get("kind"), str) else ""
        api = doc.get("apiVersion") if isinstance(doc.get("apiVersion"), str) else ""
        items = doc.get("items")
        if isinstance(items, list) and (kind_name.endswith("List") or not kind_name):
            item_kind = kind_name[: -len("List")] if kind_name.endswith("List") and kind_name != "List" else ""
            items_node = _child(node, "items")
            for i, item in enumerate(items):
                self._dict_object(rel, path, item, f"{at} items[{i}]".strip(), item_kind, api,
                                  node=_child(items_node, i))
            return
        if "status" in doc and isinstance(doc.get("data"), dict) and "resultType" in doc["data"]:
            self._load_query_result(rel, doc["data"])
            return
        kind = self._resolve_kind(kind_name or default_kind, api or default_api, path)
        if kind is None:
            return
        self._add(kind, rel, at, lambda: convert(kind.record, doc), path, node.start_mark.line + 1 if node else 0)

    # ------------------------------------------------------------ objects

    def _resolve_kind(self, kind_name: str, api: str, path: Path) -> KindInfo | None:
        if kind_name:
            kind = kind_for(api, kind_name) if api else _kind_by_name(kind_name)
            if kind is None:
                self.store.ignored(f"kind {api + '/' if api else ''}{kind_name}")
            return kind
        kind = kind_from_path(path.relative_to(self.root) if path.is_relative_to(self.root) else path)
        if kind is None:
            self.store.ignored("no kind")
        return kind

    def _add(self, kind: KindInfo, rel: str, at: str, build, path: Path, line: int = 0) -> None:
        where = f"{rel} {at}".strip()
        try:
            record = build()
        except msgspec.ValidationError as exc:
            self.store.problem(where, f"{kind.kind}: {exc}")
            return
        meta = record.metadata
        if not meta.name:
            self.store.problem(where, f"{kind.kind} has no metadata.name; skipped")
            return
        if kind.namespaced and not meta.namespace:
            meta.namespace = namespace_from_path(path) or ""
        elif not kind.namespaced:
            meta.namespace = ""
        if kind.label_selector and not selector_matches(kind.label_selector, meta.labels):
            # e.g. every Pod of a must-gather: only virt-handler pods are read, as from the API
            self.store.ignored(f"kind {kind.group + '/' if kind.group else ''}{kind.versions[0]}/{kind.kind}")
            return
        self.store.apply(kind, "ADDED", record)
        self.store.locate(kind.kind, meta.namespace, meta.name, rel, line)
        self.objects += 1

    # ------------------------------------------------------------ samples

    def _keep(self, name: str, labels: dict[str, str], value: float, ts: float | None) -> None:
        name = upstream.ALIASES.get(name, name)
        if name in upstream.WANTED or name in DERIVED_QUERIES:  # derived: as `snapshot --out` writes them
            self.samples.setdefault(name, []).append(MetricSample(labels, value, ts))

    def _load_exposition(self, rel: str, data: bytes) -> None:
        try:
            families = list(text_string_to_metric_families(data.decode("utf-8")))
        except Exception as exc:  # the parser raises ValueError and friends
            self.store.problem(rel, f"invalid Prometheus text format: {exc}")
            return
        self.sample_files += 1
        for fam in families:
            for s in fam.samples:
                self._keep(s.name, dict(s.labels), float(s.value), s.timestamp)

    def _load_query_result(self, rel: str, data: dict) -> None:
        """The `data` of a Prometheus /api/v1/query answer (vector or matrix)."""
        self.sample_files += 1
        for error in parse_query_data(data, self.samples):
            where, _, message = error.partition(": ")
            self.store.problem(f"{rel} {where}" if message else rel, message or error)


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


def kind_from_path(rel: Path) -> KindInfo | None:
    """Kind from a must-gather or Insights path: `<group>/<plural>/<name>.yaml`,
    `core/<plural>.yaml`, `config/node/<name>.json`."""
    parts = list(rel.parts[:-1]) + [rel.stem]
    for i in range(len(parts) - 1, -1, -1):
        kind = _KIND_BY_PATH_NAME.get(parts[i].lower())
        if kind is None:
            continue
        group = parts[i - 1] if i > 0 else ""
        if "." in group and group != kind.group:
            continue  # e.g. operator.openshift.io/networks is not config.openshift.io
        return kind
    return None


def namespace_from_path(path: Path) -> str | None:
    parts = path.parts
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "namespaces" and i + 1 < len(parts) - 1:
            return parts[i + 1]
    return None


def load_directory(store: Store, root: Path) -> FileLoader:
    """Load every object and sample file below root into store (blocking)."""
    loader = FileLoader(store, root)
    loader.load_tree()
    store.set_samples(loader.samples if loader.sample_files else None, f"files in {root}")
    for problem in store.problems:
        log.warning("skipped %s", problem)
    return loader

"""A fake Kubernetes API server that speaks the real list/watch protocol over HTTP.

Objects are kept as plain dicts, per resource (group + plural), under one global
integer resourceVersion, like etcd's revision. Every change is appended to the
resource's event log, which serves watch replay from a resourceVersion, consistent
paginated LISTs (a continue token reads the list as of its resourceVersion) and the
`410 Expired` answers once `compact()` dropped the log. Discovery is the legacy
(non-aggregated) format, which kubectl and client-go fall back to.

Everything runs in the caller's event loop: tests mutate objects with `add`, `modify`
and `delete` and open watches see the events at once. Faults are injected per
resource: `fail`, `absent`, `drop_watches`, `expire`, `delay`, `inject_malformed`; the
whole server: `outage` and `restore`, `set_token`.

Delegated authentication and authorisation: `add_user` maps bearer tokens to users for
TokenReview, `allow` grants non-resource URLs to a user or group for
SubjectAccessReview, `refuse_reviews` answers both with an error; the reviews received
are kept in `token_reviews` and `access_reviews`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import json
import os
import re
import shutil
import ssl
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, NamedTuple

import yaml
from aiohttp import web
from ov_exporter.records import KINDS

JSON = "application/json"
ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
BUILTIN_GROUPS = {
    "",
    "apps",
    "batch",
    "storage.k8s.io",
    "rbac.authorization.k8s.io",
    "networking.k8s.io",
    "policy",
    "autoscaling",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "events.k8s.io",
    "scheduling.k8s.io",
    "node.k8s.io",
    "apiextensions.k8s.io",
    "admissionregistration.k8s.io",
    "certificates.k8s.io",
}
SHORT_NAMES: dict[str, list[str]] = {
    "nodes": ["no"],
    "namespaces": ["ns"],
    "persistentvolumeclaims": ["pvc"],
    "persistentvolumes": ["pv"],
    "pods": ["po"],
    "services": ["svc"],
    "configmaps": ["cm"],
    "serviceaccounts": ["sa"],
    "events": ["ev"],
    "storageclasses": ["sc"],
    "deployments": ["deploy"],
    "daemonsets": ["ds"],
    "replicasets": ["rs"],
    "virtualmachines": ["vm", "vms"],
    "virtualmachineinstances": ["vmi", "vmis"],
    "virtualmachineinstancemigrations": ["vmim", "vmims"],
    "kubevirts": ["kv", "kvs"],
    "hyperconvergeds": ["hco", "hcos"],
    "datavolumes": ["dv", "dvs"],
    "network-attachment-definitions": ["net-attach-def", "nad"],
    "nodenetworkstates": ["nns"],
    "migrationpolicies": [],
    "storageprofiles": [],
    "tridentbackendconfigs": ["tbc", "tbconfig"],
    "nodenetworkconfigurationpolicies": ["nncp"],
}
CATEGORIES: dict[str, list[str]] = {
    plural: ["all"]
    for plural in (
        "pods",
        "services",
        "deployments",
        "daemonsets",
        "replicasets",
        "statefulsets",
        "virtualmachines",
        "virtualmachineinstances",
        "datavolumes",
    )
}
# Well-known kinds registered on first sight: (group, kind) -> (plural, namespaced).
WELL_KNOWN: dict[tuple[str, str], tuple[str, bool]] = {
    ("", "Pod"): ("pods", True),
    ("", "Secret"): ("secrets", True),
    ("", "ConfigMap"): ("configmaps", True),
    ("", "Service"): ("services", True),
    ("", "ServiceAccount"): ("serviceaccounts", True),
    ("", "Endpoints"): ("endpoints", True),
    ("", "Event"): ("events", True),
    ("", "PersistentVolume"): ("persistentvolumes", False),
    ("", "ResourceQuota"): ("resourcequotas", True),
    ("", "LimitRange"): ("limitranges", True),
    ("apps", "Deployment"): ("deployments", True),
    ("apps", "DaemonSet"): ("daemonsets", True),
    ("apps", "ReplicaSet"): ("replicasets", True),
    ("apps", "StatefulSet"): ("statefulsets", True),
    ("rbac.authorization.k8s.io", "ClusterRole"): ("clusterroles", False),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): ("clusterrolebindings", False),
    ("rbac.authorization.k8s.io", "Role"): ("roles", True),
    ("rbac.authorization.k8s.io", "RoleBinding"): ("rolebindings", True),
    ("apiextensions.k8s.io", "CustomResourceDefinition"): ("customresourcedefinitions", False),
    ("scheduling.k8s.io", "PriorityClass"): ("priorityclasses", False),
    ("cdi.kubevirt.io", "CDI"): ("cdis", False),
    ("instancetype.kubevirt.io", "VirtualMachineClusterInstancetype"): ("virtualmachineclusterinstancetypes", False),
}
# Core kinds served even when empty, so discovery looks like a real cluster.
# Aggregated APIs that serve get/list only (metrics-server): a watch answers 405.
NO_WATCH_GROUPS = {"metrics.k8s.io"}
PREREGISTERED = [
    ("", "v1", "Pod"),
    ("", "v1", "Secret"),
    ("", "v1", "ConfigMap"),
    ("", "v1", "Service"),
    ("", "v1", "ServiceAccount"),
    ("", "v1", "PersistentVolume"),
    ("", "v1", "Event"),
]
# Field selectors the real API server supports beyond metadata.name/namespace.
EXTRA_FIELDS: dict[tuple[str, str], set[str]] = {
    ("", "pods"): {
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    },
    ("", "nodes"): {"spec.unschedulable"},
    ("", "secrets"): {"type"},
    ("", "events"): {
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    },
    ("", "namespaces"): {"status.phase"},
    ("", "persistentvolumes"): {"spec.storageClassName"},
}
REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}
DEFAULT_USER = "system:serviceaccount:openshift-cnv:ov-exporter"


class RequestRecord(NamedTuple):
    method: str
    path: str
    query: dict[str, str]
    status: int


class Status(Exception):
    """An API error answered as a metav1.Status body."""

    def __init__(
        self, code: int, message: str, reason: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code, self.message = code, message
        self.reason = reason if reason is not None else REASONS.get(code, "")
        self.details = details

    def body(self) -> dict[str, Any]:
        st: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details is not None:
            st["details"] = self.details
        st["code"] = self.code
        return st

    def response(self) -> web.Response:
        headers = {"Retry-After": "1"} if self.code in (429, 503) else None
        return web.Response(status=self.code, body=_dumps(self.body()), content_type=JSON, headers=headers)


def not_found_path() -> Status:
    return Status(404, "the server could not find the requested resource", details={})


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _plural_of(kind: str) -> str:
    low = kind.lower()
    if low.endswith(("s", "x", "z", "ch", "sh")):
        return low + "es"
    if low.endswith("y") and low[-2:-1] not in "aeiou":
        return low[:-1] + "ies"
    return low + "s"


def _split_api_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true")


# ---------------------------------------------------------------- selectors


def _split_terms(text: str) -> list[str]:
    terms, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append(cur)
            cur = ""
        else:
            cur += ch
    terms.append(cur)
    return [t.strip() for t in terms if t.strip()]


_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"
_VAL = r"[-A-Za-z0-9_.]*"


def parse_label_selector(text: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """Equality, inequality, existence and set-based requirements, like labels.Parse."""
    reqs = []
    for term in _split_terms(text or ""):
        if m := re.fullmatch(rf"(!?)\s*({_KEY})", term):
            reqs.append((m.group(2), "!" if m.group(1) else "exists", ()))
        elif m := re.fullmatch(rf"({_KEY})\s*(==|=|!=)\s*({_VAL})", term):
            reqs.append((m.group(1), "!=" if m.group(2) == "!=" else "=", (m.group(3),)))
        elif m := re.fullmatch(rf"({_KEY})\s+(in|notin)\s*\(([^)]*)\)", term):
            values = tuple(v.strip() for v in m.group(3).split(",") if v.strip())
            reqs.append((m.group(1), m.group(2), values))
        else:
            raise Status(400, f"unable to parse requirement: {term!r}")
    return reqs


def labels_match(labels: dict[str, str] | None, reqs: list[tuple[str, str, tuple[str, ...]]]) -> bool:
    labels = labels or {}
    for key, op, values in reqs:
        present, value = key in labels, labels.get(key)
        if op == "exists" and not present or op == "!" and present:
            return False
        if op in ("=", "in") and (not present or value not in values):
            return False
        if op in ("!=", "notin") and present and value in values:
            return False
    return True


def _field_value(obj: dict[str, Any], path: str) -> str:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


# ---------------------------------------------------------------- resources


@dataclass
class Event:
    rv: int
    type: str  # ADDED | MODIFIED | DELETED
    key: tuple[str, str]
    obj: dict[str, Any]
    prev: dict[str, Any] | None


@dataclass(eq=False)
class Watcher:
    rt: "ResourceType"
    version: str
    namespace: str | None
    lsel: list
    fsel: list
    request: web.Request
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)


@dataclass(eq=False)
class ResourceType:
    group: str
    kind: str
    plural: str
    namespaced: bool
    versions: list[str]  # preferred first
    singular: str = ""
    short_names: list[str] = field(default_factory=list)
    objects: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    log: list[Event] = field(default_factory=list)
    compacted: int = 0  # events with rv <= compacted are gone
    expire_at: int | None = None  # expire(): the next watch from rv <= this gets a 410
    malformed: list[str] = field(default_factory=list)
    watchers: set[Watcher] = field(default_factory=set)

    @property
    def key(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def builtin(self) -> bool:
        return self.group in BUILTIN_GROUPS

    def api_version(self, version: str) -> str:
        return f"{self.group}/{version}" if self.group else version

    def matches(self, spec: str) -> bool:
        return spec in (self.plural, f"{self.group}/{self.plural}", self.key, self.kind) or (
            not self.group and spec == f"core/{self.plural}"
        )

    def view(self, obj: dict[str, Any], version: str) -> dict[str, Any]:
        """The object as served at `version` (conversion is only the apiVersion)."""
        api_version = self.api_version(version)
        if obj.get("apiVersion") == api_version and obj.get("kind") == self.kind:
            return obj
        out = dict(obj)
        out["apiVersion"], out["kind"] = api_version, self.kind
        return out

    def not_found(self, name: str) -> Status:
        return Status(
            404, f'{self.key} "{name}" not found', details={"name": name, "group": self.group, "kind": self.plural}
        )


@dataclass
class Fault:
    status: int
    times: int | None
    verbs: tuple[str, ...]
    message: str | None
    user: str


# ---------------------------------------------------------------- YAML


class _Loader(yaml.CSafeLoader if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader):  # type: ignore[misc]
    """Keeps timestamps as strings, as the API serves them."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _documents(path: Path) -> Iterable[Any]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        yield json.loads(text)
    else:
        yield from yaml.load_all(text, Loader=_Loader)


def _expand(doc: Any) -> Iterable[dict[str, Any]]:
    if not isinstance(doc, dict):
        return
    kind = doc.get("kind")
    if isinstance(doc.get("items"), list) and isinstance(kind, str) and kind.endswith("List"):
        item_kind = kind[:-4] if kind != "List" else None
        for item in doc["items"]:
            if isinstance(item, dict):
                if item_kind and "kind" not in item:
                    item = {**item, "kind": item_kind, "apiVersion": item.get("apiVersion", doc.get("apiVersion"))}
                yield from _expand(item)
    elif isinstance(kind, str) and isinstance(doc.get("apiVersion"), str):
        yield doc


# ---------------------------------------------------------------- JSON patches


def _merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge_patch(out.get(key), value)
    return out


def _json_patch(doc: Any, ops: list[dict[str, Any]]) -> Any:
    doc = copy.deepcopy(doc)

    def walk(path: str) -> tuple[Any, str]:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]
        cur = doc
        for part in parts[:-1]:
            cur = cur[int(part)] if isinstance(cur, list) else cur[part]
        return cur, parts[-1]

    for op in ops:
        parent, last = walk(op["path"])
        kind = op["op"]
        if kind == "test":
            current = parent[int(last)] if isinstance(parent, list) else parent[last]
            if current != op["value"]:
                raise Status(422, f"the test operation on {op['path']} failed")
        elif kind in ("add", "replace"):
            if isinstance(parent, list):
                if last == "-":
                    parent.append(op["value"])
                elif kind == "add":
                    parent.insert(int(last), op["value"])
                else:
                    parent[int(last)] = op["value"]
            else:
                if kind == "replace" and last not in parent:
                    raise Status(422, f"replace operation does not apply: doc is missing key: {op['path']}")
                parent[last] = op["value"]
        elif kind == "remove":
            if isinstance(parent, list):
                del parent[int(last)]
            else:
                del parent[last]
        else:
            raise Status(422, f"unsupported JSON patch operation {kind!r}")
    return doc


# ---------------------------------------------------------------- the server


class FakeAPIServer:
    """In-process fake kube-apiserver. See the module docstring."""

    def __init__(
        self,
        token: str | None = None,
        *,
        bookmark_interval: float = 1.0,
        max_events: int | None = None,
        user: str = DEFAULT_USER,
        register_kinds: bool = True,
        tls: bool = False,
    ) -> None:
        self.token = token
        self.tls = tls  # https with a self-signed certificate (kubectl sends tokens only over TLS)
        self.ca_cert: Path | None = None
        self._tls_dir: str | None = None
        self.bookmark_interval = bookmark_interval
        self.max_events = max_events  # per-resource log size; older events are compacted away
        self.user = user
        self.rv = 0
        self.requests: list[RequestRecord] = []
        self._types: dict[tuple[str, str], ResourceType] = {}
        self._by_kind: dict[tuple[str, str], ResourceType] = {}
        self._group_versions: dict[str, list[str]] = {}  # group -> versions, preferred first
        self._absent: set[str] = set()  # "group" or "group/version"
        self._faults: dict[str, Fault] = {}
        self._delays: dict[str, float] = {}
        self._runner: web.AppRunner | None = None
        self.users: dict[str, dict[str, Any]] = {}  # token -> TokenReview status.user
        self.access_rules: list[tuple[str, str, str, str]] = []  # (user|group, name, path, verb)
        self.token_reviews: list[dict[str, Any]] = []  # request bodies received
        self.access_reviews: list[dict[str, Any]] = []
        self.review_fault: int | None = None
        self.url = ""
        self.port = 0
        if register_kinds:
            for k in KINDS:
                for version in k.versions:
                    self.register(k.group, version, k.kind, k.plural, k.namespaced)
            for group, version, kind in PREREGISTERED:
                plural, namespaced = WELL_KNOWN[(group, kind)]
                self.register(group, version, kind, plural, namespaced)

    # ------------------------------------------------------------ resource table

    def register(
        self,
        group: str,
        version: str,
        kind: str,
        plural: str,
        namespaced: bool,
        short_names: list[str] | None = None,
        singular: str | None = None,
    ) -> ResourceType:
        """Serves `kind` as group/version/plural (adds the version to a known resource)."""
        rt = self._types.get((group, plural))
        if rt is None:
            rt = ResourceType(
                group,
                kind,
                plural,
                namespaced,
                [version],
                singular or kind.lower(),
                list(short_names if short_names is not None else SHORT_NAMES.get(plural, [])),
            )
            self._types[(group, plural)] = rt
            self._by_kind.setdefault((group, kind), rt)
        elif version not in rt.versions:
            rt.versions.append(version)
        versions = self._group_versions.setdefault(group, [])
        if version not in versions:
            versions.append(version)
        return rt

    def resource(self, spec: str) -> ResourceType:
        """A resource by plural, "group/plural", "plural.group" or Kind."""
        for rt in self._types.values():
            if rt.matches(spec):
                return rt
        raise KeyError(f"unknown resource {spec!r}")

    def _resources(self, spec: str | None) -> list[ResourceType]:
        if spec is None:
            return list(self._types.values())
        found = [rt for rt in self._types.values() if rt.matches(spec)]
        if not found:
            raise KeyError(f"unknown resource {spec!r}")
        return found

    def _type_for(self, api_version: str, kind: str, namespace: str) -> ResourceType:
        group, version = _split_api_version(api_version)
        if not version or not kind:
            raise ValueError(f"object without apiVersion/kind: {api_version!r} {kind!r}")
        rt = self._by_kind.get((group, kind))
        if rt is None:
            plural, namespaced = WELL_KNOWN.get((group, kind), (_plural_of(kind), bool(namespace)))
            return self.register(group, version, kind, plural, namespaced)
        if version not in rt.versions:
            self.register(group, version, kind, rt.plural, rt.namespaced)
        return rt

    def _served(self, group: str, version: str) -> bool:
        return (
            version in self._group_versions.get(group, ())
            and group not in self._absent
            and f"{group}/{version}" not in self._absent
        )

    # ------------------------------------------------------------ objects (test API)

    def _prepare(self, obj: dict[str, Any]) -> tuple[ResourceType, tuple[str, str], dict[str, Any]]:
        obj = json.loads(json.dumps(obj))  # a private deep copy; fails early on non-JSON values
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict) or not meta.get("name"):
            raise ValueError(f"object without metadata.name: {str(obj)[:200]}")
        rt = self._type_for(obj.get("apiVersion", ""), obj.get("kind", ""), meta.get("namespace") or "")
        if rt.namespaced:
            meta["namespace"] = meta.get("namespace") or "default"
        else:
            meta.pop("namespace", None)
        return rt, (meta.get("namespace", ""), meta["name"]), obj

    def _record(
        self, rt: ResourceType, etype: str, key: tuple[str, str], obj: dict[str, Any], prev: dict[str, Any] | None
    ) -> None:
        event = Event(self.rv, etype, key, obj, prev)
        rt.log.append(event)
        if self.max_events is not None and len(rt.log) > self.max_events:
            drop = len(rt.log) - self.max_events
            rt.compacted = rt.log[drop - 1].rv
            del rt.log[:drop]
        for w in list(rt.watchers):
            line = self._event_line(w, event)
            if line is not None:
                w.queue.put_nowait(("line", line))

    def add(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Creates an object (ValueError when it exists); returns the stored dict."""
        rt, key, obj = self._prepare(obj)
        if key in rt.objects:
            raise ValueError(f"{rt.key} {key[0] + '/' if key[0] else ''}{key[1]} already exists")
        self.rv += 1
        meta = obj["metadata"]
        meta["resourceVersion"] = str(self.rv)
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", _now())
        rt.objects[key] = obj
        self._record(rt, "ADDED", key, obj, None)
        return obj

    def modify(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Replaces an existing object (KeyError when absent); returns the stored dict."""
        rt, key, obj = self._prepare(obj)
        prev = rt.objects.get(key)
        if prev is None:
            raise KeyError(f"{rt.key} {key[0] + '/' if key[0] else ''}{key[1]} not found")
        self.rv += 1
        meta = obj["metadata"]
        meta["resourceVersion"] = str(self.rv)
        meta["uid"] = meta.get("uid") or prev["metadata"].get("uid") or str(uuid.uuid4())
        meta["creationTimestamp"] = meta.get("creationTimestamp") or prev["metadata"].get("creationTimestamp")
        rt.objects[key] = obj
        self._record(rt, "MODIFIED", key, obj, prev)
        return obj

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """add or modify."""
        rt, key, _ = self._prepare(obj)
        return self.modify(obj) if key in rt.objects else self.add(obj)

    def delete(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict[str, Any]:
        """Deletes an object (KeyError when absent); returns its last state."""
        rt = self._type_for(api_version, kind, namespace or "")
        key = (namespace or "default" if rt.namespaced else "", name)
        prev = rt.objects.pop(key, None)
        if prev is None:
            raise KeyError(f"{rt.key} {key[0] + '/' if key[0] else ''}{name} not found")
        self.rv += 1
        gone = dict(prev)
        gone["metadata"] = {**prev["metadata"], "resourceVersion": str(self.rv)}
        self._record(rt, "DELETED", key, gone, prev)
        return gone

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        rt = self._by_kind.get((_split_api_version(api_version)[0], kind))
        if rt is None:
            return None
        return rt.objects.get((namespace or "default" if rt.namespaced else "", name))

    def objects(self, resource: str) -> list[dict[str, Any]]:
        rt = self.resource(resource)
        return [rt.objects[k] for k in sorted(rt.objects)]

    def load_snapshot(self, directory: str | os.PathLike[str]) -> int:
        """Loads every *.yaml, *.yml and *.json below `directory` (multi-document YAML,
        `List` and `*List`); returns the number of objects stored."""
        count = 0
        for dirpath, dirnames, filenames in os.walk(directory):
            dirnames.sort()
            for filename in sorted(filenames):
                path = Path(dirpath, filename)
                if path.suffix not in (".yaml", ".yml", ".json"):
                    continue
                for doc in _documents(path):
                    for obj in _expand(doc):
                        if isinstance(obj.get("metadata"), dict) and obj["metadata"].get("name"):
                            self.apply(obj)
                            count += 1
        return count

    # ------------------------------------------------------------ faults (test API)

    def compact(self, resource: str | None = None) -> int:
        """Drops the event log up to now (all resources or one); returns the compaction point."""
        for rt in self._resources(resource):
            rt.log.clear()
            rt.compacted = self.rv
        return self.rv

    def fail(
        self,
        resource: str,
        status: int,
        times: int | None = None,
        *,
        verbs: Iterable[str] = ("list", "watch", "get"),
        message: str | None = None,
        user: str | None = None,
    ) -> None:
        """Answers LIST/WATCH/GET of `resource` with `status` and a real-looking Status body,
        `times` times or until clear_faults()."""
        self.resource(resource)
        self._faults[resource] = Fault(status, times, tuple(verbs), message, user or self.user)

    def clear_faults(self) -> None:
        """Removes fail, delay, malformed items, pending expiries and absent groups."""
        self._faults.clear()
        self._delays.clear()
        self._absent.clear()
        for rt in self._types.values():
            rt.malformed.clear()
            rt.expire_at = None

    def absent(self, group: str) -> None:
        """The API group (or "group/version") is not installed: gone from discovery, its
        paths answer 404, its open watches end."""
        self._absent.add(group)
        for rt in self._types.values():
            if not self._any_served(rt):
                self._end_watchers(rt, clean=True)

    def present(self, group: str) -> None:
        self._absent.discard(group)

    def _any_served(self, rt: ResourceType) -> bool:
        return any(self._served(rt.group, v) for v in rt.versions)

    def drop_watches(self, resource: str | None = None, *, clean: bool = False) -> int:
        """Closes open watch streams: abruptly (connection closed mid-stream, no error
        event), or cleanly (end of the chunked stream, like a timeout). Returns how many."""
        return sum(self._end_watchers(rt, clean) for rt in self._resources(resource))

    def _end_watchers(self, rt: ResourceType, clean: bool) -> int:
        n = len(rt.watchers)
        for w in list(rt.watchers):
            w.queue.put_nowait(("end" if clean else "drop", None))
        rt.watchers.clear()
        return n

    def expire(self, resource: str, *, now: bool = False) -> None:
        """Makes every resourceVersion seen so far too old, once: the next watch of
        `resource` from such a resourceVersion gets the 410 ERROR event (a watch from a
        later list does not). now=True sends the 410 to the open watches instead, which
        then end."""
        for rt in self._resources(resource):
            if now:
                line = self._error_line(self._too_old(rt, self.rv))
                for w in list(rt.watchers):
                    w.queue.put_nowait(("line", line))
                    w.queue.put_nowait(("end", None))
                rt.watchers.clear()
            else:
                rt.expire_at = self.rv

    def delay(self, resource: str, seconds: float) -> None:
        """Delays every LIST/GET/WATCH answer of `resource` (0 removes the delay)."""
        self.resource(resource)
        if seconds:
            self._delays[resource] = seconds
        else:
            self._delays.pop(resource, None)

    def inject_malformed(self, resource: str, raw_json_text: str) -> None:
        """Serves `raw_json_text` verbatim as one more item of LISTs and as a watch ADDED
        event (to open watches now, and to watches starting from resourceVersion 0)."""
        for rt in self._resources(resource):
            rt.malformed.append(raw_json_text)
            line = b'{"type":"ADDED","object":' + raw_json_text.encode() + b"}\n"
            for w in rt.watchers:
                w.queue.put_nowait(("line", line))

    async def outage(self) -> None:
        """The API server goes away: open watches break, new connections are refused.
        `restore()` brings it back on the same address with the same objects."""
        for rt in self._types.values():
            self._end_watchers(rt, clean=False)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def restore(self) -> None:
        host = self.url.split("://", 1)[1].rsplit(":", 1)[0]
        await self.start(host, self.port)

    def watch_count(self, resource: str | None = None) -> int:
        """Open watch streams (of one resource or all)."""
        return sum(len(rt.watchers) for rt in self._resources(resource))

    def set_token(self, token: str | None) -> None:
        self.token = token

    # ------------------------------------------------------------ delegated auth

    def add_user(
        self,
        token: str,
        username: str,
        groups: Iterable[str] = (),
        uid: str = "",
        extra: dict[str, list[str]] | None = None,
    ) -> None:
        """A TokenReview of `token` authenticates this user."""
        user: dict[str, Any] = {"username": username, "groups": list(groups)}
        if uid:
            user["uid"] = uid
        if extra:
            user["extra"] = extra
        self.users[token] = user

    def allow(
        self, path: str = "/metrics", verb: str = "get", *, user: str | None = None, group: str | None = None
    ) -> None:
        """A SubjectAccessReview for `verb` on the non-resource URL `path` is allowed for
        this user or group (like a ClusterRole with nonResourceURLs bound to them)."""
        if (user is None) == (group is None):
            raise ValueError("allow(): give user or group")
        self.access_rules.append(("user", user, path, verb) if user is not None else ("group", group, path, verb))

    def refuse_reviews(self, status: int | None) -> None:
        """TokenReviews and SubjectAccessReviews answer this error (None: answer again)."""
        self.review_fault = status

    async def _review(self, request: web.Request, kind: str) -> web.Response:
        # Shapes of k8s.io/api authentication/v1/types.go (TokenReview: spec.token,
        # status.authenticated, status.user{username,uid,groups,extra}, status.error) and
        # authorization/v1/types.go (SubjectAccessReview: spec.user/groups/uid/extra,
        # spec.nonResourceAttributes{path,verb}, status.allowed/denied/reason) in
        # github.com/kubernetes/api at v0.31.0.
        if self.review_fault is not None:
            group = "authentication.k8s.io" if kind == "TokenReview" else "authorization.k8s.io"
            raise Status(
                self.review_fault,
                f'{kind.lower()}s.{group} is forbidden: User "{self.user}" cannot '
                f'create resource "{kind.lower()}s" in API group "{group}" at the cluster scope',
            )
        body = await self._body(request)
        if not isinstance(body, dict) or body.get("kind") != kind or not isinstance(body.get("spec"), dict):
            raise Status(400, f"the body is not a {kind}")
        spec = body["spec"]
        if kind == "TokenReview":
            self.token_reviews.append(body)
            user = self.users.get(spec.get("token", ""))
            status: dict[str, Any] = (
                {"authenticated": True, "user": user}
                if user is not None
                else {"user": {}, "error": "[invalid bearer token, token lookup failed]"}
            )
        else:
            self.access_reviews.append(body)
            attrs = spec.get("nonResourceAttributes") or {}
            subjects = {("user", spec.get("user"))} | {("group", g) for g in spec.get("groups") or []}
            rule = next(
                (
                    r
                    for r in self.access_rules
                    if (r[0], r[1]) in subjects and r[2] == attrs.get("path") and r[3] == attrs.get("verb")
                ),
                None,
            )
            status = (
                {"allowed": True, "reason": f"RBAC: allowed for {rule[0]} {rule[1]!r}"} if rule else {"allowed": False}
            )
        answer = {
            "kind": kind,
            "apiVersion": body.get("apiVersion"),
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": status,
        }
        return web.Response(status=201, body=_dumps(answer), content_type=JSON)

    # ------------------------------------------------------------ request log

    def count(self, resource: str | None = None, verb: str | None = None, status: int | None = None) -> int:
        """Requests recorded for a resource ("plural", "group/plural") and verb
        (list, watch, get, create, update, patch, delete, deletecollection, discovery)."""
        n = 0
        for rec in self.requests:
            info = self.classify(rec)
            if info is None or (verb and info[0] != verb) or (status is not None and rec.status != status):
                continue
            if resource is not None and not (
                info[2] == resource
                or f"{info[1]}/{info[2]}" == resource
                or (info[1] and f"{info[2]}.{info[1]}" == resource)
            ):
                continue
            n += 1
        return n

    @staticmethod
    def classify(rec: RequestRecord) -> tuple[str, str, str] | None:
        """(verb, group, plural) of a recorded request; verb "discovery" for the rest."""
        parts = [p for p in rec.path.split("/") if p]
        if parts[:2] == ["api", "v1"]:
            group, rest = "", parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group, rest = parts[1], parts[3:]
        else:
            return ("discovery", "", "")
        if not rest:
            return ("discovery", group, "")
        if rest[0] == "namespaces" and len(rest) >= 3:
            plural, name = rest[2], rest[3] if len(rest) > 3 else None
        elif rest[0] == "namespaces" and len(rest) == 2:
            plural, name = "namespaces", rest[1]
        else:
            plural, name = rest[0], rest[1] if len(rest) > 1 else None
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(rec.method)
        if verb is None:
            if rec.method == "DELETE":
                verb = "delete" if name else "deletecollection"
            elif name:
                verb = "get"
            else:
                verb = "watch" if _truthy(rec.query.get("watch")) else "list"
        return (verb, group, plural)

    # ------------------------------------------------------------ lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application(middlewares=[self._auth_middleware], client_max_size=64 * 2**20)
        app.on_response_prepare.append(self._on_prepare)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        ssl_context = await asyncio.to_thread(self._make_tls, host) if self.tls else None
        site = web.TCPSite(self._runner, host, port, ssl_context=ssl_context)
        await site.start()
        sock = site._server.sockets[0]  # type: ignore[union-attr]
        self.port = sock.getsockname()[1]
        self.url = f"{'https' if self.tls else 'http'}://{host}:{self.port}"
        return self.url

    def _make_tls(self, host: str) -> ssl.SSLContext:
        """A self-signed certificate for host, made with the openssl command."""
        openssl = shutil.which("openssl")
        if openssl is None:
            raise RuntimeError("FakeAPIServer(tls=True) needs the openssl command (Debian package openssl)")
        self._tls_dir = tempfile.mkdtemp(prefix="fakeapi-tls-")
        cert, key = Path(self._tls_dir, "tls.crt"), Path(self._tls_dir, "tls.key")
        subprocess.run(
            [
                openssl,
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                str(key),
                "-out",
                str(cert),
                "-days",
                "2",
                "-subj",
                "/CN=fakeapi",
                "-addext",
                f"subjectAltName=IP:{host},DNS:localhost",
            ],
            check=True,
            capture_output=True,
        )
        self.ca_cert = cert
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
        return ctx

    def client_ssl(self) -> ssl.SSLContext | bool:
        """For aiohttp clients: an SSL context trusting this server's certificate (True for http)."""
        if self.ca_cert is None:
            return True
        return ssl.create_default_context(cafile=str(self.ca_cert))

    async def stop(self) -> None:
        for rt in self._types.values():
            self._end_watchers(rt, clean=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._tls_dir is not None:
            shutil.rmtree(self._tls_dir, ignore_errors=True)
            self._tls_dir = None

    async def __aenter__(self) -> "FakeAPIServer":
        if not self.url:
            await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def kubeconfig(
        self,
        token: str | None = None,
        context: str = "fake",
        *,
        token_file: str | None = None,
        namespace: str | None = None,
    ) -> dict[str, Any]:
        if not self.url:
            raise RuntimeError("start() the server first")
        user: dict[str, Any] = {}
        if token is not None:
            user["token"] = token
        if token_file is not None:
            user["tokenFile"] = str(token_file)
        cluster: dict[str, Any] = {"server": self.url}
        if self.ca_cert is not None:
            cluster["certificate-authority-data"] = base64.b64encode(self.ca_cert.read_bytes()).decode()
        ctx: dict[str, Any] = {"cluster": context, "user": context}
        if namespace:
            ctx["namespace"] = namespace
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "preferences": {},
            "clusters": [{"name": context, "cluster": cluster}],
            "users": [{"name": context, "user": user}],
            "contexts": [{"name": context, "context": ctx}],
            "current-context": context,
        }

    def write_kubeconfig(
        self,
        path: str | os.PathLike[str],
        token: str | None = None,
        context: str = "fake",
        *,
        token_file: str | None = None,
        namespace: str | None = None,
    ) -> Path:
        """Writes a kubeconfig for this server (a bearer token user when given)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            yaml.safe_dump(self.kubeconfig(token, context, token_file=token_file, namespace=namespace), sort_keys=False)
        )
        os.chmod(path, 0o600)
        return path

    # ------------------------------------------------------------ HTTP plumbing

    async def _on_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        self.requests.append(RequestRecord(request.method, request.path, dict(request.query), response.status))

    @web.middleware
    async def _auth_middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.token is not None and request.headers.get("Authorization", "") != f"Bearer {self.token}":
            return Status(401, "Unauthorized", details=None).response()
        try:
            return await handler(request)
        except Status as st:
            return st.response()

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        if request.method == "GET" and parts in (["healthz"], ["readyz"], ["livez"]):
            return web.Response(text="ok")
        if request.method == "POST" and parts == ["apis", "authentication.k8s.io", "v1", "tokenreviews"]:
            return await self._review(request, "TokenReview")
        if request.method == "POST" and parts == ["apis", "authorization.k8s.io", "v1", "subjectaccessreviews"]:
            return await self._review(request, "SubjectAccessReview")
        if request.method == "GET":
            doc = self._discovery(parts)
            if doc is not None:
                return web.Response(body=_dumps(doc), content_type=JSON)
        if parts[:2] == ["api", "v1"] and len(parts) > 2:
            group, version, rest = "", "v1", parts[2:]
        elif parts[:1] == ["apis"] and len(parts) > 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise not_found_path()
        if not self._served(group, version):
            raise not_found_path()
        if rest[0] == "namespaces" and len(rest) >= 3:
            ns, plural, tail = rest[1], rest[2], rest[3:]
        else:
            ns, plural, tail = None, rest[0], rest[1:]
        if len(tail) > 2:
            raise not_found_path()
        name, sub = (tail + [None, None])[:2]
        rt = self._types.get((group, plural))
        if rt is None or version not in rt.versions or (ns is not None and not rt.namespaced):
            raise not_found_path()
        if name is not None and rt.namespaced and ns is None:
            raise not_found_path()
        if sub not in (None, "status"):
            raise not_found_path()
        q = request.query
        m = request.method
        if m == "GET":
            verb = "get" if name else ("watch" if _truthy(q.get("watch")) else "list")
        else:
            verb = {
                "POST": "create",
                "PUT": "update",
                "PATCH": "patch",
                "DELETE": "delete" if name else "deletecollection",
            }.get(m, "")
            if not verb or (verb in ("create", "deletecollection")) == bool(name):
                raise Status(405, "the server does not allow this method on the requested resource")
        await self._faults_for(rt, verb, ns)
        if verb == "get":
            obj = rt.objects.get((ns or "", name))
            if obj is None:
                raise rt.not_found(name)
            return self._object_response(rt.view(obj, version))
        if verb == "list":
            return self._list(rt, version, ns, q)
        if verb == "watch" and rt.group in NO_WATCH_GROUPS:  # like the aggregated metrics API
            raise Status(405, "the server does not allow this method on the requested resource", "MethodNotAllowed")
        if verb == "watch":
            return await self._watch(request, rt, version, ns, q)
        return await self._write(request, verb, rt, version, ns, name)

    def _object_response(self, obj: dict[str, Any], status: int = 200) -> web.Response:
        return web.Response(status=status, body=_dumps(obj), content_type=JSON)

    async def _faults_for(self, rt: ResourceType, verb: str, ns: str | None) -> None:
        for spec, seconds in list(self._delays.items()):
            if rt.matches(spec) and verb in ("get", "list", "watch"):
                await asyncio.sleep(seconds)
        for spec, fault in list(self._faults.items()):
            if not rt.matches(spec) or verb not in fault.verbs:
                continue
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    del self._faults[spec]
            raise self._fault_status(rt, fault, verb, ns)

    def _fault_status(self, rt: ResourceType, fault: Fault, verb: str, ns: str | None) -> Status:
        code = fault.status
        if code == 403:
            scope = f'in the namespace "{ns}"' if ns else "at the cluster scope"
            msg = fault.message or (
                f'{rt.key} is forbidden: User "{fault.user}" cannot {verb} resource '
                f'"{rt.plural}" in API group "{rt.group}" {scope}'
            )
            return Status(403, msg, details={"group": rt.group, "kind": rt.plural})
        if code == 404:
            return Status(404, fault.message or "the server could not find the requested resource", details={})
        if code == 410:
            return Status(410, fault.message or "too old resource version", "Expired")
        if code == 500:
            msg = fault.message or "Internal error occurred: injected fault"
            return Status(500, msg, details={"causes": [{"message": msg}]})
        if code == 503:
            return Status(
                503,
                fault.message or "the server is currently unable to handle the request",
                details={"retryAfterSeconds": 1},
            )
        if code == 429:
            return Status(
                429, fault.message or "Too many requests, please try again later.", details={"retryAfterSeconds": 1}
            )
        if code == 504:
            return Status(
                504,
                fault.message or "Timeout: request did not complete within the allotted timeout",
                details={"retryAfterSeconds": 1},
            )
        return Status(code, fault.message or f"injected fault {code}")

    # ------------------------------------------------------------ discovery

    def _resource_list(self, group: str, version: str) -> dict[str, Any]:
        resources = []
        for rt in self._types.values():
            if rt.group != group or version not in rt.versions:
                continue
            entry: dict[str, Any] = {
                "name": rt.plural,
                "singularName": rt.singular,
                "namespaced": rt.namespaced,
                "kind": rt.kind,
                "verbs": ALL_VERBS,
            }
            if rt.short_names:
                entry["shortNames"] = rt.short_names
            if rt.plural in CATEGORIES:
                entry["categories"] = CATEGORIES[rt.plural]
            entry["storageVersionHash"] = base64.b64encode(rt.key.encode()).decode()[:11]
            resources.append(entry)
            resources.append(
                {
                    "name": f"{rt.plural}/status",
                    "singularName": "",
                    "namespaced": rt.namespaced,
                    "kind": rt.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}".lstrip("/"),
            "resources": resources,
        }

    def _group_doc(self, group: str) -> dict[str, Any]:
        versions = [v for v in self._group_versions[group] if self._served(group, v)]
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"name": group, "versions": entries, "preferredVersion": entries[0]}

    def _discovery(self, parts: list[str]) -> dict[str, Any] | None:
        if parts == ["version"]:
            return {
                "major": "1",
                "minor": "32",
                "gitVersion": "v1.32.0-fakeapi",
                "gitCommit": "0" * 40,
                "gitTreeState": "clean",
                "buildDate": "2025-01-01T00:00:00Z",
                "goVersion": "go1.23.0",
                "compiler": "gc",
                "platform": "linux/amd64",
            }
        if parts == ["api"]:
            return {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{self.port}"}],
            }
        if parts == ["api", "v1"]:
            return self._resource_list("", "v1")
        if parts == ["apis"]:
            groups = [
                self._group_doc(g)
                for g in self._group_versions
                if g and any(self._served(g, v) for v in self._group_versions[g])
            ]
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
        if len(parts) == 2 and parts[0] == "apis":
            group = parts[1]
            if group in self._group_versions and any(self._served(group, v) for v in self._group_versions[group]):
                return {"kind": "APIGroup", "apiVersion": "v1", **self._group_doc(group)}
            raise not_found_path()
        if len(parts) == 3 and parts[0] == "apis":
            if not self._served(parts[1], parts[2]):
                raise not_found_path()
            return self._resource_list(parts[1], parts[2])
        if parts[:2] == ["openapi", "v3"]:
            return self._openapi_v3(parts[2:])
        return None

    def _openapi_v3(self, rest: list[str]) -> dict[str, Any]:
        """A minimal OpenAPI v3: enough for kubectl to see that the server validates
        fields itself (a PATCH operation per kind taking `fieldValidation`), so
        `kubectl create/apply/replace` need no client-side schema."""
        gvs = [("", "v1")] + [
            (g, v) for g, versions in self._group_versions.items() if g for v in versions if self._served(g, v)
        ]
        if not rest:
            return {
                "paths": {
                    (f"apis/{g}/{v}" if g else "api/v1"): {
                        "serverRelativeURL": f"/openapi/v3/{'apis/' + g if g else 'api'}/{v}?hash=fake"
                    }
                    for g, v in gvs
                }
            }
        if rest[0] == "api" and rest[1:] == ["v1"]:
            group, version = "", "v1"
        elif rest[0] == "apis" and len(rest) == 3 and self._served(rest[1], rest[2]):
            group, version = rest[1], rest[2]
        else:
            raise not_found_path()
        prefix = f"/apis/{group}/{version}" if group else "/api/v1"
        params = [
            {"name": p, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
            for p in ("dryRun", "fieldManager", "fieldValidation")
        ]
        paths: dict[str, Any] = {}
        for rt in self._types.values():
            if rt.group != group or version not in rt.versions:
                continue
            gvk = {"group": group, "version": version, "kind": rt.kind}
            path = (
                f"{prefix}/namespaces/{{namespace}}/{rt.plural}/{{name}}"
                if rt.namespaced
                else f"{prefix}/{rt.plural}/{{name}}"
            )
            op = {
                "parameters": params,
                "x-kubernetes-group-version-kind": gvk,
                "responses": {"200": {"description": "OK"}},
            }
            paths[path] = {
                "get": {**op, "x-kubernetes-action": "get"},
                "put": {**op, "x-kubernetes-action": "put"},
                "patch": {**op, "x-kubernetes-action": "patch"},
                "delete": {**op, "x-kubernetes-action": "delete"},
            }
        return {
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": "v1.32.0-fakeapi"},
            "paths": paths,
            "components": {"schemas": {}},
        }

    # ------------------------------------------------------------ LIST

    def _selectors(self, rt: ResourceType, q: Any) -> tuple[list, list]:
        lsel = parse_label_selector(q.get("labelSelector", ""))
        fsel = []
        allowed = {"metadata.name", "metadata.namespace"} | EXTRA_FIELDS.get((rt.group, rt.plural), set())
        for term in _split_terms(q.get("fieldSelector", "")):
            m = re.fullmatch(r"([^=!]+?)\s*(==|=|!=)\s*(.*)", term)
            if not m:
                raise Status(400, f"invalid selector: '{term}'; can't understand '{term}'")
            fname = m.group(1).strip()
            if fname not in allowed:
                raise Status(400, f"field label not supported: {fname}")
            fsel.append((fname, m.group(2) == "!=", m.group(3).strip()))
        return lsel, fsel

    @staticmethod
    def _selected(obj: dict[str, Any], lsel: list, fsel: list) -> bool:
        meta = obj.get("metadata") or {}
        if lsel and not labels_match(meta.get("labels"), lsel):
            return False
        for fname, negate, value in fsel:
            if (_field_value(obj, fname) == value) == negate:
                return False
        return True

    def _state_at(self, rt: ResourceType, rv: int) -> dict[tuple[str, str], dict[str, Any]]:
        """The resource's objects as of resourceVersion rv (rv >= rt.compacted)."""
        state = dict(rt.objects)
        for event in reversed(rt.log):
            if event.rv <= rv:
                break
            if event.type == "ADDED":
                state.pop(event.key, None)
            else:
                assert event.prev is not None
                state[event.key] = event.prev
        return state

    def _too_old(self, rt: ResourceType, rv: int) -> Status:
        return Status(410, f"too old resource version: {rv} ({rt.compacted})", "Expired")

    @staticmethod
    def _encode_continue(rv: int, key: tuple[str, str]) -> str:
        token = {"v": "meta.k8s.io/v1", "rv": rv, "start": f"{key[0]}/{key[1]}\x00"}
        return base64.urlsafe_b64encode(json.dumps(token).encode()).decode()

    @staticmethod
    def _decode_continue(token: str) -> tuple[int, tuple[str, str]]:
        try:
            data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            rv, start = int(data["rv"]), data["start"].rstrip("\x00")
            ns, _, name = start.partition("/")
            if data.get("v") != "meta.k8s.io/v1" or rv <= 0:
                raise ValueError
            return rv, (ns, name)
        except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError, AttributeError) as exc:
            raise Status(
                400,
                "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
                details={"causes": [{"reason": "FieldValueInvalid", "message": "Invalid value", "field": "continue"}]},
            ) from exc

    def _list(self, rt: ResourceType, version: str, ns: str | None, q: Any) -> web.Response:
        lsel, fsel = self._selectors(rt, q)
        try:
            limit = int(q.get("limit") or 0)
        except ValueError as exc:
            raise Status(400, f"invalid limit {q.get('limit')!r}") from exc
        rv_param, match = q.get("resourceVersion", ""), q.get("resourceVersionMatch", "")
        start: tuple[str, str] | None = None
        if q.get("continue"):
            list_rv, start = self._decode_continue(q["continue"])
            if list_rv < rt.compacted:
                raise Status(
                    410,
                    "The provided continue parameter is too old to display a consistent list "
                    "result. You can start a new list without the continue parameter, or use "
                    "the continue value from the response to retrieve the remainder of the results.",
                    "Expired",
                )
            state = self._state_at(rt, list_rv)
        else:
            requested = self._parse_rv(rv_param)
            if match and match not in ("Exact", "NotOlderThan"):
                raise Status(400, f'resourceVersionMatch: Unsupported value: "{match}"')
            if match and not rv_param:
                raise Status(400, "resourceVersionMatch is forbidden unless resourceVersion is provided")
            if requested > self.rv:
                raise Status(
                    504,
                    f"Too large resource version: {requested}, current: {self.rv}",
                    "Timeout",
                    details={
                        "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                        "retryAfterSeconds": 1,
                    },
                )
            if match == "Exact":
                if requested < rt.compacted:
                    raise self._too_old(rt, requested)
                list_rv, state = requested, self._state_at(rt, requested)
            else:
                list_rv, state = self.rv, rt.objects
        keys = sorted(
            k
            for k in state
            if (ns is None or k[0] == ns) and (start is None or k > start) and self._selected(state[k], lsel, fsel)
        )
        page = keys[:limit] if limit else keys
        meta: dict[str, Any] = {"resourceVersion": str(list_rv)}
        if limit and len(keys) > limit:
            meta["continue"] = self._encode_continue(list_rv, page[-1])
            if not lsel and not fsel:
                meta["remainingItemCount"] = len(keys) - limit
        items = []
        for k in page:
            obj = rt.view(state[k], version)
            if rt.builtin:  # typed lists of built-in kinds carry no kind/apiVersion per item
                obj = {key: value for key, value in obj.items() if key not in ("kind", "apiVersion")}
            items.append(_dumps(obj))
        if "continue" not in meta:
            items.extend(raw.encode() for raw in rt.malformed)
        body = (
            b'{"kind":'
            + _dumps(f"{rt.kind}List")
            + b',"apiVersion":'
            + _dumps(rt.api_version(version))
            + b',"metadata":'
            + _dumps(meta)
            + b',"items":['
            + b",".join(items)
            + b"]}"
        )
        return web.Response(body=body, content_type=JSON)

    @staticmethod
    def _parse_rv(value: str) -> int:
        if value in ("", "0"):
            return 0
        try:
            rv = int(value)
            if rv < 0:
                raise ValueError
            return rv
        except ValueError:
            raise Status(400, f'resourceVersion: Invalid value: "{value}": must be a non-negative integer') from None

    # ------------------------------------------------------------ WATCH

    def _event_line(self, w: Watcher, event: Event) -> bytes | None:
        """The event as this watcher sees it (namespace and selectors applied), or None."""
        if w.namespace is not None and event.key[0] != w.namespace:
            return None
        etype, obj = event.type, event.obj
        if w.lsel or w.fsel:
            now = event.type != "DELETED" and self._selected(event.obj, w.lsel, w.fsel)
            before = event.prev is not None and self._selected(event.prev, w.lsel, w.fsel)
            if event.type == "DELETED":
                if not before:
                    return None
            elif now and not before:
                etype = "ADDED"
            elif before and not now:  # left the selection: DELETED, old content, new resourceVersion
                etype = "DELETED"
                obj = {**event.prev, "metadata": {**event.prev["metadata"], "resourceVersion": str(event.rv)}}  # type: ignore[index]
            elif not now:
                return None
        return b'{"type":"' + etype.encode() + b'","object":' + _dumps(w.rt.view(obj, w.version)) + b"}\n"

    @staticmethod
    def _error_line(status: Status) -> bytes:
        return b'{"type":"ERROR","object":' + _dumps(status.body()) + b"}\n"

    def _bookmark_line(self, rt: ResourceType, version: str, initial_end: bool = False) -> bytes:
        meta: dict[str, Any] = {"resourceVersion": str(self.rv)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        obj = {"kind": rt.kind, "apiVersion": rt.api_version(version), "metadata": meta}
        return b'{"type":"BOOKMARK","object":' + _dumps(obj) + b"}\n"

    async def _watch(
        self, request: web.Request, rt: ResourceType, version: str, ns: str | None, q: Any
    ) -> web.StreamResponse:
        lsel, fsel = self._selectors(rt, q)
        rv_param = q.get("resourceVersion", "")
        requested = self._parse_rv(rv_param)
        bookmarks = _truthy(q.get("allowWatchBookmarks"))
        send_initial = _truthy(q.get("sendInitialEvents"))
        try:
            timeout = float(q["timeoutSeconds"]) if q.get("timeoutSeconds") else None
        except ValueError as exc:
            raise Status(400, f"invalid timeoutSeconds {q.get('timeoutSeconds')!r}") from exc
        resp = web.StreamResponse(status=200)
        resp.content_type = JSON
        resp.enable_chunked_encoding()
        await resp.prepare(request)

        # No await from here to registration: the replay and the live events neither
        # overlap nor leave a gap.
        w = Watcher(rt, version, ns, lsel, fsel, request)
        lines: list[bytes] = []
        final = False
        if rt.expire_at is not None and 0 < requested <= rt.expire_at:
            rt.expire_at = None
            lines, final = [self._error_line(self._too_old(rt, requested))], True
        elif not requested or send_initial:
            for key in sorted(rt.objects):
                obj = rt.objects[key]
                if (ns is None or key[0] == ns) and self._selected(obj, lsel, fsel):
                    lines.append(b'{"type":"ADDED","object":' + _dumps(rt.view(obj, version)) + b"}\n")
            lines.extend(b'{"type":"ADDED","object":' + raw.encode() + b"}\n" for raw in rt.malformed)
            if send_initial and bookmarks:
                lines.append(self._bookmark_line(rt, version, initial_end=True))
        elif requested < rt.compacted:
            lines, final = [self._error_line(self._too_old(rt, requested))], True
        elif requested > self.rv:
            st = Status(
                504,
                f"Too large resource version: {requested}, current: {self.rv}",
                "Timeout",
                details={
                    "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                    "retryAfterSeconds": 1,
                },
            )
            lines, final = [self._error_line(st)], True
        else:
            for event in rt.log:
                if event.rv > requested and (line := self._event_line(w, event)) is not None:
                    lines.append(line)
        if not final:
            rt.watchers.add(w)

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout if timeout else None
        next_bookmark = loop.time() + self.bookmark_interval
        try:
            if lines:
                await resp.write(b"".join(lines))
            while not final:
                now = loop.time()
                if deadline is not None and now >= deadline:
                    break
                if bookmarks and now >= next_bookmark and w.queue.empty():
                    await resp.write(self._bookmark_line(rt, version))
                    next_bookmark = now + self.bookmark_interval
                    continue
                transport = request.transport
                if transport is None or transport.is_closing():
                    break  # the client went away
                # Wake up at least every half second to notice a client that went away. A bookmark
                # already due waits for the queued events: it must not turn the wait into 0 s,
                # which would time out before taking them, again and again.
                waits = [t - now for t in (deadline, next_bookmark if bookmarks else None) if t is not None and t > now]
                try:
                    item, payload = await asyncio.wait_for(w.queue.get(), max(0.0, min(waits + [0.5])))
                except asyncio.TimeoutError:
                    continue
                if item == "line":
                    await resp.write(payload)
                elif item == "end":
                    break
                elif item == "drop":
                    if request.transport is not None:
                        request.transport.close()  # no terminating chunk: the client sees a broken stream
                    return resp
            if request.transport is not None and not request.transport.is_closing():
                await resp.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the client went away
        finally:
            rt.watchers.discard(w)
        return resp

    # ------------------------------------------------------------ writes (kubectl create/replace/delete)

    async def _body(self, request: web.Request) -> Any:
        text = await request.text()
        try:
            if "yaml" in (request.content_type or ""):
                return yaml.load(text, Loader=_Loader)
            return json.loads(text) if text else None
        except (ValueError, yaml.YAMLError) as exc:
            raise Status(400, f"the body of the request was in an unknown format: {exc}") from exc

    def _check_body(self, rt: ResourceType, version: str, ns: str | None, name: str | None, obj: Any) -> dict[str, Any]:
        if not isinstance(obj, dict):
            raise Status(400, "the body of the request was in an unknown format")
        obj.setdefault("apiVersion", rt.api_version(version))
        obj.setdefault("kind", rt.kind)
        if obj["kind"] != rt.kind or _split_api_version(obj["apiVersion"])[0] != rt.group:
            raise Status(
                400,
                f"the API version in the data ({obj['apiVersion']}) does not match the expected "
                f"API version ({rt.api_version(version)})",
            )
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise Status(400, "metadata must be an object")
        if rt.namespaced:
            if meta.get("namespace") and meta["namespace"] != ns:
                raise Status(
                    400, "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = ns
        if name is not None:
            if meta.get("name") and meta["name"] != name:
                raise Status(400, "the name of the object does not match the name on the URL")
            meta["name"] = name
        if not meta.get("name"):
            if meta.get("generateName"):
                meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
            else:
                raise Status(
                    422,
                    f'{rt.kind} "" is invalid: metadata.name: Required value: name or generateName is required',
                    "Invalid",
                )
        return obj

    async def _write(
        self, request: web.Request, verb: str, rt: ResourceType, version: str, ns: str | None, name: str | None
    ) -> web.Response:
        key = (ns or "", name or "")
        dry = bool(request.query.get("dryRun"))
        where = f'{rt.key} "{name}"'
        if verb == "create":
            obj = self._check_body(rt, version, ns, None, await self._body(request))
            key = (ns or "", obj["metadata"]["name"])
            if key in rt.objects:
                raise Status(
                    409,
                    f'{rt.key} "{key[1]}" already exists',
                    "AlreadyExists",
                    details={"name": key[1], "group": rt.group, "kind": rt.plural},
                )
            obj["metadata"].pop("resourceVersion", None)
            stored = obj if dry else self.add(obj)
            return self._object_response(rt.view(stored, version), 201)
        current = rt.objects.get(key)
        if verb == "deletecollection":
            lsel, fsel = self._selectors(rt, request.query)
            gone = []
            for k in sorted(rt.objects):
                if (ns is None or k[0] == ns) and self._selected(rt.objects[k], lsel, fsel):
                    obj = rt.objects[k]
                    gone.append(rt.view(obj if dry else self.delete(obj["apiVersion"], rt.kind, k[0], k[1]), version))
            return self._object_response(
                {
                    "kind": f"{rt.kind}List",
                    "apiVersion": rt.api_version(version),
                    "metadata": {"resourceVersion": str(self.rv)},
                    "items": gone,
                }
            )
        if current is None:
            raise rt.not_found(name or "")
        if verb == "delete":
            gone = current if dry else self.delete(current["apiVersion"], rt.kind, ns, name or "")
            return self._object_response(rt.view(gone, version))
        if verb == "update":
            obj = self._check_body(rt, version, ns, name, await self._body(request))
        else:  # patch
            patch = await self._body(request)
            ctype = request.content_type or ""
            if ctype == "application/json-patch+json":
                if not isinstance(patch, list):
                    raise Status(400, "json patch must be a list of operations")
                obj = _json_patch(current, patch)
            elif ctype in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
                obj = _merge_patch(current, patch)
            else:
                raise Status(
                    415,
                    "the body of the request was in an unknown format - accepted media types "
                    "include: application/json-patch+json, application/merge-patch+json",
                )
            obj = self._check_body(rt, version, ns, name, obj)
        sent_rv = obj["metadata"].get("resourceVersion")
        if sent_rv and sent_rv != current["metadata"].get("resourceVersion"):
            raise Status(
                409,
                f"Operation cannot be fulfilled on {where}: the object has been modified; please "
                f"apply your changes to the latest version and try again",
                "Conflict",
                details={"name": name, "group": rt.group, "kind": rt.plural},
            )
        stored = obj if dry else self.modify(obj)
        return self._object_response(rt.view(stored, version))

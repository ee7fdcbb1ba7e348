"""Live cluster source: for each kind, a paginated LIST, then a WATCH from the list's
resourceVersion, over aiohttp.

Credentials come from the `kubernetes` package's loaders (kubeconfig with token, client
certificate or exec plugin; in-cluster service account, whose projected token is re-read
as it rotates); the requests themselves are ours, so response bytes decode straight into
the typed records, one item at a time. After the first LIST a kind costs one long-lived
WATCH: a dropped stream resumes from the last resourceVersion seen, and only `410 Gone`
makes it LIST again. Optional APIs that are not installed (404) make their kind absent;
RBAC denials (403) are reported with the permission that is missing.
"""
from __future__ import annotations

import asyncio
import logging
import os
import random
import ssl
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import aiohttp
import msgspec

from ..errors import SourceError
from ..records import KINDS, KindInfo, decode_json
from ..store import Store, uid_of
from .base import Source
from .prometheus import PrometheusSamples

log = logging.getLogger(__name__)

PAGE_SIZE = 500
WATCH_SECONDS = (300, 600)  # server-side watch timeout, randomised like client-go
BACKOFF_INITIAL, BACKOFF_MAX, FORBIDDEN_RETRY_MAX = 0.5, 30.0, 300.0
ABSENT_RECHECK = 300.0  # an optional API may get installed later
POLL_SECONDS = 60.0  # kinds without WATCH (metrics.k8s.io) are LISTed this often


class ApiError(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}" if message else f"{status} {reason}")
        self.status, self.reason, self.message = status, reason, message


class _Status(msgspec.Struct):
    code: int = 0
    reason: str = ""
    message: str = ""


class _Meta(msgspec.Struct):
    name: str = ""
    namespace: str = ""
    uid: str = ""
    resourceVersion: str = ""
    # `continue` is a Python keyword; msgspec maps it by name.
    continue_: str = msgspec.field(default="", name="continue")


class _Named(msgspec.Struct):
    metadata: _Meta = msgspec.field(default_factory=_Meta)


class _ListPage(msgspec.Struct):
    metadata: _Meta = msgspec.field(default_factory=_Meta)
    items: list[msgspec.Raw] | None = None


class _WatchEvent(msgspec.Struct):
    type: str
    object: msgspec.Raw


def _api_error(status: int, body: bytes) -> ApiError:
    try:
        st = msgspec.json.decode(body, type=_Status)
        return ApiError(status, st.reason or aiohttp.http.RESPONSES.get(status, ("",))[0], st.message)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return ApiError(status, aiohttp.http.RESPONSES.get(status, ("",))[0], body[:200].decode(errors="replace"))


# ---------------------------------------------------------------- credentials


@dataclass
class Credentials:
    """What the `kubernetes` loaders resolved: server, TLS, and a token source."""

    host: str
    ssl: ssl.SSLContext | bool
    configuration: Any  # kubernetes.client.Configuration, whose refresh hook re-reads tokens
    description: str
    max_age: float = 10.0  # seconds a resolved token is reused before asking the loader again

    def __post_init__(self) -> None:
        self._cached: dict[str, str] | None = None
        self._cached_at = 0.0
        self._lock: asyncio.Lock | None = None

    def _token_blocking(self) -> str | None:
        cfg = self.configuration
        return cfg.get_api_key_with_prefix("BearerToken") or cfg.get_api_key_with_prefix("authorization")

    def invalidate(self) -> None:
        """After a 401: the next request asks the loader for a fresh token."""
        self._cached = None

    async def headers(self) -> dict[str, str]:
        """Authorization header. The loader's refresh hook may read a projected token
        file or run an exec plugin (a process), so it runs in a worker thread, one call
        at a time, and its answer is reused for `max_age` seconds or until a 401."""
        if self._cached is not None and time.monotonic() - self._cached_at < self.max_age:
            return self._cached
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._cached is None or time.monotonic() - self._cached_at >= self.max_age:
                token = await asyncio.to_thread(self._token_blocking)
                if token and token.lower().startswith("bearer "):
                    token = token[7:]
                self._cached = {"Authorization": f"Bearer {token}"} if token else {}
                self._cached_at = time.monotonic()
            return self._cached


def load_credentials(kubeconfig: str | None = None, context: str | None = None) -> Credentials:
    """Blocking. Kubeconfig (explicit, $KUBECONFIG, ~/.kube/config), else in-cluster.
    Raises SourceError when there are none."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    cfg = client.Configuration()
    path = kubeconfig or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    first = path.split(os.pathsep)[0]
    try:
        if kubeconfig or os.environ.get("KUBECONFIG") or os.path.exists(first):
            config.load_kube_config(config_file=path, context=context, client_configuration=cfg,
                                    persist_config=False)
            description = f"kubeconfig {path}" + (f" context {context}" if context else "")
        elif os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=cfg)
            description = "in-cluster service account"
        else:
            raise SourceError("no Kubernetes credentials found: no kubeconfig (--kubeconfig, $KUBECONFIG, "
                              "~/.kube/config) and not running in a cluster; use --demo for the embedded demo "
                              "cluster or --snapshot DIR for a saved one")
    except ConfigException as exc:
        raise SourceError(f"cannot load Kubernetes credentials from {path}: {exc}; "
                          "use --demo or --snapshot DIR to run without a cluster") from None
    except (OSError, ValueError, TypeError) as exc:  # unreadable or malformed kubeconfig
        raise SourceError(f"cannot load Kubernetes credentials from {path}: {exc}") from None
    return Credentials(cfg.host.rstrip("/"), _ssl_context(cfg), cfg, description)


def _ssl_context(cfg: Any) -> ssl.SSLContext | bool:
    if not cfg.host.startswith("https"):
        return False
    if not cfg.verify_ssl:
        return False
    ctx = ssl.create_default_context(cafile=cfg.ssl_ca_cert) if cfg.ssl_ca_cert else ssl.create_default_context()
    if cfg.cert_file:
        ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
    return ctx


# ---------------------------------------------------------------- HTTP


class ApiClient:
    """aiohttp against the API server, counting requests by verb and code."""

    def __init__(self, credentials: Credentials, request_timeout: float = 60.0) -> None:
        self.credentials = credentials
        self.requests: Counter[tuple[str, str]] = Counter()
        self._timeout = request_timeout
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> "ApiClient":
        connector = aiohttp.TCPConnector(ssl=self.credentials.ssl, limit=64)
        self._session = aiohttp.ClientSession(self.credentials.host, connector=connector,
                                              headers={"Accept": "application/json",
                                                       "User-Agent": "ov-exporter"})
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def get(self, path: str, params: dict[str, str], verb: str = "get") -> bytes:
        assert self._session is not None
        timeout = aiohttp.ClientTimeout(total=self._timeout)
        async with self._session.get(path, params=params, headers=await self.credentials.headers(),
                                     timeout=timeout) as resp:
            body = await resp.read()
            self.requests[(verb, str(resp.status))] += 1
            if resp.status == 401:
                self.credentials.invalidate()
            if resp.status != 200:
                raise _api_error(resp.status, body)
            return body

    async def watch(self, path: str, params: dict[str, str]) -> aiohttp.ClientResponse:
        """Opens a watch stream; the caller reads and closes it."""
        assert self._session is not None
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._timeout, sock_read=WATCH_SECONDS[1] + 60)
        resp = await self._session.get(path, params=params, headers=await self.credentials.headers(),
                                       timeout=timeout)
        self.requests[("watch", str(resp.status))] += 1
        if resp.status == 401:
            self.credentials.invalidate()
        if resp.status != 200:
            body = await resp.read()
            resp.release()
            raise _api_error(resp.status, body)
        return resp


# ---------------------------------------------------------------- reflector


class Gone(Exception):
    """410: the resourceVersion is too old; LIST again."""


def _path(kind: KindInfo, version: str) -> str:
    return f"/api/{version}/{kind.plural}" if not kind.group else f"/apis/{kind.group}/{version}/{kind.plural}"


class Reflector:
    """Keeps one kind in the store current: LIST, then WATCH; 410 -> LIST again."""

    def __init__(self, kind: KindInfo, version: str, client: ApiClient, store: Store) -> None:
        self.kind, self.version, self.client, self.store = kind, version, client, store
        self.path = _path(kind, version)
        self.status = store.kinds[kind.key]
        self.poll_seconds = POLL_SECONDS

    def _where(self, meta: _Meta) -> str:
        return f"{self.kind.kind} {meta.namespace + '/' if meta.namespace else ''}{meta.name or '?'}"

    def _decode(self, raw: bytes) -> Any | None:
        try:
            record = decode_json(self.kind.record, raw)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            try:
                meta = msgspec.json.decode(raw, type=_Named).metadata
            except (msgspec.ValidationError, msgspec.DecodeError):
                meta = _Meta()
            where = self._where(meta)
            self.store.problem(where, str(exc))
            log.warning("skipped %s: %s", where, exc)
            return None
        self.store.clear_problem(self._where(_Meta(record.metadata.name, record.metadata.namespace)))
        return record

    async def list(self) -> str:
        """Paginated LIST; swaps the kind's objects in the store; returns the list's resourceVersion."""
        records, cont, rv = [], "", ""
        while True:
            params = {"limit": str(PAGE_SIZE)}
            if self.kind.label_selector:
                params["labelSelector"] = self.kind.label_selector
            if cont:
                params["continue"] = cont
            try:
                body = await self.client.get(self.path, params, verb="list")
            except ApiError as exc:
                if exc.status == 410 and cont:  # the continue token expired mid-list: start over
                    records, cont = [], ""
                    continue
                raise
            page = msgspec.json.decode(body, type=_ListPage)
            for raw in page.items or ():
                record = self._decode(bytes(raw))
                if record is not None:
                    records.append(record)
            rv, cont = page.metadata.resourceVersion, page.metadata.continue_
            if not cont:
                break
        self.store.replace(self.kind, records)
        self.status.synced, self.status.absent, self.status.forbidden = True, "", ""
        if not self.kind.watchable:
            self.store.clear_problem(f"{self.kind.kind} list")
        self.status.last_event = time.time()
        return rv

    async def watch(self, rv: str) -> str:
        """One WATCH stream from rv; returns the last resourceVersion seen when it ends."""
        params = {"watch": "true", "resourceVersion": rv, "allowWatchBookmarks": "true",
                  "timeoutSeconds": str(random.randint(*WATCH_SECONDS))}
        if self.kind.label_selector:
            params["labelSelector"] = self.kind.label_selector
        resp = await self.client.watch(self.path, params)
        buffer = bytearray()
        try:
            async for chunk in resp.content.iter_any():
                buffer += chunk
                while (end := buffer.find(b"\n")) >= 0:
                    line = bytes(buffer[:end])
                    del buffer[: end + 1]
                    if line.strip():
                        rv = self._event(line, rv)
        finally:
            resp.release()
        return rv

    def _event(self, line: bytes, rv: str) -> str:
        try:
            event = msgspec.json.decode(line, type=_WatchEvent)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            self.store.problem(f"{self.kind.kind} watch", f"undecodable watch event: {exc}")
            return rv
        raw = bytes(event.object)
        if event.type == "ERROR":
            status = msgspec.json.decode(raw, type=_Status)
            if status.code == 410:
                raise Gone(status.message)
            raise ApiError(status.code, status.reason, status.message)
        meta = msgspec.json.decode(raw, type=_Named).metadata
        self.status.last_event = time.time()
        if event.type == "BOOKMARK":
            return meta.resourceVersion or rv
        if event.type == "DELETED":
            self.store.remove(self.kind, meta.uid or f"{self.kind.key}/{meta.namespace}/{meta.name}")
            self.store.clear_problem(self._where(meta))
        elif event.type in ("ADDED", "MODIFIED"):
            record = self._decode(raw)
            if record is not None:
                self.store.apply(self.kind, event.type, record)
            else:  # a broken new version must not leave the old one behind
                self.store.remove(self.kind, meta.uid or f"{self.kind.key}/{meta.namespace}/{meta.name}")
        return meta.resourceVersion or rv

    async def run(self) -> None:
        """Forever: LIST, WATCH, resume; backoff with jitter on errors."""
        rv: str | None = None
        failures = 0
        while True:
            try:
                if rv is None:
                    if self.status.synced:
                        self.status.relists += 1
                    rv = await self.list()
                    failures = 0
                if not self.kind.watchable:  # no WATCH on this API (metrics.k8s.io): poll with LIST
                    await asyncio.sleep(self.poll_seconds)
                    rv = None
                    continue
                rv = await self.watch(rv)
                self.status.watch_restarts += 1  # the server ended the stream (timeout): resume
                failures = 0
            except asyncio.CancelledError:
                raise
            except Gone:
                log.info("%s: resourceVersion expired (410), listing again", self.kind.key)
                rv = None
            except ApiError as exc:
                failures += 1
                if exc.status == 404:
                    self._set_absent(f"{self.kind.key} {self.version} is not served by the API server (404)")
                    rv = None
                    await asyncio.sleep(ABSENT_RECHECK * random.uniform(0.8, 1.2))
                    continue
                if exc.status == 403:
                    self._set_forbidden(exc.message or f"forbidden: cannot list/watch {self.kind.key}")
                    rv = None
                    await asyncio.sleep(_backoff(failures, FORBIDDEN_RETRY_MAX))
                    continue
                if exc.status == 410:
                    rv = None
                    continue
                log.warning("%s: %s; retrying", self.kind.key, exc)
                self._poll_failed(exc)
                await asyncio.sleep(_backoff(failures))
            except (aiohttp.ClientError, asyncio.TimeoutError, msgspec.DecodeError, msgspec.ValidationError) as exc:
                failures += 1
                if rv is not None:
                    self.status.watch_restarts += 1
                log.info("%s: %s: %s; retrying", self.kind.key, type(exc).__name__, exc)
                self._poll_failed(exc)
                await asyncio.sleep(_backoff(failures))

    def _poll_failed(self, exc: Exception) -> None:
        """An aggregated API without WATCH (metrics-server) can be down for long: report it
        and count the kind as synced (empty), so that the first evaluation does not wait."""
        if self.kind.watchable:
            return
        self.store.problem(f"{self.kind.kind} list", f"{self.path}: {type(exc).__name__}: {exc}")
        if not self.status.synced:
            self.status.synced = True

    def _set_absent(self, reason: str) -> None:
        if not self.status.absent:
            log.info("%s", reason)
        self.store.replace(self.kind, [])
        self.status.absent, self.status.forbidden = reason, ""

    def _set_forbidden(self, message: str) -> None:
        if self.status.forbidden != message:
            log.error("permission missing: %s", message)
        self.status.forbidden = message


def _backoff(failures: int, cap: float = BACKOFF_MAX) -> float:
    """Exponential backoff with full jitter."""
    return random.uniform(0, min(cap, BACKOFF_INITIAL * 2 ** min(failures, 16)))


# ---------------------------------------------------------------- discovery and the source


class _Group(msgspec.Struct):
    name: str
    versions: list[dict] = []
    preferredVersion: dict | None = None


class _GroupList(msgspec.Struct):
    groups: list[_Group] = []


async def discover(client: ApiClient) -> dict[str, str]:
    """kind key -> version to use, or "" when the API group is not installed."""
    try:
        groups = msgspec.json.decode(await client.get("/apis", {}, verb="discovery"), type=_GroupList).groups
    except (ApiError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        log.warning("API discovery failed (%s); assuming preferred versions", exc)
        return {k.key: k.versions[0] for k in KINDS}
    served = {g.name: [v.get("version", "") for v in g.versions] for g in groups}
    result: dict[str, str] = {}
    for kind in KINDS:
        if not kind.group:
            result[kind.key] = kind.versions[0]
        elif kind.group in served:
            result[kind.key] = next((v for v in kind.versions if v in served[kind.group]), served[kind.group][0])
        else:
            result[kind.key] = ""
    return result


class LiveSource(Source):
    name = "live"

    def __init__(self, kubeconfig: str | None = None, context: str | None = None,
                 credentials: Credentials | None = None, metrics: "PrometheusSamples | None" = None) -> None:
        self.kubeconfig, self.context = kubeconfig, context
        self.credentials = credentials
        self.metrics = metrics
        self.client: ApiClient | None = None

    def describe(self) -> str:
        return f"live cluster ({self.credentials.description})" if self.credentials else "live cluster"

    def requests(self) -> dict[tuple[str, str], int]:
        return dict(self.client.requests) if self.client is not None else {}

    async def run(self, store: Store) -> None:
        store.clock, store.clock_origin = time.time, "wall clock"  # checks judging time windows see it
        if self.credentials is None:
            self.credentials = await asyncio.to_thread(load_credentials, self.kubeconfig, self.context)
        async with ApiClient(self.credentials) as client:
            self.client = client
            versions = await discover(client)
            tasks = []
            for kind in KINDS:
                if not versions[kind.key]:
                    store.kinds[kind.key].absent = f"API group {kind.group} is not installed"
                    continue
                tasks.append(asyncio.create_task(Reflector(kind, versions[kind.key], client, store).run(),
                                                 name=f"reflect {kind.key}"))
            if self.metrics is not None:
                tasks.append(asyncio.create_task(self.metrics.run(store), name="prometheus"))
            tasks.append(asyncio.create_task(self._announce_sync(store), name="sync"))
            try:
                await asyncio.gather(*tasks)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _announce_sync(self, store: Store) -> None:
        """Synced once every kind is listed (or known absent or forbidden) and the metric
        source answered once: the first evaluation then sees a whole cluster."""
        while not all(s.synced or s.absent or s.forbidden for s in store.kinds.values()):
            await asyncio.sleep(0.05)
        if self.metrics is not None:
            await self.metrics.first_attempt.wait()
        store.mark_synced()

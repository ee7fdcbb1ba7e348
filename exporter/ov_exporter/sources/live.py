"""Live cluster source: for each kind, a paginated LIST, then a WATCH from the list's
resourceVersion, over aiohttp.

Credentials come from the `kubernetes` package's loaders (see credentials.py); the
requests themselves are ours, so response bytes decode straight into the typed records,
one item at a time. After the first LIST a kind costs one long-lived WATCH: a dropped
stream resumes from the last resourceVersion seen, and only `410 Gone` makes it LIST
again. Optional APIs that are not installed (404) make their kind absent; RBAC denials
(403) and rejected credentials (401) are reported per kind.

Nothing stops the source: every reflector and the source itself restart after any
error with client-go's backoff (doubling from BACKOFF_INITIAL up to BACKOFF_MAX, plus
up to 100 % jitter; back to the start after a healthy watch), and each kind records
its errors and its last successful contact, which make its state (store.KindStatus).
"""
from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from typing import Any

import aiohttp
import msgspec

from ..errors import SourceError
from ..records import KINDS, KindInfo, decode_json
from ..store import Store
from . import jsonsplit
from .base import Source
from .credentials import Credentials, load_credentials
from .prometheus import PrometheusSamples

__all__ = ["ApiClient", "ApiError", "Credentials", "LiveSource", "Reflector", "discover", "load_credentials"]

log = logging.getLogger(__name__)

PAGE_SIZE = 500
WATCH_SECONDS = (300, 600)  # server-side watch timeout, randomised like client-go
# client-go's reflector backoff: 800 ms doubling to 30 s, jitter 1.0 (so at most 60 s,
# which bounds recovery after a permission is granted or a token fixed).
BACKOFF_INITIAL, BACKOFF_MAX = 0.8, 30.0
HEALTHY_WATCH = 5.0  # a watch open this long was healthy: the backoff starts over
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


_DECODE_ERRORS = (msgspec.ValidationError, msgspec.DecodeError, RecursionError, ValueError)


def _meta_of(raw: bytes) -> _Meta | None:
    """An object's metadata, however deep the rest of it is; None when it does not decode."""
    try:
        return msgspec.json.decode(raw, type=_Named).metadata
    except RecursionError:
        try:
            return msgspec.json.decode(jsonsplit.members(raw).get(b"metadata", b"{}"), type=_Meta)
        except _DECODE_ERRORS:
            return None
    except _DECODE_ERRORS:
        return None


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply to decode"
    return str(exc) or type(exc).__name__


def _api_error(status: int, body: bytes) -> ApiError:
    try:
        st = msgspec.json.decode(body, type=_Status)
        return ApiError(status, st.reason or aiohttp.http.RESPONSES.get(status, ("",))[0], st.message)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return ApiError(status, aiohttp.http.RESPONSES.get(status, ("",))[0], body[:200].decode(errors="replace"))


# ---------------------------------------------------------------- HTTP


class ApiClient:
    """aiohttp against the API server, counting requests by verb and code. A 401 makes
    the credentials read their token again; when that gives a new token, the request is
    sent once more before the 401 is reported."""

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

    async def _open(self, path: str, params: dict[str, str], verb: str,
                    timeout: aiohttp.ClientTimeout) -> aiohttp.ClientResponse:
        """A response with status 200; raises ApiError for any other."""
        assert self._session is not None
        for attempt in (1, 2):
            headers = await self.credentials.headers()
            resp = await self._session.get(path, params=params, headers=headers, timeout=timeout)
            self.requests[(verb, str(resp.status))] += 1
            if resp.status == 200:
                return resp
            body = await resp.read()
            resp.release()
            if resp.status == 401 and attempt == 1:
                self.credentials.invalidate()
                if await self.credentials.headers() != headers:
                    continue  # the token rotated: try the new one
            raise _api_error(resp.status, body)
        raise AssertionError("unreachable")

    async def get(self, path: str, params: dict[str, str], verb: str = "get") -> bytes:
        resp = await self._open(path, params, verb, aiohttp.ClientTimeout(total=self._timeout))
        try:
            return await resp.read()
        finally:
            resp.release()

    async def watch(self, path: str, params: dict[str, str]) -> aiohttp.ClientResponse:
        """Opens a watch stream; the caller reads and closes it."""
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._timeout, sock_read=WATCH_SECONDS[1] + 60)
        return await self._open(path, params, "watch", timeout)


class Backoff:
    """client-go's reflector backoff: BACKOFF_INITIAL doubling up to BACKOFF_MAX, plus
    up to 100 % jitter; `reset()` after a healthy period starts it over."""

    def __init__(self) -> None:
        self.failures = 0

    def next(self) -> float:
        delay = min(BACKOFF_MAX, BACKOFF_INITIAL * 2 ** min(self.failures, 32))
        self.failures += 1
        return delay * (1 + random.random())

    def reset(self) -> None:
        self.failures = 0


# ---------------------------------------------------------------- reflector


class Gone(Exception):
    """410: the resourceVersion is too old; LIST again."""


class Relist(Exception):
    """A watch event that cannot be followed (its metadata does not decode): LIST again."""


def _path(kind: KindInfo, version: str) -> str:
    return f"/api/{version}/{kind.plural}" if not kind.group else f"/apis/{kind.group}/{version}/{kind.plural}"


def describe_error(exc: BaseException) -> str:
    """One line for the log, /readyz and the CLI."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return f"TLS verification of {exc.host}:{exc.port} failed: {exc.certificate_error}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect to the API server {exc.host}:{exc.port}: {exc.os_error.strerror or exc.os_error}"
    if isinstance(exc, ApiError) and exc.status == 401:
        return f"the API server rejected the credentials (401 {exc.reason})"
    if isinstance(exc, asyncio.TimeoutError):
        return "the API server did not answer in time"
    if isinstance(exc, (ApiError, SourceError)):
        return str(exc)
    return f"{type(exc).__name__}: {_error_text(exc)}"


class Reflector:
    """Keeps one kind in the store current: LIST, then WATCH; 410 -> LIST again."""

    def __init__(self, kind: KindInfo, version: str, client: ApiClient, store: Store) -> None:
        self.kind, self.version, self.client, self.store = kind, version, client, store
        self.path = _path(kind, version)
        self.status = store.kinds[kind.key]
        self.poll_seconds = POLL_SECONDS
        self._watch_opened: float | None = None

    def _where(self, meta: _Meta) -> str:
        return f"{self.kind.kind} {meta.namespace + '/' if meta.namespace else ''}{meta.name or '?'}"

    def _decode(self, raw: bytes, problems: dict[str, str]) -> Any | None:
        """The object's record, or None with a problem naming it: one object never
        stops the source, whatever is wrong with it."""
        dropped: list[str] = []
        try:
            record = decode_json(self.kind.record, raw, dropped)
        except Exception as exc:  # noqa: BLE001
            where = self._where(_meta_of(raw) or _Meta())
            problems[where] = _error_text(exc)
            log.warning("skipped %s: %s", where, problems[where])
            return None
        if dropped:  # a bad field is dropped and named; the object is still judged
            where = self._where(_meta_of(raw) or _Meta())
            problems[where] = f"kept without {len(dropped)} field(s) that do not decode: " + "; ".join(dropped)
            log.warning("%s %s", where, problems[where])
        return record

    def _contact(self) -> None:
        """A successful answer from the API server for this kind."""
        self.store.contact(self.kind.key)

    async def list(self) -> str:
        """Paginated LIST; swaps the kind's objects (and problems) in the store; returns
        the list's resourceVersion."""
        records, problems, cont, rv = [], {}, "", ""
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
                    records, problems, cont = [], {}, ""
                    continue
                raise
            self._contact()
            meta, items = self._page(body)
            for raw in items:
                record = self._decode(raw, problems)
                if record is not None:
                    records.append(record)
            rv, cont = meta.resourceVersion, meta.continue_
            if not cont:
                break
        self.store.replace(self.kind, records)
        self.store.replace_problems(f"{self.kind.kind} ", problems)
        self.status.synced, self.status.absent, self.status.forbidden = True, "", ""
        self.status.last_event = time.time()
        return rv

    @staticmethod
    def _page(body: bytes) -> tuple[_Meta, list[bytes]]:
        try:
            page = msgspec.json.decode(body, type=_ListPage)
            return page.metadata, [bytes(raw) for raw in page.items or ()]
        except RecursionError:  # one item nested too deeply: split the page without recursion
            parts = jsonsplit.members(body)
            meta = msgspec.json.decode(parts.get(b"metadata", b"{}"), type=_Meta)
            items = parts.get(b"items", b"null")
            return meta, [] if items == b"null" else [raw for _, raw in jsonsplit.split(items)]

    async def watch(self, rv: str) -> str:
        """One WATCH stream from rv; returns the last resourceVersion seen when it ends."""
        params = {"watch": "true", "resourceVersion": rv, "allowWatchBookmarks": "true",
                  "timeoutSeconds": str(random.randint(*WATCH_SECONDS))}
        if self.kind.label_selector:
            params["labelSelector"] = self.kind.label_selector
        resp = await self.client.watch(self.path, params)
        self._watch_opened = time.monotonic()
        self._contact()
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
            try:
                event = msgspec.json.decode(line, type=_WatchEvent)
                etype, raw = event.type, bytes(event.object)
            except RecursionError:
                parts = jsonsplit.members(line)
                etype, raw = msgspec.json.decode(parts.get(b"type", b'""'), type=str), parts[b"object"]
        except (*_DECODE_ERRORS, KeyError) as exc:
            self.store.problem(f"{self.kind.kind} watch", f"undecodable watch event: {_error_text(exc)}")
            raise Relist() from None
        if etype == "ERROR":
            status = msgspec.json.decode(raw, type=_Status)
            if status.code == 410:
                raise Gone(status.message)
            raise ApiError(status.code, status.reason, status.message)
        meta = _meta_of(raw)
        if meta is None:  # no name, no resourceVersion: this event cannot be followed
            self.store.problem(f"{self.kind.kind} watch", "watch event whose metadata does not decode")
            raise Relist()
        self._contact()
        self.status.last_event = time.time()
        if etype == "BOOKMARK":
            return meta.resourceVersion or rv
        uid = meta.uid or f"{self.kind.key}/{meta.namespace}/{meta.name}"
        if etype == "DELETED":
            self.store.remove(self.kind, uid)
            self.store.clear_problem(self._where(meta))
        elif etype in ("ADDED", "MODIFIED"):
            problems: dict[str, str] = {}
            record = self._decode(raw, problems)
            if record is not None:
                self.store.apply(self.kind, etype, record)
                self.store.clear_problem(self._where(meta))
                for where, message in problems.items():  # fields it was kept without
                    self.store.problem(where, message)
            else:  # a broken new version must not leave the old one behind
                self.store.remove(self.kind, uid)
                for where, message in problems.items():
                    self.store.problem(where, message)
        return meta.resourceVersion or rv

    async def run(self) -> None:
        """Forever: LIST, WATCH, resume; backoff on every error, never an end."""
        rv: str | None = None
        backoff = Backoff()
        while True:
            self._watch_opened = None
            try:
                if rv is None:
                    if self.status.synced:
                        self.status.relists += 1
                    rv = await self.list()
                if not self.kind.watchable:  # no WATCH on this API (metrics.k8s.io): poll with LIST
                    backoff.reset()
                    await asyncio.sleep(self.poll_seconds)
                    rv = None
                    continue
                rv = await self.watch(rv)
                self.status.watch_restarts += 1  # the server ended the stream (timeout): resume
                if not self._healthy(backoff):  # a very short watch, as client-go calls it
                    await asyncio.sleep(backoff.next())
                continue
            except asyncio.CancelledError:
                raise
            except Gone:
                log.info("%s: resourceVersion expired (410), listing again", self.kind.key)
                rv = None
            except Relist:
                log.warning("%s: undecodable watch event, listing again", self.kind.key)
                rv = None
            except ApiError as exc:
                if exc.status == 404:
                    self._set_absent(f"{self.kind.key} {self.version} is not served by the API server (404)")
                    rv = None
                    await asyncio.sleep(ABSENT_RECHECK * random.uniform(0.8, 1.2))
                    continue
                if exc.status == 410:
                    rv = None
                elif exc.status == 403:
                    self._set_forbidden(exc.message or f"forbidden: cannot list/watch {self.kind.key}")
                    rv = None
                elif exc.status == 401:
                    self._set_unauthorized(describe_error(exc))
                else:
                    self._failed(exc)
            except SourceError as exc:  # the token file cannot be read
                self._set_unauthorized(str(exc))
            except (aiohttp.ClientError, asyncio.TimeoutError, *_DECODE_ERRORS) as exc:
                if rv is not None:
                    self.status.watch_restarts += 1
                self._failed(exc)
            except Exception as exc:  # noqa: BLE001 - a bug or a surprise: report, back off, go on
                log.exception("%s: unexpected error; listing again", self.kind.key)
                self._failed(exc)
                rv = None
            self._healthy(backoff)
            await asyncio.sleep(backoff.next())

    def _healthy(self, backoff: Backoff) -> bool:
        """True (and the backoff starts over) when the last watch stayed open long enough."""
        if self._watch_opened is not None and time.monotonic() - self._watch_opened >= HEALTHY_WATCH:
            backoff.reset()
            return True
        return False

    def _failed(self, exc: BaseException) -> None:
        message = describe_error(exc)
        log.info("%s: %s; retrying", self.kind.key, message)
        self.store.kind_error(self.kind.key, message)
        if not self.kind.watchable:
            # An aggregated API without WATCH (metrics-server) can be down for long: report it,
            # and count the kind as listed (empty) so that the first evaluation does not wait.
            self.store.problem(f"{self.kind.kind} list", f"{self.path}: {message}")
            self.status.synced = True

    def _set_absent(self, reason: str) -> None:
        if not self.status.absent:
            log.info("%s", reason)
        self.store.replace(self.kind, [])
        self.status.absent, self.status.forbidden, self.status.unauthorized = reason, "", ""
        self.status.error = ""

    def _set_forbidden(self, message: str) -> None:
        if self.status.forbidden != message:
            log.error("permission missing: %s", message)
        self.status.forbidden, self.status.unauthorized, self.status.error = message, "", ""

    def _set_unauthorized(self, message: str) -> None:
        if self.status.unauthorized != message:
            log.error("%s: %s", self.kind.key, message)
        self.status.unauthorized = message


# ---------------------------------------------------------------- discovery and the source


class _Group(msgspec.Struct):
    name: str
    versions: list[dict] = []
    preferredVersion: dict | None = None


class _GroupList(msgspec.Struct):
    groups: list[_Group] = []


async def discover(client: ApiClient) -> dict[str, str]:
    """kind key -> version to use, or "" when the API group is not installed. A 401 or
    a connection error is raised; other failures assume the preferred versions."""
    try:
        groups = msgspec.json.decode(await client.get("/apis", {}, verb="discovery"), type=_GroupList).groups
    except ApiError as exc:
        if exc.status == 401:
            raise
        log.warning("API discovery failed (%s); assuming preferred versions", exc)
        return {k.key: k.versions[0] for k in KINDS}
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
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
    """Supervises itself: an error outside the reflectors (discovery, a bug) restarts the
    whole source with backoff. `fail_fast` (the CLI's one-shot commands) raises a
    SourceError instead, with one line naming the cause."""

    name = "live"

    def __init__(self, kubeconfig: str | None = None, context: str | None = None,
                 credentials: Credentials | None = None, metrics: "PrometheusSamples | None" = None,
                 fail_fast: bool = False) -> None:
        self.kubeconfig, self.context = kubeconfig, context
        self.credentials = credentials
        self.metrics = metrics
        self.fail_fast = fail_fast
        self.client: ApiClient | None = None

    def describe(self) -> str:
        return f"live cluster ({self.credentials.description})" if self.credentials else "live cluster"

    def requests(self) -> dict[tuple[str, str], int]:
        return dict(self.client.requests) if self.client is not None else {}

    async def run(self, store: Store) -> None:
        store.clock, store.clock_origin = time.time, "wall clock"  # checks judging time windows see it
        backoff = Backoff()
        while True:
            try:
                await self._run_once(store, backoff)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - never ends: report and start again
                message = describe_error(exc)
                unauthorized = isinstance(exc, SourceError) or (isinstance(exc, ApiError) and exc.status == 401)
                store.source_failed(message, unauthorized=unauthorized)
                if self.fail_fast:
                    raise SourceError(f"{self.describe()}: {message}") from None
                log.error("%s: %s; starting again", self.describe(), message)
                await asyncio.sleep(backoff.next())

    async def _run_once(self, store: Store, backoff: Backoff) -> None:
        if self.credentials is None:
            self.credentials = await asyncio.to_thread(load_credentials, self.kubeconfig, self.context)
        async with ApiClient(self.credentials) as client:
            self.client = client
            versions = await discover(client)
            backoff.reset()
            tasks = []
            for kind in KINDS:
                if not versions[kind.key]:
                    store.kinds[kind.key].absent = f"API group {kind.group} is not installed"
                    store.kinds[kind.key].error = ""
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

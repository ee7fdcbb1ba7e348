"""One kind kept current: a paginated LIST, then a WATCH from the list's resourceVersion;
a dropped stream resumes from the last resourceVersion seen, and only `410 Gone` (or an
event that cannot be followed) makes it LIST again. Everything it learns it emits as
events (events.py); one object that does not decode is a problem, never a stop."""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from typing import Any

import aiohttp
import msgspec

from ..errors import SourceError
from ..events import (
    Contacted,
    Deleted,
    Emit,
    KindAbsent,
    KindFailed,
    KindForbidden,
    KindSynced,
    KindUnauthorized,
    Listed,
    ProblemCleared,
    ProblemFound,
    Relisting,
    Upserted,
    WatchRestarted,
)
from ..records import KindInfo, decode_json
from ..records.decode import MAX_OBJECT_BYTES, json_decoder
from . import jsonsplit
from .apiclient import WATCH_SECONDS, ApiClient, ApiError, Backoff, _error_text, _Status, describe_error

log = logging.getLogger(__name__)

PAGE_SIZE = 500
# Objects decoded between two hand-backs to the event loop in a LIST after the first (a
# relist, a PodMetrics poll): a page of 500 decoded at once was the longest event-loop
# stall under churn at XL (84 ms, at a PodMetrics poll). The first sync decodes at full speed.
DECODE_CHUNK = 50
HEALTHY_WATCH = 5.0  # a watch open this long was healthy: the backoff starts over
ABSENT_RECHECK = 300.0  # an optional API may get installed later
POLL_SECONDS = 60.0  # kinds without WATCH (metrics.k8s.io) are LISTed this often


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


@functools.cache
def _typed_page(record: type) -> type:
    """A LIST page whose items are decoded as `record`."""
    return msgspec.defstruct(
        f"{record.__name__}Page",
        [("metadata", _Meta, msgspec.field(default_factory=_Meta)), ("items", list[record] | None, None)],
    )


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


class Gone(Exception):
    """410: the resourceVersion is too old; LIST again."""


class Relist(Exception):
    """A watch event that cannot be followed (its metadata does not decode): LIST again."""


def _path(kind: KindInfo, version: str) -> str:
    return f"/api/{version}/{kind.plural}" if not kind.group else f"/apis/{kind.group}/{version}/{kind.plural}"


class Reflector:
    """Keeps one kind current: LIST, then WATCH; 410 -> LIST again. `answered` is set
    once the kind is listed, known absent or denied: the source is synced when every
    reflector has answered."""

    def __init__(self, kind: KindInfo, version: str, client: ApiClient, emit: Emit) -> None:
        self.kind, self.version, self.client, self.emit = kind, version, client, emit
        self.path = _path(kind, version)
        self.poll_seconds = POLL_SECONDS
        self.answered = asyncio.Event()
        self._listed = False  # listed once (or counted as listed): a LIST now is a relist
        self._absent = self._forbidden = self._unauthorized = ""  # last reported, to log changes once
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
        self.emit(Contacted(self.kind.key))

    async def list(self) -> str:
        """Paginated LIST; emits the kind's objects (and problems) as one Listed event; returns
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
            whole = None if self._listed else self._whole_page(body)
            if whole is not None:  # the first sync: every object decoded in one call
                meta, decoded = whole
                records += decoded
            else:
                meta, items = self._page(body)
                for i, raw in enumerate(items, 1):
                    record = self._decode(raw, problems)
                    if record is not None:
                        records.append(record)
                    if self._listed and i % DECODE_CHUNK == 0:  # a relist or poll after the first sync
                        await asyncio.sleep(0)  # let scrapes and watches in between
            rv, cont = meta.resourceVersion, meta.continue_
            if not cont:
                break
        listed = Listed(self.kind, records, problems, problem_prefix=f"{self.kind.kind} ")
        if self._listed:
            # A relist or a poll (PodMetrics every minute): indexing 10^4 objects and letting go
            # of the ones they replace took 14-23 ms at XL, a stall if it ran on the event loop.
            await asyncio.to_thread(self.emit, listed)
        else:
            self.emit(listed)  # the first sync: nothing is served yet
        self._listed, self._absent, self._forbidden = True, "", ""
        self.answered.set()
        return rv

    def _whole_page(self, body: bytes) -> tuple[_Meta, list[Any]] | None:
        """The page's objects decoded in one call (a sixth less time than one call each at
        XL); None when one of them needs the per-object path, which names it: a field that
        does not decode, nesting too deep, or a page larger than one object may be."""
        if len(body) > MAX_OBJECT_BYTES:
            return None
        try:
            page = json_decoder(_typed_page(self.kind.record)).decode(body)
        except (msgspec.ValidationError, RecursionError):
            return None
        return page.metadata, page.items or []

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
        params = {
            "watch": "true",
            "resourceVersion": rv,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(random.randint(*WATCH_SECONDS)),
        }
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
            self.emit(ProblemFound(f"{self.kind.kind} watch", f"undecodable watch event: {_error_text(exc)}"))
            raise Relist() from exc
        if etype == "ERROR":
            status = msgspec.json.decode(raw, type=_Status)
            if status.code == 410:
                raise Gone(status.message)
            raise ApiError(status.code, status.reason, status.message)
        meta = _meta_of(raw)
        if meta is None:  # no name, no resourceVersion: this event cannot be followed
            self.emit(ProblemFound(f"{self.kind.kind} watch", "watch event whose metadata does not decode"))
            raise Relist()
        self.emit(Contacted(self.kind.key, event=True))
        if etype == "BOOKMARK":
            return meta.resourceVersion or rv
        uid = meta.uid or f"{self.kind.key}/{meta.namespace}/{meta.name}"
        if etype == "DELETED":
            self.emit(Deleted(self.kind, uid))
            self.emit(ProblemCleared(self._where(meta)))
        elif etype in ("ADDED", "MODIFIED"):
            problems: dict[str, str] = {}
            record = self._decode(raw, problems)
            if record is not None:
                self.emit(Upserted(self.kind, record))
                self.emit(ProblemCleared(self._where(meta)))
                for where, message in problems.items():  # fields it was kept without
                    self.emit(ProblemFound(where, message))
            else:  # a broken new version must not leave the old one behind
                self.emit(Deleted(self.kind, uid))
                for where, message in problems.items():
                    self.emit(ProblemFound(where, message))
        return meta.resourceVersion or rv

    async def run(self) -> None:
        """Forever: LIST, WATCH, resume; backoff on every error, never an end."""
        rv: str | None = None
        backoff = Backoff()
        while True:
            self._watch_opened = None
            try:
                if rv is None:
                    if self._listed:
                        self.emit(Relisting(self.kind.key))
                    rv = await self.list()
                if not self.kind.watchable:  # no WATCH on this API (metrics.k8s.io): poll with LIST
                    backoff.reset()
                    await asyncio.sleep(self.poll_seconds)
                    rv = None
                    continue
                rv = await self.watch(rv)
                self.emit(WatchRestarted(self.kind.key))  # the server ended the stream (timeout): resume
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
                    self.emit(WatchRestarted(self.kind.key))
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
        self.emit(KindFailed(self.kind.key, message))
        if not self.kind.watchable:
            # An aggregated API without WATCH (metrics-server) can be down for long: report it,
            # and count the kind as listed (empty) so that the first evaluation does not wait.
            self.emit(ProblemFound(f"{self.kind.kind} list", f"{self.path}: {message}"))
            self.emit(KindSynced(self.kind.key))
            self._listed = True
            self.answered.set()

    def _set_absent(self, reason: str) -> None:
        if not self._absent:
            log.info("%s", reason)
        self.emit(KindAbsent(self.kind, reason))
        self._absent, self._forbidden, self._unauthorized = reason, "", ""
        self.answered.set()

    def _set_forbidden(self, message: str) -> None:
        if self._forbidden != message:
            log.error("permission missing: %s", message)
        self.emit(KindForbidden(self.kind.key, message))
        self._forbidden, self._unauthorized = message, ""
        self.answered.set()

    def _set_unauthorized(self, message: str) -> None:
        if self._unauthorized != message:
            log.error("%s: %s", self.kind.key, message)
        self.emit(KindUnauthorized(self.kind.key, message))
        self._unauthorized = message

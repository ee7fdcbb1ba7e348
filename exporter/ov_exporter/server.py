"""The HTTP side: aiohttp app serving prepared payloads, and the evaluation loop.

The event loop never blocks: loading, evaluating and rendering run in worker threads
(`asyncio.to_thread`). /metrics is rendered once per evaluation; the HTML page and
/findings.json, rarely asked for and large (megabytes at 10,000 VMs), are built in a
worker thread on the first request after an evaluation and cached until the next one.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import json
import logging
import sys
import time
from importlib import resources
from typing import Callable

from aiohttp import web

from . import heap
from .auth import KubernetesAuth
from .checks import CHECKS, RUNBOOK_FILE
from .config import Config
from .events import SourceFailed
from .records import KIND_BY_KEY
from .render import History, Payload, Renderer, SourceStats
from .report import to_html, to_json
from .runner import Evaluation, Reuse, evaluate
from .sources.base import Source
from .store import BLIND_STATES, KindStatus, Store, gc_after_sync, gc_before_sync

log = logging.getLogger(__name__)

# HTTP limits: a connection idle this long (including one that has not sent a whole
# request header yet) is closed, and beyond MAX_CONNECTIONS open connections new ones
# get a 503 and are closed, so idle or slow clients cannot exhaust file descriptors.
IDLE_TIMEOUT = 30.0
MAX_CONNECTIONS = 100
# The GIL hand-over interval (CPython's default is 5 ms). The evaluation thread holds
# the GIL for seconds at 10,000 VMs; each time the event loop wakes (a scrape, a watch
# event) it waits up to this long for it, several times per request. Measured at XL
# (make bench): 1 ms took /metrics p50 from 5.7 to 2.2 ms under 10 scrapers; evaluating
# in a forked child instead gave p50 1.0 ms but p99 69 ms (the parent unpickles 17,000
# findings) and loses judgements remembered across evaluations.
SWITCH_INTERVAL = 0.001
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 21\r\n"
    b"Connection: close\r\n\r\ntoo many connections\n"
)


class _Refused(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(_BUSY)
        transport.close()


class _ConnectionCap:
    """aiohttp's protocol factory behind a cap on open connections."""

    def __init__(self, server: web.Server, limit: int) -> None:
        self._server, self.limit = server, limit

    def __call__(self) -> asyncio.Protocol:
        if len(self._server.connections) >= self.limit:
            log.warning("refused a connection: %d connections are open (the limit)", self.limit)
            return _Refused()
        return self._server()

    def __getattr__(self, name: str):
        return getattr(self._server, name)


class LimitedRunner(web.AppRunner):
    """AppRunner with the idle/header timeout and the connection cap."""

    def __init__(
        self, app: web.Application, max_connections: int = MAX_CONNECTIONS, idle_timeout: float = IDLE_TIMEOUT
    ) -> None:
        super().__init__(app, access_log=None, keepalive_timeout=idle_timeout)
        self.max_connections = max_connections

    async def _make_server(self) -> web.Server:
        return _ConnectionCap(await super()._make_server(), self.max_connections)  # type: ignore[return-value]


class Prepared:
    """What one evaluation serves: /metrics rendered up front; the findings JSON and the
    HTML page built on first request (one build, however many ask at once) and cached."""

    def __init__(
        self, evaluation: Evaluation, payload: Payload, source: str, problems: int, blind: dict[str, str]
    ) -> None:
        self.evaluation, self.payload = evaluation, payload
        self._source, self._problems, self._blind = source, problems, blind  # as of the evaluation
        self._built: dict[str, bytes] = {}
        self._lock = asyncio.Lock()

    def findings_json_blocking(self) -> bytes:
        return json.dumps(to_json(self.evaluation), indent=1).encode()

    def html_blocking(self) -> bytes:
        return to_html(self.evaluation, self._source, self._problems, self._blind).encode()

    async def _get(self, name: str, build: Callable[[], bytes]) -> bytes:
        if name not in self._built:
            async with self._lock:
                if name not in self._built:
                    self._built[name] = await asyncio.to_thread(build)
        return self._built[name]

    async def findings_json(self) -> bytes:
        return await self._get("findings", self.findings_json_blocking)

    async def html(self) -> bytes:
        return await self._get("html", self.html_blocking)


class Exporter:
    """Owns the store, the source task and the evaluation loop."""

    def __init__(
        self, source: Source, config: Config, interval: float = 60.0, auth: KubernetesAuth | None = None
    ) -> None:
        self.source, self.config, self.interval = source, config, interval
        self.auth = auth  # None: every route is open
        self.store = Store()
        self.history = History()
        self.reuse = Reuse()  # checks whose inputs did not change since the last evaluation are not run again
        self.renderer = Renderer()  # and their series are not rendered again
        self.prepared: Prepared | None = None
        self.source_error: str = ""
        self._tasks: list[asyncio.Task] = []
        self._evaluated = asyncio.Event()

    # ------------------------------------------------------------ work

    def _evaluate_and_render(self) -> Prepared:
        """Blocking: runs in a worker thread. The cyclic GC is off throughout (evaluate
        already pauses it for the checks; rendering 10^4 series allocates as much), so no
        collection holds the GIL against the event loop meanwhile; reference counting
        frees what the evaluation drops. What it leaves (its findings and series, ~10^5
        objects at 10,000 VMs) joins the store in the permanent generation before the GC
        is on again: left young, the first allocation after would set off a collection
        that walks all of them, on whichever thread holds the GIL (60-70 ms at XL).
        Acyclic, they are freed by reference counting when the next evaluation replaces
        them."""
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            evaluation = evaluate(self.store.state(), self.config, CHECKS, reuse=self.reuse)
            self.history.record(evaluation)
            stats = SourceStats.of(
                self.store, self.source.requests(), dict(self.auth.counts) if self.auth is not None else None
            )
            payload = self.renderer.render(evaluation, self.history, stats)
            return Prepared(evaluation, payload, self.source.describe(), stats.problems, self.blind())
        finally:
            gc.freeze()
            if was_enabled:
                gc.enable()

    async def evaluate_once(self) -> Prepared:
        prepared = await asyncio.to_thread(self._evaluate_and_render)
        self.prepared = prepared
        await asyncio.to_thread(heap.trim)  # what the previous evaluation and its payload freed
        self._evaluated.set()
        return prepared

    async def _run_source(self) -> None:
        """Runs the source; one that raises is reported and started again with backoff
        (the live source also supervises itself), so the source task never ends."""
        delay = 1.0
        while True:
            try:
                await self.source.run(self.store.apply)
                return  # a static source loaded once
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - reported on /readyz and in the log; serving goes on
                self.source_error = f"{type(exc).__name__}: {exc}"
                self.store.apply(SourceFailed(self.source_error))
                log.error(
                    "source %s failed: %s; starting it again in %.0f s",
                    self.source.describe(),
                    self.source_error,
                    delay,
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    def blind(self) -> dict[str, str]:
        """Kinds an enabled check reads that are not current: kind -> reason."""
        now = time.time()
        needed = {k for spec in CHECKS if self.config.check_enabled(spec.id) for k in (*spec.requires, *spec.reads)}
        return {
            KIND_BY_KEY[key].kind: st.reason(now)
            for key, st in sorted(self.store.kinds.items())
            if key in needed and st.state(now) in BLIND_STATES
        }

    async def _loop(self) -> None:
        # The first evaluation waits for every kind to be listed, or to have an answer
        # that says it cannot be (denied, failing): then its checks fail visibly.
        gc_before_sync()
        try:
            while not self.store.synced and not self.store.settled() and not self.source_error:
                await asyncio.sleep(0.05)
        finally:
            gc_after_sync()
        await asyncio.to_thread(heap.trim)  # what decoding the LIST pages freed
        while True:
            try:
                started = asyncio.get_running_loop().time()
                prepared = await self.evaluate_once()
                # Counted, not `.findings` (which sorts them all): this runs on the event loop.
                count = sum(len(r.findings) for r in prepared.evaluation.results)
                log.info("evaluation: %d findings in %.3f s", count, prepared.evaluation.duration)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - keep serving the last payload
                log.exception("evaluation failed")
            elapsed = asyncio.get_running_loop().time() - started
            await asyncio.sleep(max(0.0, self.interval - elapsed))

    async def start(self) -> None:
        sys.setswitchinterval(SWITCH_INTERVAL)
        self._tasks = [
            asyncio.create_task(self._run_source(), name="source"),
            asyncio.create_task(self._loop(), name="evaluate"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def wait_evaluated(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._evaluated.wait(), timeout)

    # ------------------------------------------------------------ HTTP

    async def metrics(self, request: web.Request) -> web.Response:
        if self.prepared is None:
            return web.Response(status=503, text="no evaluation yet\n")
        body, ctype, gzipped = self.prepared.payload.pick(
            request.headers.get("Accept", ""), request.headers.get("Accept-Encoding", "")
        )
        headers = {"Content-Type": ctype, "Vary": "Accept, Accept-Encoding"}
        if gzipped:
            headers["Content-Encoding"] = "gzip"
        return web.Response(body=body, headers=headers)

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(self, request: web.Request) -> web.Response:
        """503 before the first evaluation and while a kind a check reads is not current."""
        now = time.time()
        blind = self.blind()
        ready = self.prepared is not None and not blind
        detail = {
            "ready": ready,
            "source": self.source.describe(),
            "synced": self.store.synced,
            "source_error": self.source_error,
            "problems": len(self.store.problems),
            "blind": blind,
            "kinds": {key: _kind_detail(st, now) for key, st in sorted(self.store.kinds.items())},
            "seconds_since_contact": {
                key: round(now - st.last_contact, 1)
                for key, st in sorted(self.store.kinds.items())
                if st.last_contact is not None
            },
            "checks": {
                r.spec.id: {"status": r.status.value, "error": r.error} for r in self.prepared.evaluation.results
            }
            if self.prepared
            else {},
        }
        return web.json_response(detail, status=200 if ready else 503)

    async def index(self, request: web.Request) -> web.Response:
        if self.prepared is None:
            page = to_html(None, self.source.describe(), len(self.store.problems), self.blind()).encode()
        else:
            page = await self.prepared.html()
        return web.Response(body=page, content_type="text/html", charset="utf-8")

    async def findings(self, request: web.Request) -> web.Response:
        if self.prepared is None:
            return web.json_response({"error": "no evaluation yet"}, status=503)
        return web.Response(body=await self.prepared.findings_json(), content_type="application/json")

    async def runbook(self, request: web.Request) -> web.Response:
        """A check's runbook (/runbooks/<check>.md) or an alert's (/runbooks/<AlertName>.md):
        the alert rules' runbook_url points here by default."""
        name = request.match_info["name"]
        if name in {f"{c.id}.md" for c in CHECKS}:
            text = (resources.files("ov_exporter") / "checks" / name.removesuffix(".md") / RUNBOOK_FILE).read_text()
        elif name in _alert_runbooks():
            text = (resources.files("ov_exporter") / "alert_runbooks" / name).read_text()
        else:
            raise web.HTTPNotFound()
        return web.Response(text=text, content_type="text/markdown", charset="utf-8")

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.auth.middleware] if self.auth is not None else [])
        app.router.add_get("/", self.index)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/findings.json", self.findings)
        app.router.add_get("/runbooks/{name}", self.runbook)

        async def lifecycle(app: web.Application):
            await self.start()
            yield
            await self.stop()
            if self.auth is not None:
                await self.auth.close()

        app.cleanup_ctx.append(lifecycle)
        return app


@functools.cache
def _alert_runbooks() -> frozenset[str]:
    """File names of the alert runbooks shipped with the package (alerts/runbooks/)."""
    folder = resources.files("ov_exporter") / "alert_runbooks"
    return frozenset(p.name for p in folder.iterdir() if p.name.endswith(".md")) if folder.is_dir() else frozenset()


def _kind_detail(st: KindStatus, now: float) -> str:
    """ "synced", "syncing", or "<state>: <why>"."""
    state = st.state(now)
    if state == "absent":
        return f"absent: {st.absent}"
    if state in BLIND_STATES:
        return f"{state}: {st.reason(now).removeprefix(state + ': ')}"
    return f"{state} (retrying: {st.error})" if st.error else state

from __future__ import annotations

import os
import shutil
import socket
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CLEAN = ROOT / "tests" / "fixtures" / "clean"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require_binary(name: str) -> str:
    """Tests that need a real binary fail (never skip) when it is missing: `make test`
    installs it, so a missing binary is a broken install step."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed; `make test` installs it (Debian package)")
    return path


@pytest.fixture
def exporter_cmd() -> list[str]:
    return [sys.executable, "-m", "ov_exporter"]


@pytest.fixture
def env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


class Prometheus:
    """A real Prometheus (Debian package) scraping the given targets every second."""

    def __init__(
        self,
        tmp_path: Path,
        targets: list[str],
        job: str = "ov-exporter",
        data_dir: Path | None = None,
        extra_args: tuple[str, ...] = (),
        rule_files: tuple[Path, ...] = (),
    ) -> None:
        import subprocess

        binary = require_binary("prometheus")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            + (f"rule_files: {[str(f) for f in rule_files]!r}\n" if rule_files else "")
            + f"scrape_configs:\n- job_name: {job}\n  static_configs: [{{targets: {targets!r}}}]\n"
        )
        self.log = tmp_path / "prometheus.log"
        self.proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={data_dir or tmp_path / 'prom-data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                *extra_args,
            ],
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """(status, body); status 0 when nothing answers (still starting, or stopped)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
    except OSError:
        return 0, b""


def promql_metric_names(expr: str) -> set[str]:
    """Metric names an expression reads, from a real PromQL parse."""
    import promql_parser as pp

    names: set[str] = set()

    def walk(node) -> None:
        if node is None:
            return
        if isinstance(node, pp.VectorSelector):
            if node.name:
                names.add(node.name)
            for m in node.matchers.matchers:
                if m.name == "__name__":
                    names.add(m.value)  # regex matchers show up as unknown names on purpose
        elif isinstance(node, pp.MatrixSelector):
            walk(node.vector_selector)
        elif isinstance(node, pp.Call):
            for arg in node.args:
                walk(arg)
        elif isinstance(node, pp.AggregateExpr):
            walk(node.expr)
            walk(node.param)
        elif isinstance(node, pp.BinaryExpr):
            walk(node.lhs)
            walk(node.rhs)
        elif isinstance(node, (pp.ParenExpr, pp.UnaryExpr, pp.SubqueryExpr)):
            walk(node.expr)
        elif not isinstance(node, (pp.NumberLiteral, pp.StringLiteral)):
            raise AssertionError(f"unhandled PromQL node {type(node).__name__} in {expr}")

    walk(pp.parse(expr))
    return names


def wait_for(predicate, what: str, timeout: float = 60.0, logs: tuple[Path, ...] | list[Path] = (), describe=None):
    """Poll predicate until it returns something truthy; fail with the logs' tails."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.25)
    tails = "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}" for p in logs if p.exists())
    state = f"\n{describe()}" if describe else ""
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}{state}\n{tails}")


class ThreadedApp:
    """An aiohttp app on 127.0.0.1 in a thread of its own, for tests that run real
    processes (Prometheus, Alertmanager) against it. Subclasses add their routes."""

    name = "app"

    def __init__(self) -> None:
        import asyncio
        import threading

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    def routes(self, app) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        import asyncio

        from aiohttp import web

        asyncio.set_event_loop(self._loop)
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        self._loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(10):
            pytest.fail(f"{self.name} did not start")

    def stop(self) -> None:
        import asyncio

        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

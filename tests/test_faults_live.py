"""Fault injection over the fake API server: every way the live exporter can lose sight
of the cluster shows on /readyz, in ov_source_kind_state, in the checks and on the
page, and the exporter recovers by itself once the fault is lifted.

Faults that already held before (watches resume from their resourceVersion, one relist
per 410, no ghosts after compaction, no LIST in steady state, RBAC denial per check)
are covered in test_live.py and stay there. Backoff and grace constants are scaled
down here; each test prints the measured recovery time ("RECOVERY ...", run with -s).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import time

import aiohttp
import pytest
from ov_exporter import store as store_mod
from ov_exporter.config import Config
from ov_exporter.logs import RateLimit
from ov_exporter.server import Exporter, LimitedRunner
from ov_exporter.sources import apiclient as apiclient_mod
from ov_exporter.sources import live as live_mod
from ov_exporter.sources import reflector as reflector_mod
from ov_exporter.sources.live import Backoff, LiveSource, load_credentials

from .fakeapi.server import FakeAPIServer
from .test_live import _cli, api, cluster, eventually, vm  # noqa: F401  (api: the fake API fixture)

VMS = "virtualmachines.kubevirt.io"
REAL_BACKOFF = (apiclient_mod.BACKOFF_INITIAL, apiclient_mod.BACKOFF_MAX)  # before the `fast` fixture scales them


@pytest.fixture(autouse=True)
def fast(monkeypatch):
    """Backoff and grace scaled down (the real values are tested in test_backoff_*)."""
    monkeypatch.setattr(apiclient_mod, "BACKOFF_INITIAL", 0.05)
    monkeypatch.setattr(apiclient_mod, "BACKOFF_MAX", 0.25)
    monkeypatch.setattr(reflector_mod, "HEALTHY_WATCH", 0.3)
    monkeypatch.setattr(store_mod, "STALE_AFTER", 1.0)


class Harness:
    def __init__(self, exporter: Exporter, url: str, session: aiohttp.ClientSession) -> None:
        self.exporter, self.url, self.session = exporter, url, session

    @property
    def store(self):
        return self.exporter.store

    async def get(self, path: str) -> tuple[int, str]:
        async with self.session.get(self.url + path) as resp:
            return resp.status, await resp.text()

    async def ready(self) -> tuple[int, dict]:
        status, body = await self.get("/readyz")
        return status, json.loads(body)

    async def check_up(self, check: str) -> float | None:
        status, body = await self.get("/metrics")
        for line in body.splitlines():
            if line.startswith(f'ov_check_up{{check="{check}"}}'):
                return float(line.rsplit(" ", 1)[1])
        return None

    async def kind_state(self, kind: str) -> str | None:
        _, body = await self.get("/metrics")
        for line in body.splitlines():
            if line.startswith(f'ov_source_kind_state{{kind="{kind}",') and line.endswith(" 1.0"):
                return line.split('state="', 1)[1].split('"', 1)[0]
        return None


@contextlib.asynccontextmanager
async def exporter(api: FakeAPIServer, tmp_path, token: str = "s3cret", **runner_kwargs):
    kubeconfig = api.write_kubeconfig(tmp_path / "kc", token=token)
    exp = Exporter(LiveSource(credentials=load_credentials(str(kubeconfig), None)), Config(), interval=0.1)
    runner = LimitedRunner(exp.app(), **runner_kwargs)
    await runner.setup()
    from aiohttp import web

    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    try:
        async with aiohttp.ClientSession() as session:
            yield Harness(exp, url, session)
    finally:
        await runner.cleanup()


async def until(predicate, what: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


async def recovered(h: Harness, fault: str, started: float) -> float:
    await until(lambda: _ready(h), f"recovery from {fault}")
    took = time.monotonic() - started
    print(f"RECOVERY {fault}: {took:.2f} s")
    return took


async def _ready(h: Harness) -> bool:
    status, _ = await h.ready()
    return status == 200 and await h.check_up("rwo_vm_disks") == 1


async def test_api_unreachable_at_start_is_failed_not_green_and_recovers(api, tmp_path):
    await api.outage()
    async with exporter(api, tmp_path) as h:
        await until(lambda: h.kind_state("VirtualMachine"), "first evaluation")
        assert await h.kind_state("VirtualMachine") == "failed"
        status, detail = await h.ready()
        assert status == 503 and detail["kinds"][VMS].startswith("failed: cannot connect to the API server")
        assert await h.check_up("rwo_vm_disks") == 0
        _, page = await h.get("/")
        assert "cannot see part of the cluster" in page and "VirtualMachine" in page
        started = time.monotonic()
        await api.restore()
        assert await recovered(h, "API unreachable at start", started) < 15
        assert await h.kind_state("VirtualMachine") == "synced"


async def test_full_outage_after_sync_goes_stale_then_recovers(api, tmp_path):
    async with exporter(api, tmp_path) as h:
        await until(lambda: _ready(h), "first sync")
        await api.outage()
        lost = time.monotonic()
        await until(lambda: _state_is(h, "VirtualMachine", "stale"), "stale after the grace period")
        print(f"VISIBLE full outage: stale after {time.monotonic() - lost:.2f} s (grace 1 s)")
        status, detail = await h.ready()
        assert status == 503 and "last contact" in detail["blind"]["VirtualMachine"]
        assert await h.check_up("rwo_vm_disks") == 0
        # The data held are kept (no false "deleted"), only not trusted.
        assert len(h.store.state().vms) == 12
        started = time.monotonic()
        await api.restore()
        await recovered(h, "full API outage", started)


async def _state_is(h: Harness, kind: str, state: str) -> bool:
    return await h.kind_state(kind) == state


async def test_revoked_token_is_unauthorized_then_recovers(api, tmp_path):
    async with exporter(api, tmp_path) as h:
        await until(lambda: _ready(h), "first sync")
        api.set_token("rotated-elsewhere")  # our token is revoked
        api.drop_watches()
        await until(lambda: _state_is(h, "VirtualMachine", "unauthorized"), "unauthorized")
        status, detail = await h.ready()
        assert status == 503 and "401" in detail["kinds"][VMS]
        assert await h.check_up("rwo_vm_disks") == 0
        started = time.monotonic()
        api.set_token("s3cret")  # access restored
        await recovered(h, "revoked token (401) restored", started)


async def test_kubeconfig_token_file_is_reread_after_rotation(api, tmp_path):
    token = tmp_path / "token"
    token.write_text("s3cret")
    kubeconfig = api.write_kubeconfig(tmp_path / "kc", token_file=str(token))
    store = store_mod.Store()
    task = asyncio.create_task(LiveSource(credentials=load_credentials(str(kubeconfig), None)).run(store.apply))
    try:
        await eventually(lambda: store.synced, "first sync")
        token.write_text("rotated")  # kubelet / an operator rotates the file; the server follows
        api.set_token("rotated")
        api.drop_watches("virtualmachines")
        api.add(vm("team-0", "after-rotation", "x"))
        await eventually(
            lambda: any(v.metadata.name == "after-rotation" for v in store.state().vms),
            "watch resumed with the rotated token file",
        )
        assert all(not st.unauthorized for st in store.kinds.values())
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_deep_object_is_one_problem_and_the_source_goes_on(api, tmp_path):
    depth = 5000
    deep = {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": {"name": "deep", "namespace": "team-0", "uid": "deep-1", "resourceVersion": str(api.rv)},
        "spec": {"template": {"spec": {}}},
    }
    text = json.dumps(deep)[:-3] + ', "x": ' + "[" * depth + "]" * depth + "}}}"
    api.inject_malformed("virtualmachines", text)  # served in the LIST
    async with exporter(api, tmp_path) as h:
        await until(lambda: _ready(h), "first sync despite a deep object in the LIST")
        problems = {p.where: p.message for p in h.store.problems}
        assert problems.get("VirtualMachine team-0/deep", "").startswith("nested too deeply to decode")
        api.add(vm("team-4", "after-deep", "x"))  # the watch carries on
        await eventually(lambda: any(v.metadata.name == "after-deep" for v in h.store.state().vms), "watch goes on")
        api.inject_malformed("virtualmachines", text.replace('"deep"', '"deep-2"'))  # and a deep watch event
        await eventually(
            lambda: any(p.where == "VirtualMachine team-0/deep-2" for p in h.store.problems),
            "deep watch event reported",
        )
        api.add(vm("team-4", "after-deep-event", "x"))
        await eventually(
            lambda: any(v.metadata.name == "after-deep-event" for v in h.store.state().vms),
            "watch goes on after a deep event",
        )
        assert (await h.ready())[0] == 200


async def test_a_bad_field_in_a_live_object_drops_that_field_and_keeps_the_object(api, tmp_path):
    bad = vm("team-7", "bad-guest", "bad-guest-disk")
    bad["spec"]["template"]["spec"]["domain"]["memory"]["guest"] = "abc"
    api.add(bad)
    async with exporter(api, tmp_path) as h:
        await until(lambda: _ready(h), "first sync")
        assert any(v.metadata.name == "bad-guest" for v in h.store.state().vms)  # still judged
        problems = {p.where: p.message for p in h.store.problems}
        message = problems.get("VirtualMachine team-7/bad-guest", "")
        assert message.startswith("kept without 1 field(s) that do not decode") and "memory.guest" in message


async def test_undecodable_watch_event_relists_once_and_its_problem_clears(api, tmp_path):
    async with exporter(api, tmp_path) as h:
        await until(lambda: _ready(h), "first sync")
        await eventually(lambda: api.watch_count("virtualmachines") == 1, "watch open")
        lists = api.count("virtualmachines", verb="list")
        watches = api.count("virtualmachines", verb="watch")
        # The event's name is a number: nothing about it can be followed.
        api.inject_malformed(
            "virtualmachines",
            json.dumps(
                {
                    "apiVersion": "kubevirt.io/v1",
                    "kind": "VirtualMachine",
                    "metadata": {"name": 7, "namespace": "team-0", "resourceVersion": str(api.rv + 1)},
                }
            ),
        )
        await eventually(lambda: api.count("virtualmachines", verb="list") == lists + 1, "one relist")
        await asyncio.sleep(1.5)
        assert api.count("virtualmachines", verb="list") == lists + 1  # not a loop
        assert api.count("virtualmachines", verb="watch") <= watches + 2
        # The LIST reported the broken item itself; the watch problem is over.
        assert not any(p.where == "VirtualMachine watch" for p in h.store.problems)
        assert any(p.where == "VirtualMachine ?" for p in h.store.problems)
        api.clear_faults()  # the broken object is gone from the server
        api.expire("virtualmachines", now=True)  # next relist
        await eventually(
            lambda: not any(p.where.startswith("VirtualMachine ") for p in h.store.problems),
            "problem cleared by the next LIST",
        )


async def test_repeated_410_backs_off(api, tmp_path, monkeypatch):
    monkeypatch.setattr(apiclient_mod, "BACKOFF_INITIAL", 0.1)
    monkeypatch.setattr(apiclient_mod, "BACKOFF_MAX", 1.0)
    async with exporter(api, tmp_path) as h:
        await until(lambda: _ready(h), "first sync")
        lists = api.count("virtualmachines", verb="list")
        api.fail("virtualmachines", 410, verbs=("watch",))  # every watch: 410 Gone
        api.drop_watches("virtualmachines")
        await asyncio.sleep(4.0)
        relists = api.count("virtualmachines", verb="list") - lists
        # Without backoff: hundreds. Delays 0.1-0.2, 0.2-0.4, 0.4-0.8, 0.8-1.6, 1-2 s...: at most 7 in 4 s.
        assert 2 <= relists <= 7, relists
        api.clear_faults()
        started = time.monotonic()
        await eventually(lambda: api.watch_count("virtualmachines") == 1, "watch open again")
        print(f"RECOVERY repeated 410: {time.monotonic() - started:.2f} s")


async def test_backoff_resets_after_a_healthy_watch(api, tmp_path, monkeypatch):
    monkeypatch.setattr(apiclient_mod, "BACKOFF_INITIAL", 0.2)
    monkeypatch.setattr(apiclient_mod, "BACKOFF_MAX", 30.0)
    kubeconfig = api.write_kubeconfig(tmp_path / "kc", token="s3cret")
    store = store_mod.Store()
    task = asyncio.create_task(LiveSource(credentials=load_credentials(str(kubeconfig), None)).run(store.apply))
    try:
        await eventually(lambda: store.synced, "first sync")
        delays = []
        for _ in range(7):
            await eventually(lambda: api.watch_count("virtualmachines") == 1, "watch open")
            await asyncio.sleep(0.5)  # healthy for longer than HEALTHY_WATCH (0.3 s)
            api.drop_watches("virtualmachines")
            dropped = time.monotonic()
            await eventually(lambda: api.watch_count("virtualmachines") == 1, "watch reopened")
            delays.append(time.monotonic() - dropped)
        # Each drop follows a healthy watch: the delay starts over at 0.2-0.4 s (never 0.2 * 2**6 = 12.8 s).
        assert max(delays) < 1.0, delays
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_backoff_is_client_go_like_and_bounds_recovery_at_60_seconds(monkeypatch):
    monkeypatch.setattr(apiclient_mod, "BACKOFF_INITIAL", REAL_BACKOFF[0])
    monkeypatch.setattr(apiclient_mod, "BACKOFF_MAX", REAL_BACKOFF[1])
    b = Backoff()
    delays = [b.next() for _ in range(40)]
    assert 0.8 <= delays[0] <= 1.6 and 1.6 <= delays[1] <= 3.2  # 800 ms doubling, jitter up to 100 %
    assert max(delays) <= 60.0 and min(delays[10:]) >= 30.0  # capped at 30 s (+ jitter): a lifted 403 or
    b.reset()  # a fixed token is seen within 60 s
    assert b.next() <= 1.6


async def test_lifted_403_recovers_within_the_backoff_bound(api, tmp_path):
    api.fail("nodes", 403)
    async with exporter(api, tmp_path) as h:
        await until(lambda: _state_is(h, "Node", "forbidden"), "forbidden")
        assert (await h.ready())[0] == 503
        await asyncio.sleep(2.0)  # many failures: the backoff is at its cap (0.25 s, 0.5 s with jitter)
        started = time.monotonic()
        api.clear_faults()
        took = await recovered(h, "lifted 403", started)
        assert took < 2 * apiclient_mod.BACKOFF_MAX + 1.0


async def test_source_restarts_after_an_unexpected_error(api, tmp_path, monkeypatch):
    calls = []
    real = live_mod.discover

    async def flaky(client):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a bug")
        return await real(client)

    monkeypatch.setattr(live_mod, "discover", flaky)
    async with exporter(api, tmp_path) as h:
        await until(lambda: _ready(h), "sync after the source restarted")
        assert len(calls) == 2


async def test_check_with_a_wrong_token_exits_2_at_once(api, tmp_path):
    kubeconfig = str(api.write_kubeconfig(tmp_path / "kc", token="wrong"))
    started = time.monotonic()
    code, out, err = await _cli("check", "--kubeconfig", kubeconfig, "--log-level", "error")
    took = time.monotonic() - started
    assert code == 2 and "401" in err and "rejected the credentials" in err, err
    assert "Traceback" not in err and err.count("ov-exporter: error:") == 1
    assert took < 15  # not the 300 s sync timeout
    print(f"EXIT wrong token: 2 after {took:.1f} s")


async def test_check_against_an_unreachable_api_exits_2_with_one_line(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    api = FakeAPIServer(token="t")
    api.url, api.port = f"http://127.0.0.1:{port}", port  # never started: nothing listens there
    kubeconfig = str(api.write_kubeconfig(tmp_path / "kc", token="t"))
    code, out, err = await _cli("check", "--kubeconfig", kubeconfig, "--log-level", "error")
    assert code == 2 and f"cannot connect to the API server 127.0.0.1:{port}" in err, err
    assert "Traceback" not in err


async def test_check_with_a_malformed_kubeconfig_exits_2_with_one_line(tmp_path):
    (tmp_path / "kc").write_text("clusters: 5\nusers: [\n")
    code, out, err = await _cli("check", "--kubeconfig", str(tmp_path / "kc"))
    assert code == 2 and "cannot load Kubernetes credentials" in err and "Traceback" not in err, err


async def test_check_fails_closed_when_a_needed_kind_is_forbidden(api, tmp_path):
    api.fail("virtualmachines", 403)
    kubeconfig = str(api.write_kubeconfig(tmp_path / "kc", token="s3cret"))
    code, out, err = await _cli("check", "--kubeconfig", kubeconfig, "--fail-on", "never")
    assert code == 2, (out, err)
    assert "cannot read VirtualMachine: virtualmachines.kubevirt.io is forbidden" in out


async def test_idle_connections_are_closed_and_capped(api, tmp_path):
    async with exporter(api, tmp_path, idle_timeout=0.5, max_connections=20) as h:
        await until(lambda: _ready(h), "first sync")
        port = int(h.url.rsplit(":", 1)[1])
        idle = []
        for _ in range(60):  # more than the cap, none sends a request
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            idle.append(writer)
        await asyncio.sleep(0.1)
        refused = 0
        for w in idle:
            with contextlib.suppress(ConnectionError):
                data = await asyncio.wait_for(w.transport.get_extra_info("socket") and _read_some(w), 0.5)
                refused += data.startswith(b"HTTP/1.1 503")
        assert refused >= 35  # beyond the cap: answered 503 and closed at once
        await asyncio.sleep(0.8)  # the idle timeout closes the rest
        runner_server = h.exporter  # noqa: F841 - the scrape below must work again
        status, body = await h.get("/metrics")
        assert status == 200 and "ov_check_up" in body
        for w in idle:
            w.close()


async def _read_some(writer: asyncio.StreamWriter) -> bytes:
    reader = writer._protocol._stream_reader  # type: ignore[attr-defined]
    return await reader.read(64)


def test_repeated_log_lines_are_rate_limited():
    now = [0.0]
    flt = RateLimit(burst=3, period=10.0, clock=lambda: now[0])

    def rec(msg: str) -> logging.LogRecord:
        return logging.LogRecord("asyncio", logging.ERROR, __file__, 1, msg, None, None)

    passed = [flt.filter(rec("socket.accept() out of system resource")) for _ in range(1000)]
    assert sum(passed) == 3
    assert flt.filter(rec("another message"))
    now[0] = 11.0
    first = rec("socket.accept() out of system resource")
    assert flt.filter(first) and "997 similar messages suppressed" in first.getMessage()

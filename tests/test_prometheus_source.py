"""Prometheus as the dirty-rate source: a real Prometheus scrapes a stand-in for
virt-handler's metrics; the live source queries it; when it goes away only the
migration_dirty_rate check degrades."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
import yaml
from aiohttp import web
from ov_exporter.config import Config
from ov_exporter.promclient import PrometheusError
from ov_exporter.runner import evaluate
from ov_exporter.sources.live import LiveSource, load_credentials
from ov_exporter.sources.prometheus import PrometheusSamples
from ov_exporter.store import Store

from .conftest import Prometheus
from .fakeapi.server import FakeAPIServer
from .test_live import cluster


async def virt_handler_metrics() -> tuple[web.AppRunner, str]:
    """What virt-handler exports on KubeVirt 1.1-1.6 during a migration: the memory
    transfer rate under its old (swapped) name."""
    body = (
        "\n".join(
            [
                "# TYPE kubevirt_vmi_dirty_rate_bytes_per_second gauge",
                'kubevirt_vmi_dirty_rate_bytes_per_second{namespace="team-1",name="vm-01",node="w1"} 2e9',
                'kubevirt_vmi_dirty_rate_bytes_per_second{namespace="team-2",name="vm-02",node="rhel-1"} 1e6',
                "# TYPE kubevirt_vmi_migration_dirty_memory_rate_bytes gauge",
                'kubevirt_vmi_migration_dirty_memory_rate_bytes{namespace="team-0",name="vm-03",node="w1"} 9e7',
                "# TYPE kubevirt_vmi_migration_disk_transfer_rate_bytes gauge",
                'kubevirt_vmi_migration_disk_transfer_rate_bytes{namespace="team-0",name="vm-03",node="w1"} 1e8',
            ]
        )
        + "\n"
    )

    return await serve_metrics(lambda: body)


async def serve_metrics(body) -> tuple[web.AppRunner, str]:
    """Serve body() as Prometheus text on /metrics; (runner, host:port)."""

    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=body(), content_type="text/plain")

    app = web.Application()
    app.router.add_get("/metrics", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"127.0.0.1:{site._server.sockets[0].getsockname()[1]}"


async def test_dirty_rates_from_a_real_prometheus(tmp_path):
    api = FakeAPIServer(token="t")
    for obj in cluster():
        api.add(obj)
    await api.start()
    handler, target = await virt_handler_metrics()
    prometheus = Prometheus(tmp_path, [target], job="kubevirt")
    token_file = tmp_path / "token"
    token_file.write_text("prom-token\n")
    metrics = PrometheusSamples(prometheus.url, token_file=str(token_file), interval=0.3, timeout=2)
    source = LiveSource(
        credentials=load_credentials(str(api.write_kubeconfig(tmp_path / "kc", token="t")), None), metrics=metrics
    )
    store = Store()
    task = asyncio.create_task(source.run(store.apply))
    try:
        deadline = time.monotonic() + 60
        while not (
            store.state().samples and "kubevirt_vmi_migration_disk_transfer_rate_bytes" in store.state().samples
        ):
            assert time.monotonic() < deadline, "Prometheus never answered with the samples"
            await asyncio.sleep(0.2)
        result = evaluate(store.state(), Config())
        before = {r.spec.id: r.status.value for r in result.results}
        check = result.result("migration_dirty_rate")
        assert check.status.value == "ok", check.error
        by_vmi = {f.obj.name: f for f in check.findings}
        # 2e9 B/s dirtying vs a 10 Gbit/s link shared by 2 outbound migrations: never converges.
        assert by_vmi["vm-01"].severity.name == "WARNING" and "risk 3.20" in by_vmi["vm-01"].message
        # Migrating VMI: the measured transfer rate (old metric name) is the bandwidth.
        assert "measured transfer rate" in by_vmi["vm-03"].message and "risk 0.90" in by_vmi["vm-03"].message
        assert "vm-02" not in by_vmi

        prometheus.stop()  # Prometheus goes away: only this check degrades
        deadline = time.monotonic() + 30
        while not store.state().samples_error:
            assert time.monotonic() < deadline, "the outage was never noticed"
            await asyncio.sleep(0.1)
        statuses = {r.spec.id: r for r in evaluate(store.state(), Config()).results}
        assert statuses["migration_dirty_rate"].status.value == "failed"
        assert "unreachable" in statuses["migration_dirty_rate"].error
        # vm_right_sizing has no usage here (no PodMetrics, no kubevirt_vmi_memory_used_bytes); other checks
        # keep the status they had before the outage (some are not_applicable on this cluster), none fails.
        assert statuses["vm_right_sizing"].status.value == "not_applicable"
        assert all(r.status.value == before[cid] for cid, r in statuses.items() if cid != "migration_dirty_rate")
        assert [cid for cid, status in before.items() if status == "failed"] == []
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        prometheus.stop()
        await handler.cleanup()
        await api.stop()


async def test_bearer_token_file_is_sent_and_reread(tmp_path):
    seen: list[str] = []

    async def query(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        return web.json_response({"status": "success", "data": {"resultType": "vector", "result": []}})

    app = web.Application()
    app.router.add_get("/api/v1/query", query)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    token = tmp_path / "token"
    token.write_text("first\n")
    prom = PrometheusSamples(f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}", token_file=str(token))
    try:
        async with prom.client() as client:
            assert await prom.query(client) == {}
            token.write_text("rotated")
            await prom.query(client)
        # One token read per round of queries (the selector query and each derived query).
        from ov_exporter.sources.promql import DERIVED_QUERIES

        rounds = 1 + len(DERIVED_QUERIES)
        assert seen == ["Bearer first"] * rounds + ["Bearer rotated"] * rounds
    finally:
        await runner.cleanup()


async def test_unreachable_prometheus_times_out_quickly():
    prom = PrometheusSamples("http://127.0.0.1:9", timeout=1)
    store = Store()
    task = asyncio.create_task(prom.run(store.apply))
    try:
        await asyncio.wait_for(prom.first_attempt.wait(), 5)
        assert "unreachable" in store.state().samples_error
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_vmi_cpu_rate_is_queried_from_a_real_prometheus(tmp_path):
    """A counter needs rate(): the source asks Prometheus for it and keeps the answer
    under its derived name, in cores per VMI."""
    from ov_exporter import upstream

    started = time.monotonic()

    def body() -> str:
        elapsed = time.monotonic() - started  # 1.5 cores busy on vm-a, 0.25 on vm-b
        return (
            "\n".join(
                [
                    "# TYPE kubevirt_vmi_cpu_usage_seconds_total counter",
                    f'kubevirt_vmi_cpu_usage_seconds_total{{namespace="team-1",name="vm-a",node="w1"}} {1.5 * elapsed}',
                    'kubevirt_vmi_cpu_usage_seconds_total{namespace="team-1",name="vm-b",node="w1"} '
                    f"{0.25 * elapsed}",
                ]
            )
            + "\n"
        )

    runner, target = await serve_metrics(body)
    prometheus = Prometheus(tmp_path, [target], job="kubevirt")
    source = PrometheusSamples(prometheus.url, timeout=2)
    try:
        deadline = time.monotonic() + 60
        async with source.client() as client:
            while True:
                try:
                    samples = await source.query(client)
                except PrometheusError:
                    samples = {}
                rates = {s.labels["name"]: s.value for s in samples.get(upstream.VMI_CPU_USAGE_RATE, [])}
                if len(rates) == 2:
                    break
                assert time.monotonic() < deadline, "Prometheus never answered the rate query"
                await asyncio.sleep(0.5)
        # rate() over [5m] divides by the whole window, so a series seconds old reads low in absolute
        # terms; the per-VMI proportion (1.5 : 0.25 cores) shows each VMI got its own rate.
        assert rates["vm-a"] > 0 and rates["vm-a"] / rates["vm-b"] == pytest.approx(6, rel=0.1)
        assert all(
            s.labels == {"namespace": "team-1", "name": s.labels["name"]} for s in samples[upstream.VMI_CPU_USAGE_RATE]
        )
        assert upstream.VMI_CPU_USAGE not in samples  # the raw counter is not kept
    finally:
        prometheus.stop()
        await runner.cleanup()


# KubeVirt's recording rules for the guest's used memory, as pkg/monitoring/rules/recordingrules/
# vmi.go (and 1.9's deprecated_recordingrules.go) define them at each tag.
MEMORY_RULES = {
    "v1.3.0": [
        ("kubevirt_vmi_memory_used_bytes", "kubevirt_vmi_memory_available_bytes-kubevirt_vmi_memory_usable_bytes")
    ],
    "v1.9.0": [
        (
            "vmi:kubevirt_vmi_memory_used_bytes:sum",
            "kubevirt_vmi_memory_available_bytes-kubevirt_vmi_memory_usable_bytes",
        ),
        ("kubevirt_vmi_memory_used_bytes", "vmi:kubevirt_vmi_memory_used_bytes:sum"),
    ],
    # A release after the deprecated name is gone, and a cluster without KubeVirt's PrometheusRule.
    "replacement-only": [
        (
            "vmi:kubevirt_vmi_memory_used_bytes:sum",
            "kubevirt_vmi_memory_available_bytes-kubevirt_vmi_memory_usable_bytes",
        )
    ],
    "no-rules": [],
}


@pytest.mark.parametrize("release", sorted(MEMORY_RULES))
async def test_vmi_memory_used_resolves_on_every_release(tmp_path, release):
    """virt-handler's gauges (domainstats/memory_metrics.go: namespace, name, node and the VMI's
    labels as kubernetes_vmi_label_*) with KubeVirt's recording rules of a release: one used-memory
    value per VMI, available - usable, whichever names the rules give it."""
    from ov_exporter import upstream

    gi = 2**30
    body = (
        "\n".join(
            [
                "# TYPE kubevirt_vmi_memory_available_bytes gauge",
                'kubevirt_vmi_memory_available_bytes{kubernetes_vmi_label_app="db",name="vm-a",namespace="team-1",'
                f'node="w1"}} {8 * gi}',
                f'kubevirt_vmi_memory_available_bytes{{name="vm-b",namespace="team-1",node="w2"}} {4 * gi}',
                "# TYPE kubevirt_vmi_memory_usable_bytes gauge",
                'kubevirt_vmi_memory_usable_bytes{kubernetes_vmi_label_app="db",name="vm-a",namespace="team-1",'
                f'node="w1"}} {2 * gi}',
                f'kubevirt_vmi_memory_usable_bytes{{name="vm-b",namespace="team-1",node="w2"}} {3 * gi}',
            ]
        )
        + "\n"
    )
    rules = tmp_path / "kubevirt-rules.yaml"
    rules.write_text(
        yaml.safe_dump(
            {
                "groups": [
                    {
                        "name": "kubevirt.rules",
                        "rules": [{"record": record, "expr": expr} for record, expr in MEMORY_RULES[release]],
                    }
                ]
            }
        )
    )
    runner, target = await serve_metrics(lambda: body)
    prometheus = Prometheus(tmp_path, [target], job="kubevirt", rule_files=(rules,) if MEMORY_RULES[release] else ())
    source = PrometheusSamples(prometheus.url, timeout=2)
    try:
        deadline = time.monotonic() + 60
        async with aiohttp.ClientSession() as session, source.client() as client:
            while True:
                recorded = {r for r, _ in MEMORY_RULES[release]}
                try:
                    # The rules' first evaluation first, so that the `or` branches they feed are tested.
                    rules_ready = await _has_series(session, prometheus.url, recorded)
                    samples = await source.query(client)
                except (aiohttp.ClientError, PrometheusError):
                    rules_ready, samples = False, {}
                used = samples.get(upstream.VMI_MEMORY_USED, [])
                if len(used) == 2 and rules_ready:
                    break
                assert time.monotonic() < deadline, f"Prometheus never answered the used-memory query ({release})"
                await asyncio.sleep(0.5)
        assert {s.labels["name"]: s.value for s in used} == {"vm-a": 6 * gi, "vm-b": 1 * gi}
        assert all(s.labels == {"namespace": "team-1", "name": s.labels["name"]} for s in used)
    finally:
        prometheus.stop()
        await runner.cleanup()


async def _has_series(session: aiohttp.ClientSession, url: str, names: set[str]) -> bool:
    for name in names:
        async with session.get(f"{url}/api/v1/query", params={"query": f"count({{__name__={name!r}}})"}) as resp:
            body = await resp.json(content_type=None)
        if not body.get("data", {}).get("result"):
            return False
    return True

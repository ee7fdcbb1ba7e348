"""`make bench`: what `serve` does at the scale users run, next to the physical limit, in
one run and one table. Measures, never asserts.

    python -m tests.bench [--tier S|M|L|XL] [--quick] [--repeat N] [--churn-seconds S]
                          [--switch-interval S] [--evaluate-in-child]

A synthetic cluster of the tier (tests/benchgen.py; XL by default: 500 nodes, 10,000 VMs
and VMIs, 20,000 PVCs, 10,000 DataVolumes, with managedFields and annotations) is served
over HTTP by the fake API server in its own process, LIST answers pre-serialised so its
CPU stays out (tests/benchapi.py). Each measure below runs in a fresh process
(tests/benchmeasure.py), interleaved `--repeat` times, medians quoted:
  * the yardsticks: transport alone, transport + a minimal msgspec decode, orjson dicts,
    the `kubernetes` client; and the exporter's own initial sync, with GC pauses;
  * evaluation as `serve` runs it: a fresh state each time, evaluate + render /metrics;
    the findings JSON and the HTML page, which `serve` builds on request;
then `ov-exporter serve` itself (tests/benchserve.py, with a loop-stall probe) against the
same server: time to ready, /metrics latency under 10 concurrent scrapers while
evaluations run back to back (with nothing changing, then during the churn, when they
work), event-loop stalls, RSS at ready, after 5 evaluations and over `--churn-seconds` of
100 events/s, and the LIST requests of the steady state.
Then the rebalance planner (tests/benchplan.py): against the exact optimum, a proven lower
bound and the simulated descheduler on seeded clusters until `--plan-proven` optima are
proven, and its time on the tier; `--plan` runs that section alone, `--no-plan` skips it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
from ov_exporter.checks import CHECKS

from .benchgen import TIERS

PY = sys.executable
SCRAPERS = 10
SCRAPE_EVERY = 0.1  # seconds between one scraper's requests: 100 requests/s in all


class Child:
    """A child process speaking JSON lines on stdout (and, for the API server, stdin)."""

    def __init__(self, args: list[str], stdin: bool = False) -> None:
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[dict[str, Any]] = []
        self._new = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                with self._new:
                    self.lines.append(json.loads(line))
                    self._new.notify_all()

    def wait_line(self, ok: Any, timeout: float = 600.0, after: int = 0) -> dict[str, Any]:
        """The first line from index `after` on that `ok` accepts."""
        deadline = time.monotonic() + timeout
        with self._new:
            while True:
                for line in self.lines[after:]:
                    if ok(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise RuntimeError(
                        f"{self.proc.args[:4]}: no expected line; stderr: "
                        f"{self.proc.stderr.read()[-2000:] if self.proc.poll() is not None else ''}"
                    )
                self._new.wait(min(left, 1.0))

    def command(self, text: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        seen = len(self.lines)
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()
        # By position: an answer equal to an earlier one (say `{}`) is still a new answer.
        return self.wait_line(lambda line: "ok" in line, 60, after=seen)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def measure(name: str, kubeconfig: str, *extra: str) -> dict[str, Any]:
    out = subprocess.run([PY, "-m", "tests.benchmeasure", name, kubeconfig, *extra], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"measure {name} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def scrape(url: str, seconds: float) -> list[float]:
    """SCRAPERS clients, each asking for /metrics (OpenMetrics, gzip, as Prometheus does)
    every SCRAPE_EVERY seconds; the latency of every answer."""
    latencies: list[float] = []
    headers = {
        "Accept": "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        "Accept-Encoding": "gzip",
    }
    deadline = time.monotonic() + seconds

    async def one(session: aiohttp.ClientSession, offset: float) -> None:
        await asyncio.sleep(offset)
        while time.monotonic() < deadline:
            started = time.perf_counter()
            async with session.get(url, headers=headers) as resp:
                await resp.read()
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(max(0.0, SCRAPE_EVERY - (time.perf_counter() - started)))

    async with aiohttp.ClientSession(auto_decompress=False) as session:
        await asyncio.gather(*(one(session, i * SCRAPE_EVERY / SCRAPERS) for i in range(SCRAPERS)))
    return latencies


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def med(rows: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def yardsticks(kubeconfig: str, repeat: int) -> dict[str, list[dict[str, Any]]]:
    names = ["transport", "msgspec", "orjson", "kubernetes", "sync"]
    try:
        import orjson  # noqa: F401
    except ImportError:
        names.remove("orjson")
        print("orjson is not installed: its yardstick is left out", file=sys.stderr)
    measure("transport", kubeconfig)  # warm-up: fills the server's pre-serialised LIST answers
    results: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    for _ in range(repeat):
        for name in names:
            results[name].append(measure(name, kubeconfig))
    return results


def cpu_limited(pid: int, millicores: int) -> Path:
    """Puts process `pid` in a new cgroup with a CFS quota of `millicores` a 100 ms period, as
    a container's CPU limit does (cgroup v1 or v2; needs root)."""
    v1 = Path("/sys/fs/cgroup/cpu")
    if (v1 / "cpu.cfs_quota_us").exists():
        group = v1 / f"ov-bench-{pid}"
        group.mkdir()
        (group / "cpu.cfs_period_us").write_text("100000")
        (group / "cpu.cfs_quota_us").write_text(str(millicores * 100))
    else:
        group = Path("/sys/fs/cgroup") / f"ov-bench-{pid}"
        group.mkdir()
        (group / "cpu.max").write_text(f"{millicores * 100} 100000")
    (group / "cgroup.procs").write_text(str(pid))
    return group


def throttling(group: Path) -> dict[str, float]:
    """Periods, periods throttled and seconds throttled so far (cpu.stat)."""
    stat = dict(line.split() for line in (group / "cpu.stat").read_text().splitlines() if line.strip())
    nanoseconds = float(stat.get("throttled_time", 0)) or float(stat.get("throttled_usec", 0)) * 1000
    return {"periods": float(stat["nr_periods"]), "throttled": float(stat["nr_throttled"]), "s": nanoseconds / 1e9}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def serve_phase(kubeconfig: str, api: Child, args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    probe_flags = []
    if args.switch_interval:
        probe_flags += ["--switch-interval", str(args.switch_interval)]
    if args.evaluate_in_child:
        probe_flags.append("--evaluate-in-child")
    if args.stall_trace:
        probe_flags += ["--stall-trace", str(args.stall_trace)]
    spawned = time.monotonic()
    api.command("requests")  # counts start here
    server = Child(
        [
            PY,
            "-m",
            "tests.benchserve",
            *probe_flags,
            "--",
            "--kubeconfig",
            kubeconfig,
            "--listen",
            f"127.0.0.1:{port}",
            "--interval",
            str(args.interval),
            "--log-level",
            "warning",
        ]
    )
    out: dict[str, Any] = {}
    group = cpu_limited(server.proc.pid, args.cpu_limit) if args.cpu_limit else None
    try:
        ready = server.wait_line(lambda line: line["ready"])
        out["ready_s"] = time.monotonic() - spawned
        out["ready_cpu_s"] = cpu_seconds(server.proc.pid)
        out["rss_ready"] = ready["rss_mib"]
        initial = api.command("requests")["requests"]
        out["initial_lists"] = sum(initial.get("list", {}).values())
        url = f"http://127.0.0.1:{port}/metrics"
        seen = len(server.lines)
        latencies = asyncio.run(scrape(url, args.scrape_seconds))
        window = server.lines[seen:]
        out["scrape"] = latencies
        out["window"] = window
        out["evaluations_in_window"] = window[-1]["evaluations"] - window[0]["evaluations"] if window else 0
        first = server.wait_line(lambda line: line["evaluations"] >= 5)
        out["rss_5_evaluations"] = first["rss_mib"]
        steady = api.command("requests")["requests"]  # after sync, during the scrape window
        out["steady_requests"] = steady
        out["steady_seconds"] = window[-1]["t"] - window[0]["t"] + 1 if window else 0
        # Churn: 100 events/s; RSS once a second.
        api.command(f"churn {args.churn_rate}")
        churn_start = len(server.lines)
        churn_cpu, churn_wall = cpu_seconds(server.proc.pid), time.monotonic()
        # Scrapes again while the churn makes the evaluations work (with nothing changing,
        # runner.Reuse runs almost nothing), then the rest of the churn without scrapers.
        scraping = min(args.scrape_seconds, args.churn_seconds)
        out["churn_scrape"] = asyncio.run(scrape(url, scraping))
        time.sleep(max(0.0, args.churn_seconds - scraping))
        api.command("churn 0")
        out["churn_cores"] = (cpu_seconds(server.proc.pid) - churn_cpu) / (time.monotonic() - churn_wall)
        events = api.command("requests")
        churn = server.lines[churn_start:]
        out["churn_rss"] = [line["rss_mib"] for line in churn]
        out["churn_events"] = events["events"]
        out["churn_window"] = churn
        out["churn_requests"] = events["requests"]
        if group is not None:
            out["throttling"] = throttling(group)
    finally:
        server.stop()
        if group is not None:
            group.rmdir()
    return out


def _serve_switch_interval() -> float:
    try:
        from ov_exporter.server import SWITCH_INTERVAL
    except ImportError:  # a build from before it: CPython's default
        return 0.005
    return SWITCH_INTERVAL


def table(
    args: argparse.Namespace,
    api_ready: dict[str, Any],
    ys: dict[str, list[dict[str, Any]]],
    ev: dict[str, Any],
    sv: dict[str, Any],
) -> str:
    tier = TIERS[args.tier]
    rows: list[tuple[str, str]] = []
    t = {name: med(runs, "seconds") for name, runs in ys.items()}
    size = ys["transport"][0]["bytes"]
    rows.append(("objects served / LIST bodies", f"{api_ready['objects']:,} / {size / 2**20:.1f} MiB"))
    rows.append(("transport only (aiohttp, bytes read)", f"{t['transport']:.2f} s"))
    rows.append(("transport + minimal msgspec decode", f"{t['msgspec']:.2f} s"))
    if "orjson" in t:
        rows.append(("transport + orjson dicts", f"{t['orjson']:.2f} s"))
    rows.append(("`kubernetes` client", f"{t['kubernetes']:.2f} s"))
    rows.append(("**exporter initial sync** (discovery, LIST, typed decode, store)", f"**{t['sync']:.2f} s**"))
    rows.append(("sync ÷ (transport + minimal decode) (goal ≤ 3)", f"{t['sync'] / t['msgspec']:.1f}×"))
    rows.append(("`kubernetes` client ÷ sync (goal ≥ 6)", f"{t['kubernetes'] / t['sync']:.1f}×"))
    gcs = ys["sync"][len(ys["sync"]) // 2]["gc"]
    rows.append(
        (
            "GC during sync: collections (full), longest pause",
            f"{gcs['collections']} ({gcs['full']}), {gcs['longest_ms']:.0f} ms",
        )
    )
    rows.append(
        (
            "RSS after sync, alone / `kubernetes` client alone",
            f"{med(ys['sync'], 'rss_mib'):.0f} / {med(ys['kubernetes'], 'rss_mib'):.0f} MiB",
        )
    )
    rows.append(
        (
            f"full evaluation, fresh state, nothing kept (median of {args.repeat}) (goal ≤ 250 ms)",
            f"{ev['evaluate_s'] * 1000:.0f} ms",
        )
    )
    if "evaluate_warm_s" in ev:
        rows.append(
            (
                "full evaluation, fresh state, per-object results kept from the last one (every check run)",
                f"{ev['evaluate_warm_s'] * 1000:.0f} ms",
            )
        )
        for what, figures in ev["after_change"].items():
            rows.append(
                (
                    f"evaluation after one {what.upper() if what != 'node' else 'Node'} changes, unchanged checks "
                    "reused (as `serve`) (goal ≤ 25 ms)",
                    f"{figures['seconds'] * 1000:.0f} ms ({figures['checks_run']:.0f} of {len(CHECKS)} checks run)",
                )
            )
    rows.append(("render /metrics (text + OpenMetrics + gzip)", f"{ev['render_s'] * 1000:.0f} ms"))
    rows.append(("evaluation job (evaluate + render)", f"{ev['job_s'] * 1000:.0f} ms"))
    rows.append(("findings / series in /metrics", f"{ev['findings']:,} / {ev['series']:,}"))
    rows.append(
        (
            "/findings.json on first request (then cached)",
            f"{ev['findings_json_s'] * 1000:.0f} ms, {ev['findings_json_bytes'] / 2**20:.1f} MiB",
        )
    )
    rows.append(
        (
            "HTML page on first request (then cached)",
            f"{ev['html_s'] * 1000:.0f} ms, {ev['html_bytes'] / 2**20:.1f} MiB",
        )
    )
    rows.append(("`serve` start to ready (first evaluation served)", f"{sv['ready_s']:.1f} s"))
    lat = sv["scrape"]
    rows.append(
        (
            f"/metrics latency, {SCRAPERS} scrapers, evaluations running, no change: p50 / p99 / max",
            f"{pct(lat, 0.5) * 1000:.1f} / {pct(lat, 0.99) * 1000:.1f} / {max(lat) * 1000:.0f} ms "
            f"({len(lat):,} scrapes, {sv['evaluations_in_window']} evaluations)",
        )
    )
    if "churn_scrape" in sv:
        lat = sv["churn_scrape"]
        rows.append(
            (
                f"/metrics latency, {SCRAPERS} scrapers, during the churn below: p50 / p99 / max",
                f"{pct(lat, 0.5) * 1000:.1f} / {pct(lat, 0.99) * 1000:.1f} / {max(lat) * 1000:.0f} ms "
                f"({len(lat):,} scrapes)",
            )
        )
    win = sv["window"] + sv["churn_window"]
    rows.append(
        (
            "event-loop stall after sync: longest; seconds with one > 25 ms / > 50 ms",
            f"{max(w['stall_ms'] for w in win):.0f} ms; {sum(w['stalls25'] > 0 for w in win)} / "
            f"{sum(w['stalls50'] > 0 for w in win)} of {len(win)} s",
        )
    )
    worst = [w for w in win if w["stall_ms"] > 25]
    if worst and "stall_cpu_wait_ms" in worst[0]:
        rows.append(
            (
                "those stalls > 25 ms, each: ms / of it the loop's thread waiting for a CPU / on a CPU",
                "; ".join(
                    f"{w['stall_ms']:.0f} / {w['stall_cpu_wait_ms']:.0f} / {w['stall_on_cpu_ms']:.0f}"
                    for w in sorted(worst, key=lambda w: -w["stall_ms"])[:8]
                ),
            )
        )
    rows.append(
        (
            "GC after sync: full collections, longest pause",
            f"{sum(w['gc_full'] for w in win)}, {max(w['gc_max_ms'] for w in win):.0f} ms over {len(win)} s",
        )
    )
    if "churn_cores" in sv:
        rows.append(
            (
                "serve's CPU: start to ready; during the churn, on average",
                f"{sv['ready_cpu_s']:.1f} s; {sv['churn_cores']:.2f} cores",
            )
        )
    if "throttling" in sv:
        th = sv["throttling"]
        rows.append(
            (
                f"CPU limit {args.cpu_limit}m (CFS quota): periods throttled, time throttled, start to end",
                f"{th['throttled']:.0f} of {th['periods']:.0f}, {th['s']:.1f} s",
            )
        )
    churn = sv["churn_rss"]
    rows.append(("RSS at ready / after 5 evaluations", f"{sv['rss_ready']:.0f} / {sv['rss_5_evaluations']:.0f} MiB"))
    # The halfway point tells growth that levels off from growth that goes on (a leak).
    tenth, half = (churn[len(churn) // min(len(churn), d)] for d in (10, 2)) if churn else (float("nan"),) * 2
    rows.append(
        (
            f"RSS over {args.churn_seconds:.0f} s of {args.churn_rate:g} events/s churn: first s / "
            f"at 10 % / at 50 % / last s (max)",
            f"{churn[0]:.0f} / {tenth:.0f} / {half:.0f} / {churn[-1]:.0f} ({max(churn):.0f}) MiB, "
            f"{sv['churn_events']:,} events",
        )
    )
    steady = sv["steady_requests"]
    lists = steady.get("list", {})
    rows.append(("LIST requests at first sync", f"{sv['initial_lists']}"))
    rows.append(
        (
            f"LIST requests in {sv['steady_seconds']:.0f} s of steady state (pages)",
            ", ".join(f"{p}: {n}" for p, n in sorted(lists.items())) or "0",
        )
    )
    rows.append(("WATCH requests in the same window", f"{sum(steady.get('watch', {}).values())}"))
    head = (
        f"tier {tier.name}: {tier.nodes} nodes, {tier.vms:,} VMs + VMIs, {2 * tier.vms:,} PVCs, "
        f"{tier.vms:,} DataVolumes; Python {platform.python_version()}, {os.cpu_count()} cores; "
        f"serve's GIL switch interval {args.switch_interval or _serve_switch_interval()} s"
        f"{', evaluation in a child process' if args.evaluate_in_child else ''}"
        f"{f', serve under a CPU limit of {args.cpu_limit}m' if args.cpu_limit else ''}"
    )
    lines = [head, "", "| measure | value |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tier", choices=TIERS, default="XL")
    parser.add_argument("--quick", action="store_true", help="one repetition, short windows")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--scrape-seconds", type=float, default=30.0)
    parser.add_argument("--churn-seconds", type=float, default=60.0, help="churn duration (600 for the 10-minute run)")
    parser.add_argument("--churn-rate", type=float, default=100.0)
    parser.add_argument(
        "--interval", type=float, default=1.0, help="serve's --interval (1 s: evaluations back to back)"
    )
    parser.add_argument("--switch-interval", type=float, help="GIL switch interval for serve (seconds)")
    parser.add_argument(
        "--evaluate-in-child",
        action="store_true",
        help="serve evaluates in a forked child (the prototype compared with GIL tuning)",
    )
    parser.add_argument(
        "--stall-trace",
        type=float,
        metavar="MS",
        help="note where serve's threads are when its event loop has not come round for MS, "
        "or a tracer thread wakes MS late (in --json's windows)",
    )
    parser.add_argument(
        "--cpu-limit",
        type=int,
        metavar="MILLICORES",
        help="run serve under a CFS quota, as the Deployment's CPU limit (a cgroup; needs root)",
    )
    parser.add_argument("--skip-yardsticks", action="store_true")
    parser.add_argument("--json", help="also write every raw figure here")
    plan = parser.add_mutually_exclusive_group()
    plan.add_argument("--no-plan", action="store_true", help="skip the rebalance-plan section (tests/benchplan.py)")
    plan.add_argument("--plan", action="store_true", help="the rebalance-plan section only")
    parser.add_argument(
        "--plan-proven",
        type=int,
        default=50,
        help="seeded clusters of the plan section until this many optima are proven",
    )
    args = parser.parse_args()
    if args.plan:
        plan_section(args)
        return
    if args.quick:
        args.repeat, args.scrape_seconds, args.churn_seconds = 1, 10.0, 15.0
    with tempfile.TemporaryDirectory() as tmp:
        kubeconfig = str(Path(tmp) / "kubeconfig")
        api = Child([PY, "-m", "tests.benchapi", "--tier", args.tier, "--kubeconfig", kubeconfig], stdin=True)
        try:
            api_ready = api.wait_line(lambda line: "url" in line)
            print(f"fake API server ready: {api_ready['objects']:,} objects", file=sys.stderr)
            ys = (
                {"transport": [measure("transport", kubeconfig)]}
                if args.skip_yardsticks
                else yardsticks(kubeconfig, args.repeat)
            )
            if args.skip_yardsticks:
                ys |= {n: [measure(n, kubeconfig)] for n in ("msgspec", "kubernetes", "sync")}
            print("yardsticks done", file=sys.stderr)
            ev = measure("evaluate", kubeconfig, str(args.repeat))
            print("evaluation done", file=sys.stderr)
            sv = serve_phase(kubeconfig, api, args)
        finally:
            api.stop()
    if args.json:
        Path(args.json).write_text(json.dumps({"yardsticks": ys, "evaluate": ev, "serve": sv}, indent=1))
    print(table(args, api_ready, ys, ev, sv))
    if not args.no_plan:
        plan_section(args)


def plan_section(args: argparse.Namespace) -> None:
    """The rebalance planner against the exact optimum, its lower bound and the descheduler,
    and its time on the tier, then its plans under pod anti-affinity (tests/benchplan.py), each
    in a fresh process."""
    extra = ["--proven", str(args.plan_proven), "--tier", args.tier]
    if args.json:
        extra += ["--json", str(Path(args.json).with_suffix(".plan.json"))]
    print()
    sys.stdout.flush()
    subprocess.run([PY, "-m", "tests.benchplan", *extra], check=True)
    print()
    sys.stdout.flush()
    subprocess.run([PY, "-m", "tests.benchplan", "--pod-pairs"], check=True)


if __name__ == "__main__":
    main()

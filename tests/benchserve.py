"""`ov-exporter serve` as it runs in production, with probes, for `make bench`:

    python -m tests.benchserve [--switch-interval S] [--evaluate-in-child] -- SERVE ARGS...

Once a second it prints one JSON line: the event loop's longest stall in that second
(how late a 5 ms timer fired) and how many stalls passed 25 and 50 ms, RSS, the
collections of the cyclic GC and their longest pause, evaluations done, whether the
first sync is done. `--switch-interval` sets sys.setswitchinterval (the GIL hand-over
interval, 5 ms by default); `--stall-trace MS` adds a thread that wakes every millisecond
and, when it wakes MS or more late, notes where every other thread is (its innermost
frames, and the CPU time the process used meanwhile; the line it prints that second
carries them as "late"): a thread that held the GIL
in one C call, or a lock the loop waits on, shows as the frame it is in right after;
`--evaluate-in-child` runs each evaluation and render in a
forked child that sends /metrics back (a prototype, to compare: the child's updates to
remembered judgements are lost).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import pickle
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ov_exporter import cli
from ov_exporter.server import Exporter, Prepared

PROBE_SECONDS = 0.005
TRACE_FRAMES = 4


class StallTracer:
    """Notes where the threads are when this thread wakes `late_s` or more late (something
    held the GIL, or the system ran something else), and, sampled again every millisecond
    while it lasts, where the event loop's thread is when the loop has not come round for
    `late_s` (the probe's `beat`, at most its 5 ms sleep old when the loop is free): what the
    loop itself was busy with. A spell still going on when the probe takes the notes is
    printed as far as it went."""

    def __init__(self, late_s: float) -> None:
        self.late_s = late_s
        self.beat = time.perf_counter()  # set by the probe each time the loop comes round
        self.found: list[dict[str, Any]] = []
        threading.Thread(target=self._run, name="stall-tracer", daemon=True).start()

    def _run(self) -> None:
        me = threading.get_ident()
        busy: dict[str, Any] | None = None  # the loop's current busy spell
        while True:
            before, cpu_before = time.perf_counter(), time.process_time()
            time.sleep(0.001)
            now = time.perf_counter()
            late = now - before - 0.001
            if late >= self.late_s:
                # CPU the process used meanwhile: about `late` when a thread of ours held the
                # GIL, near 0 when the system ran something else.
                cpu = time.process_time() - cpu_before
                self.found.append(
                    {"t": time.time(), "late_ms": round(late * 1000, 1), "cpu_ms": round(cpu * 1000, 1), **_stacks(me)}
                )
            beat = self.beat
            if now - beat < self.late_s:
                busy = None
            elif busy is None or busy["beat"] != beat:
                busy = {"t": time.time(), "beat": beat, "loop_busy_ms": 0.0, "samples": []}
                self.found.append(busy)
            if busy is not None:
                busy["loop_busy_ms"] = round((now - beat) * 1000, 1)
                if len(busy["samples"]) < 40:
                    busy["samples"].append(_stacks(me)["threads"])

    def take(self) -> list[dict[str, Any]]:
        found, self.found = self.found, []
        return found


def _stacks(me: int) -> dict[str, Any]:
    names = {t.ident: t.name for t in threading.enumerate()}
    return {
        "threads": {
            names.get(ident, str(ident)): [
                f"{f.f_code.co_filename.rsplit('/', 2)[-1]}:{f.f_lineno} {f.f_code.co_name}"
                for f in _innermost(frame, TRACE_FRAMES)
            ]
            for ident, frame in sys._current_frames().items()
            if ident != me
        }
    }


def _innermost(frame: Any, n: int) -> list[Any]:
    out = []
    while frame is not None and len(out) < n:
        out.append(frame)
        frame = frame.f_back
    return out


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class GcPauses:
    def __init__(self) -> None:
        self.window: list[tuple[int, float]] = []
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.window.append((info["generation"], time.perf_counter() - self._start))


def _schedstat() -> tuple[int, int]:
    """This thread's time on a CPU and time runnable but waiting for one (ns, Linux's
    /proc/thread-self/schedstat); zeros where the kernel does not keep it."""
    try:
        with open("/proc/thread-self/schedstat", "rb") as f:
            on_cpu, waiting = f.read().split()[:2]
        return int(on_cpu), int(waiting)
    except (OSError, ValueError):
        return 0, 0


async def probe(exporter: Exporter, tracer: StallTracer | None = None) -> None:
    """Each second: the longest stall and, for it, how much of it the loop's thread spent
    waiting for a CPU (the system ran other processes: on a shared 2-core machine the fake
    API server and the scrapers) and how much on a CPU (the loop's own work); the rest it was
    off-CPU, e.g. waiting for the GIL or a lock."""
    pauses = GcPauses()
    gc.callbacks.append(pauses)
    loop = asyncio.get_running_loop()
    while True:
        window_end = loop.time() + 1.0
        stalls: list[float] = []
        longest = (-1.0, 0, 0)  # stall (s), its ns on a CPU, its ns waiting for one
        cpu_before, wait_before = _schedstat()
        while loop.time() < window_end:
            # The schedstat file is read outside the timed span: each read lets go of the GIL
            # three times (open, read, close), and while an evaluation runs, each takes the
            # loop up to a switch interval to get it back.
            before = loop.time()
            await asyncio.sleep(PROBE_SECONDS)
            stall = loop.time() - before - PROBE_SECONDS
            stalls.append(stall)
            cpu_after, wait_after = _schedstat()
            if stall > longest[0]:
                longest = (stall, cpu_after - cpu_before, wait_after - wait_before)
            cpu_before, wait_before = cpu_after, wait_after
            if tracer is not None:
                tracer.beat = time.perf_counter()
        collected, pauses.window = pauses.window, []
        print(
            json.dumps(
                {
                    "t": time.time(),
                    "stall_ms": longest[0] * 1000,
                    "stall_on_cpu_ms": longest[1] / 1e6,  # over the longest stall's sleep and stall
                    "stall_cpu_wait_ms": longest[2] / 1e6,
                    "stalls25": sum(s > 0.025 for s in stalls),
                    "stalls50": sum(s > 0.050 for s in stalls),
                    "rss_mib": rss_mib(),
                    "gc": len(collected),
                    "gc_full": sum(g == 2 for g, _ in collected),
                    "gc_max_ms": max((s for _, s in collected), default=0.0) * 1000,
                    "evaluations": exporter.history.evaluations,
                    "synced": exporter.store.synced,
                    "ready": exporter.prepared is not None,
                    "objects": sum(exporter.store.counts().values()),
                    **({"late": tracer.take()} if tracer is not None else {}),
                }
            ),
            flush=True,
        )


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


async def evaluate_in_child(self: Exporter) -> Prepared:
    """The prototype: fork, evaluate and render in the child, send the evaluation and the
    payload back pickled; the parent only unpickles them."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read_fd)
        try:
            prepared = self._evaluate_and_render()
            data = pickle.dumps((prepared.evaluation, prepared.payload), protocol=pickle.HIGHEST_PROTOCOL)
            view = memoryview(data)
            while view:
                view = view[os.write(write_fd, view) :]
        finally:
            os._exit(0)
    os.close(write_fd)
    data = await asyncio.to_thread(_read_all, read_fd)
    await asyncio.to_thread(os.waitpid, pid, 0)
    evaluation, payload = await asyncio.to_thread(pickle.loads, data)
    self.history.record(evaluation)
    self.prepared = Prepared(evaluation, payload, self.source.describe(), len(self.store.problems), self.blind())
    self._evaluated.set()
    return self.prepared


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.benchserve")
    parser.add_argument("--switch-interval", type=float)
    parser.add_argument("--evaluate-in-child", action="store_true")
    parser.add_argument("--stall-trace", type=float, metavar="MS")
    parser.add_argument("serve", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    if args.evaluate_in_child:
        Exporter.evaluate_once = evaluate_in_child  # type: ignore[method-assign]
    start = Exporter.start

    async def start_with_probe(self: Exporter) -> None:
        await start(self)
        if args.switch_interval:  # after start(), which sets the exporter's own
            sys.setswitchinterval(args.switch_interval)
        tracer = StallTracer(args.stall_trace / 1000) if args.stall_trace else None
        self._tasks.append(asyncio.create_task(probe(self, tracer), name="probe"))

    Exporter.start = start_with_probe  # type: ignore[method-assign]
    serve_args: list[Any] = [a for a in args.serve if a != "--"]
    sys.exit(cli.main(["serve", *serve_args]))


if __name__ == "__main__":
    main()

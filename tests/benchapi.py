"""The fake API server for `make bench`, in its own process, with a synthetic tier loaded
and LIST answers pre-serialised (cached per query until the resource changes), so its
CPU stays out of what the benchmark measures.

    python -m tests.benchapi --tier XL --kubeconfig FILE

Prints one JSON line when ready ({"url", "objects"}), then reads commands on stdin, one
a line, and answers each with one JSON line:
    churn RATE     change objects at RATE events/s (VMIs and VMs modified; every tenth
                   event deletes a VMI or brings a deleted one back); 0 stops
    drop           drops every open watch stream abruptly
    expire KIND    the next watch of KIND (a resource name) gets 410 Gone
    requests       LIST and WATCH requests by resource since the last `requests`
    quit
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import random
import sys
from typing import Any

from aiohttp import web

from .benchgen import TIERS, Tier, cluster, vm, vmi
from .fakeapi.server import JSON, FakeAPIServer, ResourceType


class PreserialisedAPIServer(FakeAPIServer):
    """LIST bodies cached per (resource, version, namespace, query) until the resource changes."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._bodies: dict[tuple, tuple[tuple[int, int], bytes]] = {}

    def _list(self, rt: ResourceType, version: str, ns: str | None, q: Any) -> web.Response:
        stamp = (rt.log[-1].rv if rt.log else 0, rt.compacted)
        key = (rt.key, version, ns, tuple(sorted(q.items())))
        cached = self._bodies.get(key)
        if cached is not None and cached[0] == stamp:
            return web.Response(body=cached[1], content_type=JSON)
        response = super()._list(rt, version, ns, q)
        assert isinstance(response.body, bytes)
        self._bodies[key] = (stamp, response.body)
        return response


class Churn:
    """Changes VMIs and VMs at a rate; a tenth of the events delete a VMI or restore one."""

    def __init__(self, server: FakeAPIServer, tier: Tier) -> None:
        self.server, self.tier = server, tier
        self.rate = 0.0
        self.events = 0
        self.deleted: collections.deque[int] = collections.deque()
        self.generation = 1
        self._task: asyncio.Task | None = None

    def set_rate(self, rate: float) -> None:
        self.rate = rate
        if rate and self._task is None:
            self._task = asyncio.create_task(self._run())

    def step(self) -> None:
        rng = random.Random(self.events)
        v = rng.randrange(self.tier.vms)
        self.events += 1
        if self.events % 10 == 0:
            if self.deleted and (len(self.deleted) > 50 or self.events % 20 == 0):
                self.server.add(vmi(self.tier, self.deleted.popleft(), self.generation))
            elif v not in self.deleted:
                self.server.delete(
                    "kubevirt.io/v1", "VirtualMachineInstance", f"tenant-{v % self.tier.namespaces:03d}", f"vm-{v:05d}"
                )
                self.deleted.append(v)
            return
        self.generation += 1
        if v in self.deleted:
            return
        make = vmi if self.events % 2 else vm
        self.server.modify(make(self.tier, v, self.generation))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        started, done = loop.time(), 0
        while True:
            if not self.rate:
                await asyncio.sleep(0.1)
                started, done = loop.time(), 0
                continue
            due = int((loop.time() - started) * self.rate)
            for _ in range(due - done):
                self.step()
            done = due
            await asyncio.sleep(0.01)


def _requests(server: FakeAPIServer, since: int) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for record in server.requests[since:]:
        verb = "watch" if record.query.get("watch") in ("true", "1") else "list"
        if record.method != "GET" or "/api" not in record.path:
            continue
        counts.setdefault(verb, {})
        counts[verb][record.path] = counts[verb].get(record.path, 0) + 1
    return counts


async def serve(args: argparse.Namespace) -> None:
    tier = TIERS[args.tier]
    server = PreserialisedAPIServer(bookmark_interval=60.0)
    count = 0
    for obj in cluster(tier):
        server.add(obj)
        count += 1
    url = await server.start("127.0.0.1", 0)
    server.write_kubeconfig(args.kubeconfig)
    churn = Churn(server, tier)
    print(json.dumps({"url": url, "objects": count}), flush=True)
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    seen = 0
    try:
        while line := (await reader.readline()).decode().split():
            answer: dict[str, Any] = {"ok": True}
            if line[0] == "churn":
                churn.set_rate(float(line[1]))
                answer["events"] = churn.events
            elif line[0] == "drop":
                answer["dropped"] = server.drop_watches()
            elif line[0] == "expire":
                server.expire(line[1])
            elif line[0] == "requests":
                answer["requests"] = _requests(server, seen)
                answer["events"] = churn.events
                seen = len(server.requests)
            elif line[0] == "quit":
                break
            print(json.dumps(answer), flush=True)
    finally:
        await server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.benchapi")
    parser.add_argument("--tier", choices=TIERS, default="XL")
    parser.add_argument("--kubeconfig", required=True)
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()

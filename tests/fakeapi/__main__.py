"""python -m tests.fakeapi --snapshot DIR --port N [--kubeconfig OUT] [--token T]"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from .server import FakeAPIServer


async def serve(args: argparse.Namespace) -> None:
    server = FakeAPIServer(token=args.token, bookmark_interval=args.bookmark_interval, tls=args.tls)
    if args.snapshot:
        count = server.load_snapshot(args.snapshot)
        print(f"loaded {count} objects from {args.snapshot}", file=sys.stderr, flush=True)
    url = await server.start(args.host, args.port)
    if args.kubeconfig:
        server.write_kubeconfig(args.kubeconfig, token=args.token)
        print(f"kubeconfig written to {args.kubeconfig}", file=sys.stderr, flush=True)
    print(url, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fakeapi", description=__doc__)
    parser.add_argument("--snapshot", help="directory of *.yaml/*.json objects to serve")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--kubeconfig", help="write a kubeconfig for this server here")
    parser.add_argument("--token", help="require this bearer token")
    parser.add_argument(
        "--tls",
        action="store_true",
        help="serve https with a self-signed certificate (kubectl sends tokens only over TLS)",
    )
    parser.add_argument("--bookmark-interval", type=float, default=60.0)
    args = parser.parse_args(argv)
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())

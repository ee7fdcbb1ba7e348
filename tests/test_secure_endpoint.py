"""`serve --tls-cert-file/--tls-key-file --auth kubernetes` over real HTTPS.

The exporter runs as a process (`python -m ov_exporter serve`), its live source and its
TokenReviews/SubjectAccessReviews against the fake API server; certificates come from a
CA the test makes with the openssl command.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from .conftest import free_port, require_binary
from .fakeapi.server import FakeAPIServer
from .test_live import cluster

SCRAPER = "system:serviceaccount:ov-exporter:ov-exporter-scraper"
SCRAPER_GROUPS = ["system:serviceaccounts", "system:serviceaccounts:ov-exporter", "system:authenticated"]


# ---------------------------------------------------------------- certificates


def _openssl(*args: str) -> None:
    subprocess.run([require_binary("openssl"), *args], check=True, capture_output=True)


def make_ca(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        str(directory / "ca.key"),
        "-out",
        str(directory / "ca.crt"),
        "-days",
        "2",
        "-subj",
        "/CN=ov-exporter test CA",
    )
    return directory / "ca.crt"


def make_pair(ca_dir: Path, out: Path, serial: int) -> tuple[Path, Path]:
    """A server certificate for 127.0.0.1 with this serial number, signed by the CA."""
    out.mkdir(parents=True, exist_ok=True)
    cert, key, csr, ext = out / "tls.crt", out / "tls.key", out / "tls.csr", out / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl(
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        str(key),
        "-out",
        str(csr),
        "-subj",
        "/CN=ov-exporter",
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca_dir / "ca.crt"),
        "-CAkey",
        str(ca_dir / "ca.key"),
        "-set_serial",
        str(serial),
        "-days",
        "2",
        "-out",
        str(cert),
        "-extfile",
        str(ext),
    )
    csr.unlink()
    ext.unlink()
    return cert, key


def served_certificate(port: int, cafile: Path) -> tuple[str, str]:
    """(serial number in hex, TLS version) of a new TLS connection, verified against the CA."""
    ctx = ssl.create_default_context(cafile=str(cafile))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        with ctx.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
            return tls.getpeercert()["serialNumber"], tls.version() or ""


# ---------------------------------------------------------------- the exporter process


class Served:
    def __init__(self, proc: subprocess.Popen, port: int, log: Path, cafile: Path) -> None:
        self.proc, self.port, self.log, self.cafile = proc, port, log, cafile
        self.url = f"https://127.0.0.1:{port}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


async def start_exporter(tmp_path: Path, cafile: Path, *args: str) -> Served:
    port = free_port()
    log = tmp_path / f"exporter-{port}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ov_exporter", "serve", "--listen", f"127.0.0.1:{port}", "--interval", "0.3", *args],
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    served = Served(proc, port, log, cafile)
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ssl(cafile))) as session:
        while True:
            assert proc.poll() is None, f"the exporter exited: {served.log_text()}"
            assert time.monotonic() < deadline, f"the exporter never answered /healthz: {served.log_text()}"
            try:
                async with session.get(f"{served.url}/healthz") as resp:
                    if resp.status == 200:
                        return served
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)


def stop_exporter(served: Served) -> None:
    served.proc.terminate()
    try:
        served.proc.wait(10)
    except subprocess.TimeoutExpired:
        served.proc.kill()
        served.proc.wait()


def client_ssl(cafile: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cafile))


async def eventually(predicate, what: str, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


# ---------------------------------------------------------------- authorisation


@pytest.fixture
async def api():
    server = FakeAPIServer(token="exporter-own-token", bookmark_interval=0.2)
    for obj in cluster():
        server.add(copy.deepcopy(obj))
    server.add_user(
        "scraper-token",
        SCRAPER,
        SCRAPER_GROUPS,
        uid="6f1c2a9e-0b7d-4d7a-9a51-3c2f5e1d8b40",
        extra={"authentication.kubernetes.io/pod-name": ["prometheus-user-workload-0"]},
    )
    server.add_user("alice-token", "alice", ["system:authenticated"])
    server.add_user(
        "other-scraper-token",
        "system:serviceaccount:monitoring:prometheus-k8s",
        ["system:serviceaccounts", "system:authenticated"],
    )
    server.allow("/metrics", "get", user=SCRAPER)
    server.allow("/metrics", "get", user="system:serviceaccount:monitoring:prometheus-k8s")
    server.allow("/healthz", "get", user="alice")  # a rule for another URL does not grant /metrics
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def secured(api, tmp_path):
    ca_dir = tmp_path / "ca"
    cafile = make_ca(ca_dir)
    cert, key = make_pair(ca_dir, tmp_path / "tls", 0x1001)
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig", token="exporter-own-token")
    served = await start_exporter(
        tmp_path,
        cafile,
        "--kubeconfig",
        str(kubeconfig),
        "--tls-cert-file",
        str(cert),
        "--tls-key-file",
        str(key),
        "--auth",
        "kubernetes",
    )
    try:
        yield served
    finally:
        stop_exporter(served)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_tokens_are_reviewed_and_access_is_checked_for_get_metrics(api, secured):
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ssl(secured.cafile))) as session:

        async def get(path: str, headers: dict[str, str] | None = None) -> tuple[int, str, dict]:
            async with session.get(f"{secured.url}{path}", headers=headers or {}) as resp:
                return resp.status, await resp.text(), dict(resp.headers)

        # Open routes: no token, no review.
        assert (await get("/healthz"))[0] == 200
        assert (await get("/runbooks/rwo_vm_disks.md"))[0] == 200
        status, body, _ = await get("/runbooks/..%2Fmetrics")
        assert status == 404 and "ov_check_up" not in body
        await eventually(lambda: _status_is(get("/readyz"), 200), "/readyz 200 without a token")
        assert api.token_reviews == [] and api.access_reviews == []

        # Every route with cluster data: 401 without a token or with one the API server does not know.
        for path in ("/metrics", "/", "/findings.json"):
            status, body, headers = await get(path)
            assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer"), (path, status, body)
            assert "vm-00" not in body
        assert (await get("/metrics", {"Authorization": "Basic c2NyYXBlcjp4"}))[0] == 401
        status, body, _ = await get("/metrics", bearer("forged-token"))
        assert status == 401 and "not authenticated" in body
        assert [r["spec"]["token"] for r in api.token_reviews] == ["forged-token"]
        assert api.access_reviews == []  # no user: no access review

        # Authenticated, but no RBAC rule for get /metrics: 403 naming the user.
        status, body, _ = await get("/findings.json", bearer("alice-token"))
        assert status == 403 and "alice" in body and "vm-00" not in body
        assert (await get("/", bearer("alice-token")))[0] == 403
        assert "refused alice: may not get the non-resource URL /metrics" in secured.log_text()

        # Allowed: the metrics themselves.
        status, body, _ = await get("/metrics", bearer("scraper-token"))
        assert status == 200
        assert 'ov_source_kind_state{kind="VirtualMachine",state="synced"} 1.0' in body
        assert (
            'ov_rwo_vm_disks{eviction_strategy="LiveMigrate",namespace="team-0",node="rhel-1",vm="vm-00"} 1.0' in body
        )
        status, body, _ = await get("/findings.json", bearer("scraper-token"))
        assert status == 200 and any(f["object"]["name"] == "vm-00" for f in json.loads(body)["findings"]), body[:300]

        # The access review asked for get on the non-resource URL /metrics for exactly the reviewed user.
        review = next(r for r in api.access_reviews if r["spec"]["user"] == SCRAPER)
        assert review["apiVersion"] == "authorization.k8s.io/v1"
        assert review["spec"]["nonResourceAttributes"] == {"path": "/metrics", "verb": "get"}
        assert review["spec"]["groups"] == SCRAPER_GROUPS
        assert review["spec"]["uid"] == "6f1c2a9e-0b7d-4d7a-9a51-3c2f5e1d8b40"
        assert review["spec"]["extra"] == {"authentication.kubernetes.io/pod-name": ["prometheus-user-workload-0"]}
        assert "resourceAttributes" not in review["spec"]

        # Within the cache time, neither the allowed token nor the denied one is reviewed again.
        reviews = (len(api.token_reviews), len(api.access_reviews))
        for _ in range(3):
            assert (await get("/metrics", bearer("scraper-token")))[0] == 200
            assert (await get("/", bearer("scraper-token")))[0] == 200
            assert (await get("/metrics", bearer("alice-token")))[0] == 403
        assert (len(api.token_reviews), len(api.access_reviews)) == reviews

        # The API server refuses the exporter's reviews (no system:auth-delegator): 503, never 200,
        # and the log says why. A token allowed before is still served from the cache.
        api.refuse_reviews(403)
        status, body, _ = await get("/metrics", bearer("other-scraper-token"))
        assert status == 503 and "system:auth-delegator" in body
        assert "system:auth-delegator" in secured.log_text()
        assert (await get("/metrics", bearer("scraper-token")))[0] == 200
        # Unreachable: 503 as well; once it is back, the same token is allowed (errors are not cached).
        await api.outage()
        status, body, _ = await get("/metrics", bearer("other-scraper-token"))
        assert status == 503 and "cannot reach the API server" in body, body
        api.refuse_reviews(None)
        await api.restore()
        assert (await get("/metrics", bearer("other-scraper-token")))[0] == 200

        # The results are counted (as of the next evaluation).
        def counted(body: str) -> dict[str, float]:
            return {
                line.split('"')[1]: float(line.rsplit(" ", 1)[1])
                for line in body.splitlines()
                if line.startswith("ov_http_auth_requests_total{")
            }

        async def counts_caught_up():
            status, body, _ = await get("/metrics", bearer("scraper-token"))
            c = counted(body)
            # Both the errors and the allowed request after them are in the payload: an
            # evaluation between the two once rendered error 2 with allowed 9.
            return c if status == 200 and c.get("error") == 2 and c.get("allowed", 0) >= 10 else None

        counts = await eventually(counts_caught_up, "ov_http_auth_requests_total to count the requests")
        assert counts["unauthenticated"] == 5 and counts["denied"] == 5
        assert counts["allowed"] >= 10


async def _status_is(request, status: int) -> bool:
    return (await request)[0] == status


async def test_prometheus_scrapes_over_https_with_a_bearer_token(secured, tmp_path):
    """A real Prometheus: scheme https, the test CA, the token from a file. A job whose
    token is not authenticated and one whose user may not get /metrics are down with
    the status in the target's lastError."""
    binary = require_binary("prometheus")
    jobs = {"allowed": "scraper-token", "forged": "forged-token", "refused": "alice-token"}
    scrape_configs = []
    for job, token in jobs.items():
        (tmp_path / f"{job}.token").write_text(token + "\n")
        scrape_configs.append(
            {
                "job_name": job,
                "scheme": "https",
                "static_configs": [{"targets": [f"127.0.0.1:{secured.port}"]}],
                "tls_config": {"ca_file": str(secured.cafile)},
                "authorization": {"type": "Bearer", "credentials_file": str(tmp_path / f"{job}.token")},
            }
        )
    config = tmp_path / "prometheus.yml"
    config.write_text(json.dumps({"global": {"scrape_interval": "1s"}, "scrape_configs": scrape_configs}))
    port = free_port()
    log = tmp_path / "prometheus.log"
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'prom-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        async with aiohttp.ClientSession() as session:

            async def targets():
                try:
                    async with session.get(f"http://127.0.0.1:{port}/api/v1/targets") as resp:
                        active = (await resp.json())["data"]["activeTargets"]
                except (aiohttp.ClientError, ValueError, KeyError):
                    return None
                by_job = {t["labels"]["job"]: t for t in active}
                return by_job if len(by_job) == 3 and all(t["health"] != "unknown" for t in by_job.values()) else None

            by_job = await eventually(targets, "Prometheus to scrape every job", timeout=30)
            assert by_job["allowed"]["health"] == "up", by_job["allowed"]["lastError"]
            assert by_job["forged"]["health"] == "down" and "401" in by_job["forged"]["lastError"]
            assert by_job["refused"]["health"] == "down" and "403" in by_job["refused"]["lastError"]

            async def scraped():
                query = 'ov_source_kind_state{job="allowed",kind="VirtualMachine",state="synced"}'
                async with session.get(f"http://127.0.0.1:{port}/api/v1/query", params={"query": query}) as resp:
                    result = (await resp.json())["data"]["result"]
                return result and result[0]["value"][1] == "1"

            await eventually(scraped, "the exporter's series in Prometheus")
    finally:
        proc.terminate()
        proc.wait(20)


# ---------------------------------------------------------------- certificate rotation


def _swap_secret_volume(tls_dir: Path, new_version: Path) -> None:
    """What the kubelet does when a Secret changes: a new timestamped directory, and the
    `..data` symlink replaced atomically; tls.crt -> ..data/tls.crt never changes."""
    tmp = tls_dir / "..data_tmp"
    tmp.symlink_to(new_version.name)
    os.replace(tmp, tls_dir / "..data")


def _replace_files(tls_dir: Path, new_version: Path) -> None:
    """A cert-manager-like writer: each file replaced atomically by a rename."""
    for name in ("tls.crt", "tls.key"):
        tmp = tls_dir / f".{name}.tmp"
        tmp.write_bytes((new_version / name).read_bytes())
        os.replace(tmp, tls_dir / name)


@pytest.mark.parametrize("layout", ["secret-volume", "files"])
async def test_rotated_certificate_is_served_without_restart(tmp_path, layout):
    ca_dir = tmp_path / "ca"
    cafile = make_ca(ca_dir)
    tls_dir = tmp_path / "tls"
    tls_dir.mkdir()
    versions = [
        make_pair(ca_dir, tls_dir / f"..2026_12_04_{serial:x}", serial)[0].parent for serial in (0x1001, 0x1002)
    ]
    # A third version whose key belongs to another certificate: it must not be taken.
    broken = tls_dir / "..2026_12_04_broken"
    make_pair(ca_dir, broken, 0x1003)
    (broken / "tls.key").write_bytes((versions[0] / "tls.key").read_bytes())
    if layout == "secret-volume":
        (tls_dir / "..data").symlink_to(versions[0].name)
        for name in ("tls.crt", "tls.key"):
            (tls_dir / name).symlink_to(f"..data/{name}")
        rotate = _swap_secret_volume
    else:
        _replace_files(tls_dir, versions[0])
        rotate = _replace_files

    served = await start_exporter(
        tmp_path,
        cafile,
        "--demo",
        "--tls-cert-file",
        str(tls_dir / "tls.crt"),
        "--tls-key-file",
        str(tls_dir / "tls.key"),
    )
    try:
        serial, version = await asyncio.to_thread(served_certificate, served.port, cafile)
        assert serial == "1001" and version in ("TLSv1.2", "TLSv1.3")
        pid = served.proc.pid

        rotate(tls_dir, versions[1])

        async def serial_is(expected: str):
            return (await asyncio.to_thread(served_certificate, served.port, cafile))[0] == expected

        await eventually(lambda: serial_is("1002"), "the rotated certificate on a new connection")
        assert served.proc.poll() is None and served.proc.pid == pid
        assert "loaded again" in served.log_text()

        logged = len(served.log_text())
        rotate(tls_dir, broken)

        async def complained():
            return "cannot be loaded" in served.log_text()[logged:] or not await serial_is("1002")

        await eventually(complained, "the broken pair to be noticed")
        assert await serial_is("1002"), "a certificate whose key does not match was taken"
        complaint = next(line for line in served.log_text()[logged:].splitlines() if "cannot be loaded" in line)
        assert str(tls_dir / "tls.crt") in complaint and "ERROR" in complaint
        assert "previous certificate" in complaint
    finally:
        stop_exporter(served)


# ---------------------------------------------------------------- flags


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ov_exporter", "serve", "--listen", f"127.0.0.1:{free_port()}", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_flag_errors_exit_2_naming_the_flag(tmp_path):
    ca_dir = tmp_path / "ca"
    make_ca(ca_dir)
    cert, key = make_pair(ca_dir, tmp_path / "tls", 7)
    half = _cli("--demo", "--tls-cert-file", str(cert))
    assert half.returncode == 2 and "--tls-cert-file and --tls-key-file go together" in half.stderr
    missing = _cli("--demo", "--tls-cert-file", str(tmp_path / "nope.crt"), "--tls-key-file", str(key))
    assert missing.returncode == 2 and str(tmp_path / "nope.crt") in missing.stderr, missing.stderr
    (tmp_path / "other.key").write_bytes(ca_dir.joinpath("ca.key").read_bytes())
    mismatch = _cli("--demo", "--tls-cert-file", str(cert), "--tls-key-file", str(tmp_path / "other.key"))
    assert mismatch.returncode == 2 and "cannot load the certificate and key" in mismatch.stderr, mismatch.stderr
    demo = _cli("--demo", "--auth", "kubernetes")
    assert demo.returncode == 2 and "--auth kubernetes" in demo.stderr and "--demo" in demo.stderr


# ---------------------------------------------------------------- the review cache


async def test_review_cache_expires_is_bounded_and_shares_concurrent_reviews(api, tmp_path):
    from ov_exporter.auth import KubernetesAuth
    from ov_exporter.sources.live import load_credentials

    credentials = load_credentials(str(api.write_kubeconfig(tmp_path / "kc", token="exporter-own-token")), None)
    auth = KubernetesAuth(credentials, cache_seconds=2.0, denial_seconds=0.5, max_entries=2)
    try:
        decisions = await asyncio.gather(*(auth.decide("scraper-token") for _ in range(5)))
        assert {d.result for d in decisions} == {"allowed"} and len(api.token_reviews) == 1
        assert (await auth.decide("alice-token")).result == "denied"
        assert len(api.token_reviews) == 2
        await asyncio.sleep(0.8)  # past the denial time, within the allowed one
        assert (await auth.decide("scraper-token")).result == "allowed"
        assert (await auth.decide("alice-token")).result == "denied"
        assert [r["spec"]["token"] for r in api.token_reviews[2:]] == ["alice-token"]
        await asyncio.sleep(1.5)  # past the allowed time
        assert (await auth.decide("scraper-token")).result == "allowed"
        assert len(api.token_reviews) == 4
        # At most max_entries tokens are kept: two new ones push out the scraper's, still
        # within its time, so it is reviewed again.
        assert (await auth.decide("forged-token")).result == "unauthenticated"
        assert (await auth.decide("other-scraper-token")).result == "allowed"
        assert len(api.token_reviews) == 6
        assert (await auth.decide("scraper-token")).result == "allowed"
        assert [r["spec"]["token"] for r in api.token_reviews[6:]] == ["scraper-token"]
    finally:
        await auth.close()

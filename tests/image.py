"""Builds the container image with podman, from a local stand-in for the production base.

No image registry is reachable where the tests run, so the Dockerfile's UBI base is
replaced (build argument BASE_IMAGE) by localhost/ov-python-base: Debian bookworm's
python3.11 made with debootstrap, without Debian's EXTERNALLY-MANAGED marker so pip
behaves as in the official Python images. The root filesystem tarball is cached in
build/ (one debootstrap per machine, about a minute and a half).

podman here: Debian's podman 4.3 with runc (crun fails on these machines), the cgroupfs
manager, no default ulimits (explicit ones instead) and the host network.

    python -m tests.image build     what `make image` runs; prints the tag
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
BASE_IMAGE = "localhost/ov-python-base:bookworm"
BASE_TARBALL = BUILD / "ov-python-base.tar"
CONTAINERS_CONF = BUILD / "containers.conf"
IMAGE_REPO = "localhost/ov-exporter"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
# The tools the image build and test run, and the Debian packages providing them (Makefile SYSTEM_DEPS).
TOOLS = {"podman": "podman", "runc": "runc", "debootstrap": "debootstrap"}
RUN_FLAGS = ["--runtime", "runc", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]


class ImageError(RuntimeError):
    pass


def version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def image_tag() -> str:
    return f"{IMAGE_REPO}:{version()}"


def missing_tools() -> list[str]:
    return [
        f"{tool} (Debian package {pkg}; `make system-deps` installs it)"
        for tool, pkg in TOOLS.items()
        if shutil.which(tool) is None
    ]


def env() -> dict[str, str]:
    BUILD.mkdir(exist_ok=True)
    CONTAINERS_CONF.write_text('[containers]\ndefault_ulimits = []\n\n[engine]\ncgroup_manager = "cgroupfs"\n')
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


def podman(*args: str, check: bool = True, timeout: float = 600, capture: bool = True) -> subprocess.CompletedProcess:
    cmd = ["podman", *args]
    proc = subprocess.run(
        cmd,
        env=env(),
        text=True,
        timeout=timeout,
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.PIPE if capture else None,
    )
    if check and proc.returncode != 0:
        raise ImageError(f"`{' '.join(cmd)}` exited {proc.returncode}:\n{proc.stdout or ''}{proc.stderr or ''}")
    return proc


def debian_mirror() -> str:
    """The Debian mirror apt uses on this machine (deb822 or one-line sources)."""
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in sources:
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            words = line.split()
            if line.startswith("URIs:") and len(words) > 1 and words[1].rstrip("/").endswith("/debian"):
                return words[1]
            if len(words) > 2 and words[0] == "deb" and words[2] == "bookworm":
                return words[1]
    raise ImageError(f"no Debian bookworm mirror found in {', '.join(map(str, sources))}")


def ensure_base() -> None:
    """localhost/ov-python-base in podman's store, from the cached tarball, debootstrap if none."""
    if podman("image", "exists", BASE_IMAGE, check=False).returncode == 0:
        return
    if not BASE_TARBALL.exists():
        rootfs = BUILD / "base-rootfs"
        shutil.rmtree(rootfs, ignore_errors=True)
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=python3,python3-venv,python3-pip",
                "bookworm",
                str(rootfs),
                debian_mirror(),
            ],
            check=True,
            capture_output=True,
            timeout=900,
        )
        for marker in rootfs.glob("usr/lib/python3*/EXTERNALLY-MANAGED"):
            marker.unlink()
        for pattern in ("var/cache/apt/*.bin", "var/cache/apt/archives/*.deb", "var/lib/apt/lists/*_Packages"):
            for path in rootfs.glob(pattern):
                path.unlink()
        partial = BASE_TARBALL.with_suffix(".partial")
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(partial), "."], check=True)
        partial.rename(BASE_TARBALL)
        shutil.rmtree(rootfs)
    podman("import", str(BASE_TARBALL), BASE_IMAGE)


def _git(*args: str) -> str:
    proc = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def build(tag: str | None = None, *, quiet: bool = True) -> str:
    """Builds the Dockerfile on the stand-in base; returns the tag. pip inside the build
    reaches PyPI over the host network, with the host's CA bundle."""
    problems = missing_tools()
    if problems:
        raise ImageError("cannot build the image, missing: " + "; ".join(problems))
    ensure_base()
    tag = tag or image_tag()
    revision = _git("rev-parse", "HEAD") or "unknown"
    if _git("status", "--porcelain"):
        revision += "-dirty"
    podman(
        "build",
        *RUN_FLAGS,
        "--network=host",
        "--layers",
        "-f",
        str(ROOT / "Dockerfile"),
        "-v",
        f"{CA_BUNDLE}:{CA_BUNDLE}:ro",
        "--build-arg",
        f"BASE_IMAGE={BASE_IMAGE}",
        "--build-arg",
        f"VERSION={version()}",
        "--build-arg",
        f"REVISION={revision}",
        "--build-arg",
        f"SOURCE={_git('remote', 'get-url', 'origin')}",
        "-t",
        tag,
        str(ROOT),
        capture=quiet,
        timeout=900,
    )
    return tag


def main(argv: list[str]) -> int:
    if argv[1:] != ["build"]:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        print(build(quiet=False))
    except (ImageError, subprocess.CalledProcessError) as exc:
        print(f"image build failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

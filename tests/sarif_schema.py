"""The SARIF 2.1.0 JSON schema, for validating `check --output sarif`.

The schema is not committed (it belongs to the OASIS SARIF project). It is taken from
Microsoft's SARIF SDK as published on the npm registry (reachable where PyPI is):
the package tarball is downloaded once, checked against the registry's sha512
integrity, and only `package/sarif-2.1.0.json` is kept, checked by sha256.

    python -m tests.sarif_schema     # fetch into .venv/share/ (make test does this)
"""

from __future__ import annotations

import base64
import hashlib
import io
import sys
import tarfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / ".venv" / "share" / "sarif-2.1.0.json"
TARBALL = "https://registry.npmjs.org/@microsoft/sarif-multitool-linux/-/sarif-multitool-linux-5.7.0.tgz"
TARBALL_SHA512 = "NxUbpq6ISCWoTQ/NfOYEwEDKq1Heka/rMoJ5R5LMydcAZQX/X7g5mWHcgxDub+0M07LC96tZ5LZHvF1Qy3gjTA=="
MEMBER = "package/sarif-2.1.0.json"
SCHEMA_SHA256 = "1c49a0f2b60444c71bb14878e21e0d882198eff4c539861b133093ad89ed798c"


def fetch(target: Path = SCHEMA) -> Path:
    if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == SCHEMA_SHA256:
        return target
    with urllib.request.urlopen(TARBALL, timeout=300) as response:  # noqa: S310 - fixed https URL
        data = response.read()
    digest = base64.b64encode(hashlib.sha512(data).digest()).decode()
    if digest != TARBALL_SHA512:
        raise RuntimeError(f"{TARBALL}: sha512 {digest} does not match the pinned integrity")
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        member = tar.extractfile(MEMBER)
        if member is None:
            raise RuntimeError(f"{TARBALL}: no {MEMBER}")
        schema = member.read()
    if hashlib.sha256(schema).hexdigest() != SCHEMA_SHA256:
        raise RuntimeError(f"{MEMBER}: sha256 does not match the pinned schema")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(schema)
    return target


if __name__ == "__main__":
    print(fetch())
    sys.exit(0)

"""The check registry: every package here is one check, and this gathers them.

A check lives in `checks/<id>/`: `__init__.py` holds its pure evaluation and its
declaration (SPEC), `runbook.md` its runbook (served at /runbooks/<id>.md). Checks are
ordered by anti-pattern number, then id. A duplicate check id or metric family name
fails at import, not at scrape time.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import replace

from ..model import CheckSpec

RUNBOOK_FILE = "runbook.md"  # package data: ov_exporter/checks/<id>/runbook.md, served at /runbooks/<id>.md


def _modules() -> list:
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
    modules = [importlib.import_module(f"{__name__}.{name}") for name in names]
    return sorted(modules, key=lambda m: (m.SPEC.anti_pattern, m.SPEC.id))


def runbook_url(check_id: str) -> str:
    return f"runbooks/{check_id}.md"


def _gather() -> tuple[CheckSpec, ...]:
    specs: list[CheckSpec] = []
    ids: set[str] = set()
    families: set[str] = set()
    for module in _modules():
        spec = module.SPEC
        if spec.id in ids:
            raise RuntimeError(f"duplicate check id {spec.id}")
        ids.add(spec.id)
        for fam in spec.families:
            if fam.name in families:
                raise RuntimeError(f"duplicate metric family {fam.name} in check {spec.id}")
            families.add(fam.name)
        specs.append(replace(spec, runbook=runbook_url(spec.id)))
    return tuple(specs)


CHECKS: tuple[CheckSpec, ...] = _gather()
CHECK_IDS = frozenset(s.id for s in CHECKS)


def by_id(check_id: str) -> CheckSpec:
    for spec in CHECKS:
        if spec.id == check_id:
            return spec
    raise KeyError(check_id)

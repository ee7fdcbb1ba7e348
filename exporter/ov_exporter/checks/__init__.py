"""The check registry: every module here declares SPEC; this gathers them.

A duplicate check id or metric family name fails at import, not at scrape time.
"""
from __future__ import annotations

from dataclasses import replace

from ..model import CheckSpec
from . import cpu_overcommit, memory_overcommit, migration_dirty_rate, mtu_mismatch, rhel_nodes, rwo_vm_disks

RUNBOOK_DIR = "runbooks"  # package data: ov_exporter/runbooks/<check id>.md, served at /runbooks/<id>.md
_MODULES = (rwo_vm_disks, cpu_overcommit, memory_overcommit, rhel_nodes, mtu_mismatch, migration_dirty_rate)


def runbook_url(check_id: str) -> str:
    return f"{RUNBOOK_DIR}/{check_id}.md"


def _gather() -> tuple[CheckSpec, ...]:
    specs: list[CheckSpec] = []
    ids: set[str] = set()
    families: set[str] = set()
    for module in _MODULES:
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

"""The 19 anti-patterns this product exists to catch, and how it covers each one.

Checks declare their anti-pattern number (CheckSpec.anti_pattern, plus `also` for a
check that informs a second one); what no check can see from the cluster API is
listed here with what the operator should do instead. The README coverage table,
the per-anti-pattern summary of `ov-exporter check` and the tests all read this.
"""

from __future__ import annotations

from dataclasses import dataclass

from .checks import CHECKS
from .model import CheckSpec

REPOSITORY = "https://github.com/ov-exporter/ov-exporter"
# Where runbooks are read: the exporter serves every check's (/runbooks/<check>.md) and
# every alert's (/runbooks/<AlertName>.md). The default is the Service that deploy/base creates; point
# it at a Route or another mirror with `make rules RUNBOOK_BASE_URL=...` (alert rules)
# and `make dashboards RUNBOOK_BASE_URL=...` (dashboard links).
RUNBOOK_BASE_URL = "https://ov-exporter.ov-exporter.svc:9871/runbooks"

# The anti-patterns, numbered as the project has always numbered them.
ANTI_PATTERNS: dict[int, str] = {
    1: "Using RWO storage for live migration",
    2: "Not setting SVM volume limits",
    3: "Enabling showmount without justification",
    4: "Excessive affinity rules",
    5: "Not planning for node failures",
    6: "Exceeding CPU overcommit limits",
    7: "Applying strict resource limits to VMs",
    8: "Relying on on-premises sizing references",
    9: "Using OVN-Kubernetes with a Linux bridge on the default interface",
    10: "Ignoring MTU mismatches",
    11: "Using RHEL compute nodes",
    12: "Placing master nodes on the same VMware host",
    13: "Ignoring etcd latency sensitivity",
    14: "Not reducing VM workload during migration",
    15: "Parallel migrations without a dedicated network",
    16: "Not validating migration prerequisites",
    17: "Deploying to production without testing",
    18: "Starting big instead of small",
    19: "Not monitoring after rebalancing",
}

# Not visible through the cluster API: what the operator does instead.
NOT_OBSERVABLE: dict[int, str] = {
    3: "showmount is an ONTAP SVM setting, not a cluster object. On ONTAP run "
    "`vserver nfs show -vserver <svm> -fields showmount` and disable it "
    "(`vserver nfs modify -vserver <svm> -showmount disabled`) unless a client needs it.",
    17: "A practice, not a cluster state. Run `ov-exporter check` against the dev/test cluster (or a "
    "snapshot of its manifests with `--output junit|sarif` in CI) and migrate production only "
    "after it passes; keep the post-rebalance dashboard open during the first production wave.",
    18: "A practice, not a cluster state. Start with 5-10 VMs, size them from measured usage "
    "(the `vm_right_sizing` check once metrics exist), and migrate in batches of at most 5 "
    "(`ov_migrations_in_flight` against the limit shows the batch size).",
}

# Covered by alerting rules over upstream metrics rather than by an exporter check.
ALERT_ONLY: dict[int, str] = {
    13: "etcd WAL fsync p99 above 10 ms and backend commit p99 above 25 ms, from etcd's own histograms",
}

# Alerts built on upstream metrics (KubeVirt, etcd, node_exporter), by anti-pattern.
# Alerts over exporter families are matched to their checks from the rule expressions.
UPSTREAM_ALERTS: dict[int, tuple[str, ...]] = {
    13: ("OVEtcdWALFsyncSlow", "OVEtcdBackendCommitSlow"),
    14: ("OVMigrationNotConverging", "OVMigrationNotProgressing"),
    19: ("OVPostRebalanceNodeCPUHigh", "OVPostRebalanceCPUSpreadIncreased"),
}


@dataclass(frozen=True)
class Coverage:
    number: int
    title: str
    checks: tuple[CheckSpec, ...]
    alert_note: str
    not_observable: str

    @property
    def status(self) -> str:
        if self.checks and self.alert_note:
            return "check + alerts"
        if self.checks:
            return "check"
        if self.alert_note or UPSTREAM_ALERTS.get(self.number):
            return "alerts"
        return "not observable" if self.not_observable else "not covered"


def checks_for(number: int) -> tuple[CheckSpec, ...]:
    return tuple(s for s in CHECKS if s.anti_pattern == number or number in s.also)


def coverage() -> list[Coverage]:
    return [
        Coverage(n, title, checks_for(n), ALERT_ONLY.get(n, ""), NOT_OBSERVABLE.get(n, ""))
        for n, title in ANTI_PATTERNS.items()
    ]


def runbook_url(spec: CheckSpec) -> str:
    """Absolute URL of a check's runbook (SARIF helpUri, JUnit text)."""
    return f"{RUNBOOK_BASE_URL}/{spec.id}.md"

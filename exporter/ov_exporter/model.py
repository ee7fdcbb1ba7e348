"""Plain values shared by every layer: severities, metric families, check specs, findings."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Callable, Mapping


class Severity(enum.IntEnum):
    """Ordered so that `max()` picks the worst."""

    INFO = 1
    WARNING = 2
    CRITICAL = 3

    def __str__(self) -> str:  # "critical", as in labels and JSON
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> "Severity":
        try:
            return cls[text.upper()]
        except KeyError as exc:
            raise ValueError(f"unknown severity {text!r}; expected one of info, warning, critical") from exc


class Status(str, enum.Enum):
    OK = "ok"
    FAILED = "failed"
    NOT_APPLICABLE = "not_applicable"


@dataclass(frozen=True, slots=True)
class Family:
    """One metric family a check exports.

    `name` is the exposition name (counters end in `_total`). `per_object` families
    get one series per offending object and are capped; the others are bounded
    (per node, per cluster, per setting) and never capped.
    """

    name: str
    type: str  # gauge | counter | info
    help: str
    labels: tuple[str, ...] = ()
    per_object: bool = False
    # Why no alert reads this family (a count of series another family lists, configuration,
    # a dashboard series). Every family without a reason must be read by an alert, directly
    # or through a recording rule (tests/test_alerts.py).
    no_alert: str = ""


@dataclass(frozen=True, slots=True)
class ObjectRef:
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    severity: Severity
    obj: ObjectRef
    message: str


@dataclass(frozen=True, slots=True)
class Sample:
    """One series: family name, label values in the family's label order, value.

    `obj` names the object a per-object series is about, so that exemptions and
    namespace filters can drop it together with the object's findings.
    """

    family: str
    labels: tuple[str, ...]
    value: float
    obj: ObjectRef | None = None


@dataclass(slots=True)
class CheckOutput:
    findings: list[Finding] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)


class NotApplicable(Exception):
    """Raised by a check when the cluster lacks what it judges (the reason is the message)."""


@dataclass(frozen=True, slots=True)
class AlertDecl:
    """An alert that belongs to a check: it reads the check's metric families and its
    runbook carries the check's story. Per severity it fires at, the rule's `impact`
    label (what the on-call engineer is told is at stake). `mirrors_findings`: it fires
    for exactly the objects the check has findings for (the end-to-end test compares)."""

    name: str
    critical: str = ""
    warning: str = ""
    info: str = ""
    mirrors_findings: bool = True
    # The object a firing alert names, as the check's findings name it: "Kind/label" (the
    # label holding the object's name; the namespace from `namespace`), or "Cluster".
    names: str = "Cluster"

    @property
    def impacts(self) -> dict[str, str]:
        """severity -> impact, for the severities the alert fires at."""
        return {s: i for s, i in (("critical", self.critical), ("warning", self.warning), ("info", self.info)) if i}


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """The declaration of one check. Alerts, dashboards, runbooks and the README are
    tested against these, so they cannot drift apart."""

    id: str
    anti_pattern: int  # its number in coverage.ANTI_PATTERNS (1-19)
    title: str
    severity_rules: str  # human-readable: when a finding is info / warning / critical
    families: tuple[Family, ...]
    remediation: str
    evaluate: Callable[..., CheckOutput]
    # Kind keys (records.KindInfo.key). Without a `requires` kind the check is
    # not_applicable; a forbidden `requires` or `reads` kind makes it fail, since a
    # partial view would give wrong answers silently.
    requires: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()
    uses_samples: bool = False  # needs Prometheus samples; a failing metric source fails it
    reads_samples: bool = False  # reads samples when there are some, without needing them
    # Judges time windows against state.now: its result can change with nothing in the
    # cluster changing, so the runner never reuses it.
    uses_clock: bool = False
    # Seconds: a check this costly runs at most this often in `serve` (configurable per
    # check, `checks.<id>.min-interval`); in between its last result is served even when
    # its inputs changed. 0: it runs whenever its inputs change.
    min_interval: float = 0.0
    also: tuple[int, ...] = ()  # further anti-patterns this check informs (coverage table)
    alerts: tuple[AlertDecl, ...] = ()  # the alerts in alerts/*.yaml that belong to this check
    # Configuration keys the check reads (`thresholds.cpu-overcommit-max`, `profile`, ...),
    # besides the ones every check honours (enabled, namespaces, exemption annotation).
    settings: tuple[str, ...] = ()
    # Dashboard panels that show the check's metric families, as "<dashboard uid>/<panel title>".
    panels: tuple[str, ...] = ()
    runbook: str = ""  # filled from the id by checks/__init__.py

    def family(self, name: str) -> Family:
        for fam in self.families:
            if fam.name == name:
                return fam
        raise KeyError(name)


FamilyIndex = Mapping[str, Family]

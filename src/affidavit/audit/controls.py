"""The report's view by control: for each control the jurisdiction presets cite, what happened.

An auditor tests controls (SOC 2 CC8.1, PCI DSS 6.2.3.1, NIST SP 800-53 CM-3 ...), not rules. So
the report lists every control the presets cite (from the rules-as-data in
:mod:`affidavit.policy.presets`, so a new preset needs no change here), which presets and rule
paths serve it, the violations citing it by the outcome of their decision (refused, admitted
with a warning, admitted under an exception) and the exceptions used against it. Decisions
record the rules that fired, not every rule that passed, so a control with no finding shows
zero violations rather than a count of decisions it "passed".
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from affidavit.policy.presets import PRESETS

if TYPE_CHECKING:
    from affidavit.audit.tally import Tally


#: Rule paths a preset cites that admission cannot judge: how long decisions are kept is the
#: ledger's property, shown by the report's retention statement (``report.retention``).
RETENTION_PATHS = frozenset({"retentionDays", "evidence.retentionDays"})


def retention_demands() -> list[dict[str, Any]]:
    """Each retention period a preset asks, with the control it cites: ``{"control": "PCI DSS
    10.5.1", "preset": "pci-dss", "days": 365}``, longest first."""
    found: dict[tuple[str, str], int] = {}
    for preset in PRESETS.values():
        evidence_days = preset.evidence.retention_days if preset.evidence else None
        for path, days in (
            ("retentionDays", preset.require.retention_days),
            ("evidence.retentionDays", evidence_days),
        ):
            control = preset.control(path)
            if days and control:
                key = (control, preset.name)
                found[key] = max(days, found.get(key, 0))
    rows = [{"control": c, "preset": p, "days": d} for (c, p), d in found.items()]
    return sorted(rows, key=lambda r: (-r["days"], r["control"], r["preset"]))


def preset_controls() -> dict[str, dict[str, set[str]]]:
    """control -> {"presets": names citing it, "rules": the rule paths it serves}."""
    out: dict[str, dict[str, set[str]]] = {}
    for preset in PRESETS.values():
        for path, control in preset.controls.items():
            entry = out.setdefault(control, {"presets": set(), "rules": set()})
            entry["presets"].add(preset.name)
            entry["rules"].add(path)
    return out


def control_view(t: Tally) -> list[dict[str, Any]]:
    """One row per control: cited by presets, or cited by a violation of the period."""
    cited = preset_controls()
    by_outcome: dict[str, Counter[str]] = {}
    damaged: Counter[str] = Counter()
    for (_rule, _policy, control, outcome, bad), n in t.rule_counts().items():
        if not control:
            continue
        by_outcome.setdefault(control, Counter())[outcome] += n
        damaged[control] += n if bad else 0
    exceptions: dict[str, set[str]] = {}
    for key, use in t.exception_uses.items():
        for control in use.get("controls", ()):
            exceptions.setdefault(control, set()).add(key)
    rows = []
    for control in sorted(set(cited) | set(by_outcome)):
        c = by_outcome.get(control, Counter())
        entry = cited.get(control, {"presets": set(), "rules": set()})
        rows.append(
            {
                "control": control,
                "presets": sorted(entry["presets"]),
                "rules": sorted(entry["rules"]),
                "violations": sum(c.values()),
                "denied": c["denied"],
                "admittedWithWarning": c["warned"] + c["audited"],
                "excepted": c["excepted"],
                "exceptions": sorted(exceptions.get(control, ())),
                "damaged": damaged[control],
                "checkedBy": "ledger retention"
                if entry["rules"] and entry["rules"] <= RETENTION_PATHS
                else "admission",
            }
        )
    return rows

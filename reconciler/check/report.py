"""What ``check`` reports: one result per check, per federation, as text or JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from reconciler.observation import LocalCluster

CHECKS = ("endpoint", "public", "private", "services", "refused", "stale", "trust")
PASS, FAIL, SKIP = "✓", "✗", "-"
NO_FEDERATION_HINT = "the remote has no IstioFederation for this cluster yet"


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    message: str
    fix: str = ""
    skipped: bool = False
    # More for -o json (e.g. skippedEntries of the private document), as in status.
    details: Mapping[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        mark = SKIP if self.skipped else PASS if self.ok else FAIL
        text = f"{mark} {self.name}: {self.message}"
        return f"{text}; fix: {self.fix}" if self.fix and not self.ok else text

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "ok": self.ok}
        if self.skipped:
            data["skipped"] = True
        data["message"] = self.message
        if self.fix and not self.ok:
            data["fix"] = self.fix
        data.update(self.details)
        return data


def passing(name: str, message: str) -> CheckResult:
    return CheckResult(name, True, message)


def failing(name: str, message: str, fix: str) -> CheckResult:
    return CheckResult(name, False, message, fix)


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def skipping(name: str, why: str) -> CheckResult:
    # Not verified is not passed: a skipped check keeps the exit code at 1, but it is not
    # reported as a second failure, since its cause is already on an earlier line.
    return CheckResult(name, False, f"skipped: {why}", skipped=True)


@dataclass(frozen=True)
class FederationReport:
    name: str
    trust_domain: str
    endpoint: str
    checks: tuple[CheckResult, ...]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "checks": [check.to_json() for check in self.checks]}


@dataclass(frozen=True)
class CheckSettings:
    local: LocalCluster
    namespace: str = "istio-federation"
    mesh_namespace: str = "istio-system"
    stale_after: timedelta = timedelta(minutes=5)


def render_text(reports: Sequence[FederationReport]) -> str:
    if not reports:
        return "no IstioFederation to check\n"
    lines: list[str] = []
    for position, report in enumerate(reports):
        if position:
            lines.append("")  # a blank line between federations keeps each block readable
        lines.append(
            f"IstioFederation {report.name}: trust domain {report.trust_domain or '(none)'}, "
            f"endpoint {report.endpoint or '(none)'}"
        )
        lines.extend(f"  {check.line()}" for check in report.checks)
    checks = [check for report in reports for check in report.checks]
    failed = sum(1 for check in checks if not check.ok and not check.skipped)
    skipped = sum(1 for check in checks if check.skipped)
    if failed or skipped:
        lines.append(f"{failed} of {len(checks)} checks failed, {skipped} skipped")
    else:
        lines.append(f"all {len(checks)} checks passed")
    return "\n".join(lines) + "\n"


def render_json(reports: Sequence[FederationReport]) -> str:
    document = {"federations": [report.to_json() for report in reports], "ok": all(r.ok for r in reports)}
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"

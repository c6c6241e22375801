"""Render what a ``--dry-run`` would do: objects to create, update (with a field diff) and delete,
and status changes, as text for people or YAML/JSON for tools."""

from __future__ import annotations

import json
from typing import Any

import yaml

from reconciler.apply import Action
from reconciler.loop import RunReport
from reconciler.objectdiff import FieldChange

FORMATS = ("text", "yaml", "json")
_MAX_SHOWN = 120


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str) if not isinstance(value, str) else json.dumps(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 1] + "…"


def _change(change: FieldChange) -> dict[str, Any]:
    return {"path": change.path, "old": change.old, "new": change.new}


def _action(action: Action) -> dict[str, Any]:
    data: dict[str, Any] = {
        "verb": action.verb,
        "kind": action.resource.kind,
        "namespace": action.namespace,
        "name": action.name,
        "host": action.hostname,
    }
    if action.verb == "create" and action.obj is not None:
        data["object"] = action.obj
    if action.changes:
        data["changes"] = [_change(change) for change in action.changes]
    return data


def as_data(report: RunReport) -> dict[str, Any]:
    federations = []
    for result in sorted(report.results, key=lambda r: r.federation):
        plan = result.plan
        federations.append(
            {
                "name": result.federation,
                "fetched": result.ok,
                "error": result.message,
                "actions": [_action(a) for a in plan.actions] if plan else [],
                "statusChanges": [_change(c) for c in plan.status_changes] if plan else [],
            }
        )
    return {
        "dryRun": True,
        "federations": federations,
        "orphans": [_action(a) for a in report.orphan_actions],
        "meshConfig": _action(report.mesh_action) if report.mesh_action else None,
        "meshConfigError": report.mesh_error or None,
    }


def _text_action(action: Action) -> list[str]:
    sign = {"create": "+", "update": "~", "delete": "-"}.get(action.verb, "?")
    lines = [f"  {sign} {action.verb} {action.target} (host {action.hostname})"]
    lines.extend(f"      {c.path}: {_short(c.old)} -> {_short(c.new)}" for c in action.changes)
    return lines


def render_text(report: RunReport) -> str:
    lines = ["Dry run: nothing was written."]
    total = 0
    for result in sorted(report.results, key=lambda r: r.federation):
        plan = result.plan
        lines.append(f"IstioFederation {result.federation}:")
        if result.message:
            lines.append(f"  ! {result.stage or 'sync'} failed: {result.message}")
        actions = plan.actions if plan else []
        total += len(actions)
        for action in actions:
            lines.extend(_text_action(action))
        if not actions:
            lines.append("  no object changes")
        changes = plan.status_changes if plan else []
        if changes:
            lines.append("  status:")
            lines.extend(f"      {c.path}: {_short(c.old)} -> {_short(c.new)}" for c in changes)
    if report.orphan_actions:
        lines.append("Objects of deleted IstioFederations:")
        for action in report.orphan_actions:
            lines.extend(_text_action(action))
        total += len(report.orphan_actions)
    if report.mesh_action is not None:
        lines.append("Mesh config:")
        lines.extend(_text_action(report.mesh_action))
        total += 1
    if report.mesh_error:
        lines.append(f"Mesh config: ! {report.mesh_error}")
    lines.append(f"{total} object change(s) planned.")
    return "\n".join(lines) + "\n"


def render(report: RunReport, output: str) -> str:
    if output == "json":
        return json.dumps(as_data(report), indent=2, sort_keys=False, default=str) + "\n"
    if output == "yaml":
        return str(yaml.safe_dump(as_data(report), sort_keys=False, default_flow_style=False))
    return render_text(report)

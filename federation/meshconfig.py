"""Remote root CAs in Istio's mesh config, merged without disturbing anything else.

Istio reads extra trust anchors from ``caCertificates`` in the ``mesh`` key of the ConfigMap
``istio``.  Each remote root goes in as its own entry ``{pem, trustDomains: [<remote domain>]}``,
so a remote root is trusted for its own trust domain only (never for ours or a third cluster's).

The ConfigMap belongs to the Istio installation, so this module only ever adds or removes the
entries of trust domains it manages; it records which ones in an annotation on the ConfigMap, so a
federation that was deleted can still have its entries removed.  Every other key and every other
entry is kept; when nothing changes, the original text is returned untouched so no write happens.

Rotation: when a remote publishes a new rootCA, the old one stays trusted for an overlap window, so
workloads still holding certificates from the old root keep working while the remote rolls over.
At most :data:`MAX_RETIRED_ROOTS` retired roots are kept (the newest): a remote that publishes a
new root at every sync must not grow the status and the mesh config without bound.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import yaml

from federation import fields, ownership, resources
from federation.resources import KubeObject
from federation.timestamps import format_time, parse_time

CONFIG_MAP_NAME = "istio"
MESH_KEY = "mesh"
MANAGED_DOMAINS_ANNOTATION = "federation.istio.deckhouse.io/managed-trust-domains"
# Retired roots kept during their overlap, newest first; a real rotation needs one.
MAX_RETIRED_ROOTS = 3


class MeshConfigError(ValueError):
    """The mesh config cannot be edited safely (for example it is not valid YAML)."""


def same_pem(left: str, right: str) -> bool:
    """PEMs compare by content: line endings and surrounding blank space are not meaning."""
    return left.strip().replace("\r\n", "\n") == right.strip().replace("\r\n", "\n")


@dataclass(frozen=True)
class TrustedCA:
    """One remote root this cluster trusts; ``retired_at`` is set once a newer root replaced it."""

    pem: str
    first_seen: str
    retired_at: str | None = None

    def to_json(self) -> dict[str, str]:
        data = {"pem": self.pem, "firstSeen": self.first_seen}
        if self.retired_at:
            data["retiredAt"] = self.retired_at
        return data

    @classmethod
    def from_json(cls, data: Any) -> TrustedCA | None:
        if not isinstance(data, dict) or not isinstance(data.get("pem"), str) or not data["pem"].strip():
            return None
        retired = data.get("retiredAt")
        return cls(str(data["pem"]), str(data.get("firstSeen") or ""), str(retired) if retired else None)


def rotate(trusted: Sequence[TrustedCA], current_pem: str, now: datetime, overlap: timedelta) -> list[TrustedCA]:
    """The trusted roots after seeing ``current_pem`` as the remote's root at ``now``.

    * A root seen for the first time is added.
    * Roots other than the current one are retired (once) and dropped ``overlap`` after retirement.
    * A root that comes back (a rollback) is un-retired.
    * At most :data:`MAX_RETIRED_ROOTS` retired roots are kept, the most recently retired.
    The current root is always first; the others follow newest first.
    """
    stamp = format_time(now)
    current: TrustedCA | None = None
    others: list[TrustedCA] = []
    for entry in trusted:
        if same_pem(entry.pem, current_pem):
            if current is None:
                current = replace(entry, retired_at=None)
            continue
        retired = entry if entry.retired_at else replace(entry, retired_at=stamp)
        retired_moment = parse_time(retired.retired_at or "") or now
        if retired_moment + overlap > now:
            others.append(retired)
    if current is None:
        current = TrustedCA(current_pem, stamp)
    others.sort(key=lambda entry: (entry.retired_at or "", entry.first_seen), reverse=True)
    return [current, *others[:MAX_RETIRED_ROOTS]]


def expire(trusted: Sequence[TrustedCA], now: datetime, overlap: timedelta) -> list[TrustedCA]:
    """Drop retired roots whose overlap has passed (also when the remote is unreachable)."""
    kept: list[TrustedCA] = []
    for entry in trusted:
        retired_moment = parse_time(entry.retired_at) if entry.retired_at else None
        if retired_moment is None or retired_moment + overlap > now:
            kept.append(entry)
    return kept


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (PEMs) as literal blocks, as a human would write them in the ConfigMap."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_BlockDumper.add_representer(str, _represent_str)


def _load_mesh(text: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as error:
        raise MeshConfigError(f"the mesh config is not valid YAML, refusing to edit it: {error}") from error
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise MeshConfigError(f"the mesh config must be a YAML mapping, found {fields.json_type(data)}")
    return data


def _entry_domain(entry: Any) -> str | None:
    """The trust domain of an entry this module could have written: exactly one domain."""
    if not isinstance(entry, dict):
        return None
    domains = entry.get("trustDomains")
    if isinstance(domains, list) and len(domains) == 1 and isinstance(domains[0], str):
        return domains[0].lower()
    return None


def merge_mesh(text: str, wanted: Mapping[str, Sequence[str]], managed: Iterable[str]) -> str:
    """``text`` with the entries of ``managed`` ∪ ``wanted`` trust domains replaced by ``wanted``.

    ``wanted`` maps a trust domain to its trusted PEMs.  Returns ``text`` itself when the result
    means the same, so the caller can skip the write.
    """
    data = _load_mesh(text)
    ours = {domain.lower() for domain in managed} | {domain.lower() for domain in wanted}
    existing = data.get("caCertificates")
    if existing is not None and not isinstance(existing, list):
        raise MeshConfigError("caCertificates in the mesh config must be a list, refusing to edit it")
    kept = [entry for entry in existing or [] if _entry_domain(entry) not in ours]
    added = [
        {"pem": pem, "trustDomains": [domain.lower()]}
        for domain in sorted(wanted, key=str.lower)
        for pem in wanted[domain]
    ]
    merged = kept + added
    if merged == (existing or []):
        return text
    result = copy.deepcopy(data)
    if merged:
        result["caCertificates"] = merged
    else:
        result.pop("caCertificates", None)
    return str(yaml.dump(result, Dumper=_BlockDumper, sort_keys=False, default_flow_style=False))


def mesh_entries(text: str) -> list[dict[str, Any]]:
    """The caCertificates entries of a mesh config (for diagnostics)."""
    entries = _load_mesh(text).get("caCertificates")
    return [entry for entry in entries if isinstance(entry, dict)] if isinstance(entries, list) else []


def managed_domains(config_map: KubeObject | None) -> set[str]:
    if config_map is None:
        return set()
    raw = resources.annotations_of(config_map).get(MANAGED_DOMAINS_ANNOTATION, "")
    return {part.strip().lower() for part in raw.split(",") if part.strip()}


def still_routed(
    current: KubeObject | None, wanted: Mapping[str, Sequence[str]], routed_hosts: Iterable[str]
) -> dict[str, list[str]]:
    """``wanted`` plus the entries we wrote for domains that managed ServiceEntries still route into.

    A federation's root leaves the mesh trust only once nothing routes to its cluster any more: an
    orphaned ServiceEntry whose delete failed (or has not happened yet) still sends traffic there,
    and without the root that traffic would fail mTLS instead of being cleaned up.
    """
    dropped = managed_domains(current) - {domain.lower() for domain in wanted}
    if not dropped or current is None:
        return {domain: list(pems) for domain, pems in wanted.items()}
    routed = {
        domain
        for host in routed_hosts
        for domain in dropped
        if host.lower().rstrip(".") == domain or host.lower().rstrip(".").endswith("." + domain)
    }
    data = current.get("data") if isinstance(current.get("data"), dict) else {}
    assert isinstance(data, dict)
    kept: dict[str, list[str]] = {domain: list(pems) for domain, pems in wanted.items()}
    for entry in mesh_entries(str(data.get(MESH_KEY) or "")):
        domain = _entry_domain(entry)
        pem = entry.get("pem")
        if domain in routed and isinstance(pem, str):
            kept.setdefault(domain, []).append(pem)
    return kept


def desired_config_map(
    current: KubeObject | None, wanted: Mapping[str, Sequence[str]], *, namespace: str
) -> KubeObject | None:
    """The ConfigMap ``istio`` with our entries in place, or None when no write is needed.

    When ``current`` is None a new ConfigMap is returned (only the caller knows whether creating
    it is appropriate); it is labelled so it is clear who made it.
    """
    if current is None:
        if not wanted:
            return None
        text = merge_mesh("", wanted, ())
        return {
            "apiVersion": resources.CONFIG_MAP.api_version,
            "kind": resources.CONFIG_MAP.kind,
            "metadata": {
                "name": CONFIG_MAP_NAME,
                "namespace": namespace,
                "labels": {ownership.MANAGED_BY_LABEL: ownership.MANAGED_BY_VALUE},
                "annotations": {MANAGED_DOMAINS_ANNOTATION: ",".join(sorted(d.lower() for d in wanted))},
            },
            "data": {MESH_KEY: text},
        }
    data = current.get("data") if isinstance(current.get("data"), dict) else {}
    assert isinstance(data, dict)
    text = str(data.get(MESH_KEY) or "")
    previous = managed_domains(current)
    merged = merge_mesh(text, wanted, previous)
    domains = ",".join(sorted(d.lower() for d in wanted))
    old_domains = resources.annotations_of(current).get(MANAGED_DOMAINS_ANNOTATION)
    if merged == text and domains == (old_domains or ""):
        return None
    updated = copy.deepcopy(current)
    updated.setdefault("data", {})[MESH_KEY] = merged
    annotations = updated.setdefault("metadata", {}).setdefault("annotations", {})
    if domains:
        annotations[MANAGED_DOMAINS_ANNOTATION] = domains
    else:
        annotations.pop(MANAGED_DOMAINS_ANNOTATION, None)
    return updated

"""Put a CA bundle into every webhook of the ValidatingWebhookConfigurations in a YAML stream.

The text is edited in place at the positions the YAML parser reports, so comments, key order and
the other documents stay exactly as written; the result is parsed again and checked.
Pure: text in, text out.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import yaml

from certs.errors import CertsError

KIND = "ValidatingWebhookConfiguration"


@dataclass(frozen=True)
class _Edit:
    start: int
    end: int
    text: str


def encode(ca_pem: bytes) -> str:
    """``caBundle`` is base64 of the PEM bytes (a []byte field in the API)."""
    return base64.b64encode(ca_pem).decode("ascii")


def _mapping_get(node: yaml.MappingNode, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    for key_node, value_node in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            return key_node, value_node
    return None


def _scalar(node: yaml.MappingNode, key: str) -> str | None:
    found = _mapping_get(node, key)
    if found and isinstance(found[1], yaml.ScalarNode):
        return str(found[1].value)
    return None


def _edit_for(client_config: yaml.MappingNode, value: str, text: str, where: str) -> _Edit:
    existing = _mapping_get(client_config, "caBundle")
    if existing is not None:
        value_node = existing[1]
        start, end = value_node.start_mark.index, value_node.end_mark.index
        # `caBundle:` with no value: the empty scalar sits right after the colon and needs a space.
        return _Edit(start, end, value if end > start else f" {value}")
    if not client_config.value:
        raise CertsError(f"{where}.clientConfig is empty: it needs a service or url")
    first_key = client_config.value[0][0]
    index = first_key.start_mark.index
    if client_config.flow_style:
        return _Edit(index, index, f"caBundle: {value}, ")
    line_start = index - first_key.start_mark.column
    if text[line_start:index].strip():
        raise CertsError(f"{where}.clientConfig has a layout this tool cannot edit; write caBundle by hand")
    indent = " " * first_key.start_mark.column
    return _Edit(line_start, line_start, f"{indent}caBundle: {value}\n")


def inject(text: str, ca_pem: bytes, *, source: str) -> tuple[str, int]:
    """Return ``text`` with every ValidatingWebhookConfiguration webhook's caBundle set, and how many."""
    value = encode(ca_pem)
    try:
        documents = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as error:
        raise CertsError(f"{source} is not valid YAML: {_one_line(error)}") from error
    edits: list[_Edit] = []
    for number, document in enumerate(documents, start=1):
        if not isinstance(document, yaml.MappingNode) or _scalar(document, "kind") != KIND:
            continue
        where = f"{source} document {number} ({KIND})"
        webhooks = _mapping_get(document, "webhooks")
        if webhooks is None or not isinstance(webhooks[1], yaml.SequenceNode):
            raise CertsError(f"{where}: webhooks must be a list")
        for position, webhook in enumerate(webhooks[1].value):
            item = f"{where} webhooks[{position}]"
            if not isinstance(webhook, yaml.MappingNode):
                raise CertsError(f"{item} must be a mapping")
            client_config = _mapping_get(webhook, "clientConfig")
            if client_config is None or not isinstance(client_config[1], yaml.MappingNode):
                raise CertsError(f"{item}.clientConfig is missing: it needs a service or url")
            edits.append(_edit_for(client_config[1], value, text, item))
    if not edits:
        raise CertsError(f"{source} has no {KIND} with webhooks")
    for edit in sorted(edits, key=lambda e: e.start, reverse=True):
        text = text[: edit.start] + edit.text + text[edit.end :]
    _check(text, value, len(edits), source)
    return text, len(edits)


def _check(text: str, value: str, expected: int, source: str) -> None:
    """Parse the result and make sure exactly the webhooks were changed, and correctly."""
    try:
        loaded: list[Any] = list(yaml.safe_load_all(text))
    except yaml.YAMLError as error:  # pragma: no cover - a bug in the splicing above
        raise CertsError(f"editing {source} produced invalid YAML: {_one_line(error)}") from error
    found = [
        hook.get("clientConfig", {}).get("caBundle")
        for doc in loaded
        if isinstance(doc, dict) and doc.get("kind") == KIND
        for hook in doc.get("webhooks") or []
    ]
    if len(found) != expected or any(bundle != value for bundle in found):  # pragma: no cover
        raise CertsError(f"editing {source} did not set every caBundle; nothing was written")


def _one_line(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark else str(problem)

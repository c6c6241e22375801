"""``istio-federation validate``: admission without a cluster, for CI and GitOps previews.

It runs the very validators, index and messages the server uses, over files, as the apiserver
would: each object is a CREATE, or an UPDATE when the state already holds it, and objects admitted
earlier in the run count as existing for the ones after them.

Input is read the way ``kubectl apply -f`` and kubeconform read it: files, directories (their
``*.yaml``, ``*.yml`` and ``*.json`` files; ``-R`` for subdirectories too), ``-`` for stdin,
several documents per file, and ``kind: List`` (what ``kubectl get -o yaml`` prints) as its items.
Every object gets a result: ``accepted``, ``denied`` (with the webhook's causes) or ``skipped``, a
kind the webhook never checks.  Under ``--strict`` (the default) a skipped object fails the run: a
CI gate must not pass an ``IstioFederatoin`` because nobody checked it.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import yaml

from federation import resources
from federation.admission_response import AdmissionResponse
from federation.commandline import EXIT_FAILED, EXIT_OK, UsageError, dump_document
from federation.index import ObjectIndex
from federation.resources import KubeObject, ObjectKey
from federation.validation import registry
from federation.validation.attributes import DEFAULT_RECONCILER_USERNAME, Attributes, Context
from objectstore.statedir import StateDirStore
from objectstore.stateformat import StateError

EXIT_ACCEPTED = EXIT_OK
EXIT_DENIED = EXIT_FAILED
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
STDIN = "-"

ACCEPTED, DENIED, SKIPPED = "accepted", "denied", "skipped"
# The kinds the webhook has rules for; anything else is reported as skipped.
CHECKED = registry.CHECKED


@dataclass(frozen=True)
class OfflineOptions:
    local_trust_domain: str
    files: list[str]
    state: Path | None = None
    username: str = "kubernetes-admin"
    reconciler_username: str = DEFAULT_RECONCILER_USERNAME
    ip_autoallocate: bool = True
    recursive: bool = False
    strict: bool = True
    output: str = "text"


@dataclass(frozen=True)
class Document:
    obj: KubeObject
    source: str  # FILE:LINE, or <stdin>:LINE


@dataclass
class Result:
    source: str
    obj: KubeObject
    result: str
    message: str = ""  # the denial's Status message, or why the object was skipped
    webhook: str = ""
    causes: list[dict[str, str]] = field(default_factory=list)
    warnings: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        key = ObjectKey.of(self.obj)
        return f"{key.kind}/{key.namespace}/{key.name}" if key.namespace else f"{key.kind}/{key.name}"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "source": self.source,
            "apiVersion": str(self.obj.get("apiVersion", "")),
            "kind": str(self.obj.get("kind", "")),
        }
        namespace = resources.namespace_of(self.obj)
        if namespace:
            data["namespace"] = namespace
        data["name"] = resources.name_of(self.obj)
        data["result"] = self.result
        if self.result == DENIED:
            data["webhook"] = self.webhook
            data["message"] = self.message
            data["causes"] = self.causes
        elif self.result == SKIPPED:
            data["reason"] = self.message
        if self.warnings:
            data["warnings"] = list(self.warnings)
        return data


# -- reading ---------------------------------------------------------------------------------------


def _manifests_in(directory: Path, *, recursive: bool) -> list[Path]:
    """The manifest files of a directory, as kubectl picks them (hidden files and directories left out)."""
    candidates = directory.rglob("*") if recursive else directory.iterdir()
    found = []
    for path in candidates:
        relative = path.relative_to(directory).parts
        if any(part.startswith(".") for part in relative):
            continue
        if path.suffix.lower() in MANIFEST_SUFFIXES and path.is_file():
            found.append(path)
    return sorted(found)


def _inputs(names: Sequence[str], *, recursive: bool) -> Iterator[tuple[str, Path | None]]:
    """(name for messages, path or None for stdin) of every input, directories expanded."""
    for name in names:
        if name == STDIN:
            yield "<stdin>", None
            continue
        path = Path(name)
        if path.is_dir():
            for manifest in _manifests_in(path, recursive=recursive):
                yield str(manifest), manifest
        elif path.exists():
            yield name, path
        else:
            raise UsageError(f"-f {name}: no such file or directory")


def _decode(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise UsageError(
            f"{where}: not a YAML or JSON manifest: byte {data[error.start]:#04x} at offset {error.start} is not "
            "UTF-8 text (a binary file?)"
        ) from None


def _check(doc: Any, where: str) -> KubeObject:
    problem = resources.envelope_problem(doc)
    if problem is not None:
        raise UsageError(f"{where}: {problem}")
    assert isinstance(doc, dict), "envelope_problem refuses anything but a mapping"
    metadata = doc["metadata"]
    if "namespace" in metadata and not isinstance(metadata["namespace"], str):
        raise UsageError(f"{where}: {doc['kind']} {metadata['name']!r}: metadata.namespace must be a string")
    return doc


def _is_list(doc: Any) -> bool:
    """``kind: List`` (or ``ServiceEntryList`` …) with ``items``: kubectl applies the items."""
    return isinstance(doc, dict) and str(doc.get("kind", "")).endswith("List") and "items" in doc


def _item_lines(node: yaml.Node, count: int, first: int) -> list[int]:
    """The 1-based line of each of a List's ``items`` (the List's own line where unknown)."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == "items" and isinstance(value, yaml.SequenceNode):
                lines = [child.start_mark.line + 1 for child in value.value]
                if len(lines) == count:
                    return lines
    return [first] * count


def _documents(doc: Any, node: yaml.Node, where: str) -> list[Document]:
    line = node.start_mark.line + 1
    source = f"{where}:{line}"
    if not _is_list(doc):
        return [Document(_check(doc, source), source)]
    items = doc.get("items")
    if items is None:
        return []
    if not isinstance(items, list):
        raise UsageError(f"{source}: {doc['kind']}: items must be a list, got {type(items).__name__}")
    lines = _item_lines(node, len(items), line)
    return [
        Document(_check(item, f"{where}:{item_line}: {doc['kind']} items[{position}]"), f"{where}:{item_line}")
        for position, (item, item_line) in enumerate(zip(items, lines, strict=True))
    ]


def parse(text: str, where: str) -> list[Document]:
    """The objects of one input: every YAML (or JSON) document, a List's items in its place."""
    documents: list[Document] = []
    loader = yaml.SafeLoader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                break
            doc = loader.construct_document(node)
            if doc is None:
                continue
            documents.extend(_documents(doc, node, where))
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = f":{mark.line + 1}" if mark else ""
        raise UsageError(f"{where}{line}: invalid YAML: {error.problem or error}") from None
    except yaml.YAMLError as error:
        raise UsageError(f"{where}: invalid YAML: {error}") from None
    finally:
        loader.dispose()
    return documents


def read(names: Sequence[str], *, recursive: bool = False, stdin: BinaryIO | None = None) -> list[Document]:
    documents: list[Document] = []
    for where, path in _inputs(names, recursive=recursive):
        if path is None:
            data = (stdin or sys.stdin.buffer).read()
        else:
            try:
                data = path.read_bytes()
            except OSError as error:
                raise UsageError(f"-f {where}: cannot read: {error.strerror or error}") from None
        documents.extend(parse(_decode(data, where), where))
    return documents


# -- deciding --------------------------------------------------------------------------------------


def _kinds(names: Sequence[str]) -> str:
    return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else "".join(names)


def unchecked_reason(obj: KubeObject) -> str | None:
    """Why the webhook would never see ``obj`` (so nothing was checked), with the likely fix; None when it would."""
    kind = str(obj.get("kind"))
    group = str(obj.get("apiVersion", "")).rpartition("/")[0]
    for resource in CHECKED:
        if resource.kind == kind:
            if resource.group == group:
                return None
            return (
                f"{kind} of apiVersion {obj.get('apiVersion')} is not checked: the webhook checks {kind} of "
                f"{resource.group}; did you mean apiVersion {resource.api_version}?"
            )
    names = [resource.kind for resource in CHECKED]
    by_lower = {name.lower(): name for name in names}
    close = [by_lower[kind.lower()]] if kind.lower() in by_lower else difflib.get_close_matches(kind, names, 1, 0.75)
    if close:
        return f"{kind} is not a kind the webhook checks: did you mean {close[0]}?"
    return f"{kind} is not a kind the webhook checks (it checks {_kinds(names)})"


def _causes(answer: AdmissionResponse) -> list[dict[str, str]]:
    details = answer.details if isinstance(answer.details, dict) else {}
    causes = details.get("causes")
    if not isinstance(causes, list):
        return []
    return [{key: str(value) for key, value in cause.items()} for cause in causes if isinstance(cause, dict)]


def admit_all(options: OfflineOptions, documents: Sequence[Document]) -> list[Result]:
    existing: dict[ObjectKey, KubeObject] = {}
    index = ObjectIndex()
    if options.state is not None:
        try:
            store = StateDirStore(options.state, poll_interval=0)
            store.start()
        except StateError as error:
            raise UsageError(f"--state: {error}") from None
        index = store.index
        for resource in resources.ALL:
            for obj in store.list(resource):
                existing[ObjectKey.of(obj)] = obj
    context = Context(
        index=index,
        local_trust_domain=options.local_trust_domain,
        reconciler_username=options.reconciler_username,
        ip_autoallocate=options.ip_autoallocate,
    )
    results: list[Result] = []
    for document in documents:
        obj = document.obj
        descriptor = resources.by_kind(str(obj.get("kind")))
        if descriptor is not None and descriptor.namespaced and not resources.namespace_of(obj):
            obj["metadata"]["namespace"] = "default"  # what kubectl does without -n
        reason = unchecked_reason(obj)
        if reason is not None or descriptor is None:
            results.append(Result(document.source, obj, SKIPPED, message=reason or ""))
            continue
        key = ObjectKey.of(obj)
        old = existing.get(key)
        attributes = Attributes(
            operation="UPDATE" if old is not None else "CREATE",
            group=descriptor.group,
            resource=descriptor.plural,
            kind=key.kind,
            name=key.name,
            namespace=key.namespace,
            obj=obj,
            old=old,
            username=options.username,
        )
        answer = registry.admit(attributes, context)
        if answer.allowed:
            results.append(Result(document.source, obj, ACCEPTED, warnings=answer.warnings))
            existing[key] = obj
            index.apply("MODIFIED" if old is not None else "ADDED", obj)
            continue
        results.append(
            Result(
                document.source,
                obj,
                DENIED,
                message=answer.message,
                webhook=registry.webhook_name(descriptor.group, descriptor.plural) or "",
                causes=_causes(answer),
                warnings=answer.warnings,
            )
        )
    return results


# -- printing --------------------------------------------------------------------------------------


def _cause_line(cause: dict[str, str]) -> str:
    return f"{cause['field']}: {cause.get('message', '')}" if cause.get("field") else cause.get("message", "")


def denial_text(result: Result) -> str:
    """The webhook's denial as kubectl prints a 422: one cause inline, several as ``* cause`` lines."""
    head, separator, _ = result.message.partition(" is invalid: ")
    text = result.message
    if separator and len(result.causes) > 1:
        # kubectl's own layout, trailing space included: "The X "n" is invalid: \n* a\n* b".
        text = f"{head} is invalid: \n" + "\n".join(f"* {_cause_line(cause)}" for cause in result.causes)
    return f'{result.label}: admission webhook "{result.webhook}" denied the request: {text}'


def render_text(results: Sequence[Result]) -> str:
    lines: list[str] = []
    for result in results:
        if result.result == ACCEPTED:
            lines.append(f"{result.label} accepted")
        elif result.result == SKIPPED:
            lines.append(f"{result.label} skipped: {result.message}")
        else:
            lines.append(denial_text(result))
        lines.extend(f"Warning: {warning}" for warning in result.warnings)
    return "".join(line + "\n" for line in lines)


def summary(results: Sequence[Result], *, strict: bool) -> dict[str, Any]:
    counts = {outcome: sum(1 for r in results if r.result == outcome) for outcome in (ACCEPTED, DENIED, SKIPPED)}
    return {
        "objects": [result.to_json() for result in results],
        "summary": counts,
        "strict": strict,
        "ok": passed(results, strict=strict),
    }


def passed(results: Sequence[Result], *, strict: bool) -> bool:
    failing = {DENIED, SKIPPED} if strict else {DENIED}
    return not any(result.result in failing for result in results)


def render(results: Sequence[Result], output: str, *, strict: bool) -> str:
    if output == "text":
        return render_text(results)
    return dump_document(summary(results, strict=strict), output)


def run(options: OfflineOptions, out: TextIO = sys.stdout, stdin: BinaryIO | None = None) -> int:
    """Admit every object of ``options.files``; UsageError for input that cannot be read."""
    documents = read(options.files, recursive=options.recursive, stdin=stdin)
    if not documents:
        raise UsageError(f"no objects found in {', '.join(options.files)}")
    results = admit_all(options, documents)
    out.write(render(results, options.output, strict=options.strict))
    out.flush()
    return EXIT_ACCEPTED if passed(results, strict=options.strict) else EXIT_DENIED

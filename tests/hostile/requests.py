"""Raw HTTP requests for the servers' tables, exactly as a hostile client writes them."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from tests.reviews import admission_review, federation, service_entry


def http(
    method: str = "POST",
    path: str = "/validate",
    body: bytes = b"",
    *,
    content_type: str | None = "application/json",
    headers: tuple[tuple[str, str], ...] = (),
    version: str = "HTTP/1.1",
    length: bool = True,
) -> bytes:
    """A request as bytes: ``Host``, the content type and the length, then ``headers`` as given."""
    lines = [f"{method} {path} {version}", "Host: hostile.test"]
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    if length and (body or method in ("POST", "PUT", "PATCH")):
        lines.append(f"Content-Length: {len(body)}")
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def post(body: bytes, **kwargs: Any) -> Callable[[], bytes]:
    return lambda: http("POST", "/validate", body, **kwargs)


def post_lazy(make: Callable[[], bytes], **kwargs: Any) -> Callable[[], bytes]:
    return lambda: http("POST", "/validate", make(), **kwargs)


def raw(data: bytes) -> Callable[[], bytes]:
    return lambda: data


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


# -- AdmissionReviews ----------------------------------------------------------------------------


def se_review(obj: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    """A CREATE review of ServiceEntry shop/bar (``bar.example.com``), or of ``obj``; uid ``u``."""
    subject = obj or service_entry("bar", "shop", "bar.example.com")
    return admission_review(subject, uid=kwargs.pop("uid", "u"), **kwargs)


def review_with(path: str, value: Any, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """``base`` (a ServiceEntry review) with the value at dotted ``path`` set (``-`` deletes it)."""
    review = copy.deepcopy(base or se_review())
    *parents, last = path.split(".")
    node: Any = review
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    key: Any = int(last) if isinstance(node, list) else last
    if value is DELETE:
        del node[key]
    else:
        node[key] = value
    return review


DELETE = object()


def se_with(path: str, value: Any, name: str = "bar") -> dict[str, Any]:
    """A ServiceEntry review whose object has ``value`` at dotted ``path`` (under ``request.object``)."""
    return review_with(f"request.object.{path}", value, se_review(service_entry(name, "shop", "bar.example.com")))


def federation_review(name: str = "cluster-d", trust_domain: str = "cluster-d.local", **spec: Any) -> dict[str, Any]:
    obj = federation(name, trust_domain)
    obj["spec"].update(spec)
    return admission_review(obj, uid="u")


def literal(review: dict[str, Any], marker: str, text: bytes) -> bytes:
    """``review`` as JSON with the string ``marker`` replaced by a raw JSON literal (NaN, 5,000 digits)."""
    encoded = dumps(review)
    quoted = json.dumps(marker).encode()
    assert encoded.count(quoted) == 1, marker
    return encoded.replace(quoted, text)

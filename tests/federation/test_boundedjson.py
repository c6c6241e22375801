"""``federation.boundedjson``: every hostile input gets its own exact message, and nothing else escapes.

The table holds the inputs of the hostile-input run (issue 14) and one case per limit; the property
tests say that arbitrary bytes only ever raise :class:`InvalidJSON` and that small valid documents
decode exactly as :func:`json.loads` decodes them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from federation import boundedjson
from federation.boundedjson import InvalidJSON, Limits

SMALL = Limits(max_bytes=1000, max_depth=3, max_number_chars=5, max_string_chars=8, max_members=4)


@dataclass(frozen=True)
class Refusal:
    name: str
    data: bytes | str
    problem: str
    limit: str
    limits: Limits = boundedjson.DOCUMENT_LIMITS


REFUSALS = [
    Refusal(
        "100,000-deep arrays",
        b"[" * 100_000 + b"]" * 100_000,
        "nested deeper than the limit of 32 levels at line 1 column 33 (char 32)",
        "max_depth",
    ),
    Refusal(
        "100,000 openers, never closed",
        b"[" * 100_000,
        "nested deeper than the limit of 32 levels at line 1 column 33 (char 32)",
        "max_depth",
    ),
    Refusal(
        "deep objects on the second line",
        b'{"a":\n' + b'{"a":' * 40 + b"1" + b"}" * 41,
        "nested deeper than the limit of 32 levels at line 2 column 156 (char 161)",
        "max_depth",
    ),
    Refusal(
        "deep after a string holding escaped quotes and brackets",
        b'["\\"]]]\\\\", ' + b"[" * 40 + b"]" * 41,
        "nested deeper than the limit of 32 levels at line 1 column 44 (char 43)",
        "max_depth",
    ),
    Refusal(
        "5,000-digit integer",
        b'{"port": ' + b"9" * 5000 + b"}",
        "number 99999999999999999999... has 5000 characters, more than the limit of 40",
        "max_number_chars",
    ),
    Refusal(
        "5,000-digit fraction",
        b"[0." + b"1" * 5000 + b"]",
        "number 0.111111111111111111... has 5002 characters, more than the limit of 40",
        "max_number_chars",
    ),
    Refusal("NaN", b'{"exp": NaN}', "NaN is not a JSON number (only finite numbers are)", ""),
    Refusal("Infinity", b"[Infinity]", "Infinity is not a JSON number (only finite numbers are)", ""),
    Refusal("-Infinity", b"[-Infinity]", "-Infinity is not a JSON number (only finite numbers are)", ""),
    Refusal("float overflow", b"[1e999]", "number 1e999 is out of range (not a finite number)", "max_number_chars"),
    Refusal(
        "huge string value",
        b'{"publicServices": [{"hostname": "' + b"a" * 70_000 + b'"}]}',
        "string at publicServices[0].hostname has 70000 characters, more than the limit of 65536",
        "max_string_chars",
    ),
    Refusal(
        "huge key",
        b'{"ok": {"' + b"k" * 70_000 + b'": 1}}',
        "object key at ok has 70000 characters, more than the limit of 65536",
        "max_string_chars",
    ),
    Refusal(
        "huge top-level string",
        b'"' + b"a" * 70_000 + b'"',
        "string at the top level has 70000 characters, more than the limit of 65536",
        "max_string_chars",
    ),
    Refusal(
        "too many array members",
        b'{"publicServices": [' + b"0," * 20_000 + b"0]}",
        "array at publicServices has 20001 members, more than the limit of 20000",
        "max_members",
    ),
    Refusal(
        "too many object members, under an odd key",
        b'{"a b\\n": {' + b",".join(b'"k%d": 0' % n for n in range(20_001)) + b"}}",
        'object at ["a b?"] has 20001 members, more than the limit of 20000',
        "max_members",
    ),
    Refusal(
        "over the byte limit",
        b"[" + b"0," * (2 * 1024 * 1024) + b"0]",
        "4194307 bytes is larger than the limit of 4194304 bytes",
        "max_bytes",
    ),
    Refusal("not UTF-8", b'["\xff"]', "not valid UTF-8 at byte 2", ""),
    Refusal("UTF-16", '["a"]'.encode("utf-16"), "not valid UTF-8 at byte 0", ""),
    Refusal("empty", b"", "not valid JSON: Expecting value: line 1 column 1 (char 0)", ""),
    Refusal(
        "unterminated string full of brackets",
        b'["' + b"[" * 100_000,
        "not valid JSON: Unterminated string starting at: line 1 column 2 (char 1)",
        "",
    ),
    Refusal("trailing garbage", b"{} x", "not valid JSON: Extra data: line 1 column 4 (char 3)", ""),
    Refusal(
        "BOM",
        b"\xef\xbb\xbf{}",
        "not valid JSON: Unexpected UTF-8 BOM (decode using utf-8-sig): line 1 column 1 (char 0)",
        "",
    ),
    # The same limits, smaller, as a caller states its own.
    Refusal(
        "depth 4 of 3",
        b"[[[[]]]]",
        "nested deeper than the limit of 3 levels at line 1 column 4 (char 3)",
        "max_depth",
        SMALL,
    ),
    Refusal(
        "6-character number",
        b"[123456]",
        "number 123456 has 6 characters, more than the limit of 5",
        "max_number_chars",
        SMALL,
    ),
    Refusal(
        "9-character string",
        b'["abcdefghi"]',
        "string at [0] has 9 characters, more than the limit of 8",
        "max_string_chars",
        SMALL,
    ),
    Refusal(
        "5 members",
        b"[1,2,3,4,5]",
        "array at the top level has 5 members, more than the limit of 4",
        "max_members",
        SMALL,
    ),
    Refusal(
        "1001 bytes", "[" + " " * 999 + "]", "1001 bytes is larger than the limit of 1000 bytes", "max_bytes", SMALL
    ),
]


@pytest.mark.parametrize("case", REFUSALS, ids=[case.name for case in REFUSALS])
def test_refusals_name_the_limit(case: Refusal) -> None:
    with pytest.raises(InvalidJSON) as raised:
        boundedjson.loads(case.data, case.limits)
    assert (raised.value.problem, raised.value.limit) == (case.problem, case.limit)
    assert str(raised.value) == case.problem
    assert raised.value.problem.isprintable()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(b'{"a": [1, 2.5, "x", true, null]}', {"a": [1, 2.5, "x", True, None]}, id="every type"),
        pytest.param(
            b"[" * 32 + b"]" * 32, [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]], id="32 deep"
        ),
        pytest.param(b'["' + b"[" * 42 + b'"]', ["[" * 42], id="brackets in a string"),
        pytest.param(b'["\\\\", "\\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["]', ["\\", '"' + "[" * 36], id="escapes"),
        pytest.param(b"[" + b"9" * 40 + b"]", [int("9" * 40)], id="40-digit number"),
        pytest.param(b"[-1.7976931348623157e+308]", [-1.7976931348623157e308], id="smallest float"),
        pytest.param('{"é": "ü"}'.encode(), {"é": "ü"}, id="UTF-8"),
        pytest.param('["\\ud800"]', ["\ud800"], id="lone surrogate escape, as json.loads"),
        pytest.param(b'"' + b"a" * 65536 + b'"', "a" * 65536, id="longest string"),
        pytest.param(b"[" + b"0," * 19_999 + b"0]", [0] * 20_000, id="most members"),
    ],
)
def test_documents_within_the_limits_decode_as_json_loads_does(data: bytes | str, expected: Any) -> None:
    assert boundedjson.loads(data) == expected == json.loads(data)


def test_a_string_counts_characters_not_bytes() -> None:
    # 40,000 two-byte characters: 80,000 bytes, but 40,000 characters, within the 65,536 limit.
    text = "é" * 40_000
    assert boundedjson.loads(json.dumps([text], ensure_ascii=False).encode()) == [text]


def test_loads_takes_text_as_well_as_bytes() -> None:
    assert boundedjson.loads('{"a": 1}') == {"a": 1}
    with pytest.raises(InvalidJSON, match="nested deeper than the limit of 32 levels"):
        boundedjson.loads("[" * 33 + "]" * 33)


def test_the_default_limits_are_the_documented_ones() -> None:
    documented = Limits(
        max_bytes=4 * 1024 * 1024, max_depth=32, max_number_chars=40, max_string_chars=65536, max_members=20_000
    )
    assert documented == boundedjson.DOCUMENT_LIMITS


# -- properties ------------------------------------------------------------------------------------


def _problem(data: bytes) -> str:
    """The refusal's message, or "" when ``data`` decodes; any other exception fails the test."""
    try:
        boundedjson.loads(data, SMALL)
    except InvalidJSON as error:
        return error.problem
    return ""


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_nothing_but_invalid_json(data: bytes) -> None:
    assert _problem(data).isprintable()


_JSON_ALPHABET = b'[]{}",:\\ 0123456789.eE+-tfnrualsNIy'


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(list(_JSON_ALPHABET)), max_size=200).map(bytes))
def test_json_shaped_noise_raises_nothing_but_invalid_json(data: bytes) -> None:
    # Bytes drawn from JSON's own characters reach far deeper into the parser than random bytes.
    assert _problem(data).isprintable()


_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
_DOCUMENTS = st.recursive(
    _SCALARS,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_DOCUMENTS, st.booleans())
def test_small_valid_documents_decode_as_json_loads_does(document: Any, ascii_only: bool) -> None:
    data = json.dumps(document, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    try:
        expected = json.loads(data)
    except ValueError:
        return  # a lone surrogate written raw is not UTF-8: json.loads refuses it too
    assert boundedjson.loads(data) == expected

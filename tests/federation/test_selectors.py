"""Label selectors: apimachinery's grammar and semantics."""

from __future__ import annotations

import pytest

from federation import selectors

LABELS = {"app": "web", "tier": "front", "version": "3"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", True),
        ("app=web", True),
        ("app==web", True),
        ("app!=web", False),
        ("missing!=x", True),
        ("app in (web, api)", True),
        ("app in (api)", False),
        ("app notin (api)", True),
        ("missing notin (api)", True),
        ("app", True),
        ("missing", False),
        ("!missing", True),
        ("!app", False),
        ("app=web,tier=front", True),
        ("app=web,tier=back", False),
        ("version>2", True),
        ("version<2", False),
        ("app.kubernetes.io/name", False),
    ],
)
def test_matches(text: str, expected: bool) -> None:
    assert selectors.matches(text, LABELS) is expected


def test_none_matches_everything_and_no_labels() -> None:
    assert selectors.matches(None, None)
    assert not selectors.matches("a=b", None)


def test_prefixed_keys_and_round_trip() -> None:
    parsed = selectors.parse("app.kubernetes.io/managed-by=istio-federation, !x , y in (a,b)")
    assert str(parsed) == "app.kubernetes.io/managed-by=istio-federation,!x,y in (a,b)"
    assert parsed.matches({"app.kubernetes.io/managed-by": "istio-federation", "y": "b"})


def test_empty_value_is_allowed() -> None:
    assert selectors.matches("a=", {"a": ""})
    assert selectors.matches("a in (x,)", {"a": ""})


def test_from_labels() -> None:
    assert selectors.from_labels({"b": "2", "a": "1"}) == "a=1,b=2"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a in ()", "for 'in' operator, values set can't be empty"),
        ("a in x", "found 'x', expected: '('"),
        ("a=b c", "found 'c', expected: ',' or 'end of string'"),
        ("=b", "found '=', expected: !, identifier, or 'end of string'"),
        ("a>x", "for 'gt', 'lt' operators, the value must be an integer: 'x'"),
        ("a in (x y)", "found 'y', expected: ',' or ')'"),
        ("a=b/c", 'invalid label value: "b/c"'),
        ("-a=b", 'invalid label key "-a"'),
    ],
)
def test_errors_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(selectors.SelectorError) as caught:
        selectors.parse(text)
    assert message in str(caught.value)

"""``federation.skipsummary`` and ``federation.remotetext``: whatever a remote sends, status stays small."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from federation import remotetext, skipsummary
from federation.skipsummary import SkipItem, SkipSummary


@dataclass(frozen=True)
class Skip:
    path: str
    subject: str
    reason: str
    message: str


def skips(count: int, reason: str = "InvalidHostname") -> list[Skip]:
    return [Skip(f"publicServices[{n}]", f"h{n}", reason, f"publicServices[{n}].hostname: bad") for n in range(count)]


def test_nothing_skipped_is_an_empty_summary() -> None:
    summary = skipsummary.summarise([])
    assert summary == skipsummary.EMPTY
    assert summary.to_status() == {"total": 0, "byReason": {}, "items": [], "omitted": 0}
    assert summary.message() == ""


def test_the_first_twenty_are_listed_and_every_one_is_counted() -> None:
    summary = skipsummary.summarise([*skips(25), *skips(5, "NoPorts"), *skips(12, "InvalidPortName")])

    assert summary.total == 42
    assert summary.by_reason == (("InvalidHostname", 25), ("InvalidPortName", 12), ("NoPorts", 5))
    assert len(summary.items) == 20
    assert summary.items[0] == SkipItem("publicServices[0]", "h0", "InvalidHostname", "publicServices[0].hostname: bad")
    assert summary.omitted == 22
    assert summary.to_status()["omitted"] == 22
    assert summary.message(what="services") == (
        "42 services skipped (25 InvalidHostname, 12 InvalidPortName, 5 NoPorts): h0: publicServices[0].hostname: "
        "bad; h1: publicServices[1].hostname: bad; h2: publicServices[2].hostname: bad; and 39 more"
    )


def test_the_limits_are_the_callers() -> None:
    summary = skipsummary.summarise(skips(3), limit=1)
    assert (len(summary.items), summary.omitted) == (1, 2)
    assert summary.message(shown=0) == "3 entries skipped (3 InvalidHostname)"
    assert summary.message(shown=5) == (
        "3 entries skipped (3 InvalidHostname): h0: publicServices[0].hostname: bad; and 2 more"
    )


def test_a_skip_without_subject_shows_its_message_only() -> None:
    summary = skipsummary.summarise([Skip("publicServices[7]", "", "NotAnObject", "publicServices[7]: not an object")])
    assert summary.message() == "1 entries skipped (1 NotAnObject): publicServices[7]: not an object"


def test_remote_text_is_cut_and_made_printable_everywhere() -> None:
    hostile = Skip(
        path="publicServices[0]\n",
        subject="evil\nInjected: 1\x00\u202e" + "x" * 10_000,
        reason="Bad\nReason" + "R" * 100,
        message="m\r\n" * 10_000,
    )
    summary = skipsummary.summarise([hostile])
    item = summary.items[0]
    assert item.path == "publicServices[0]?"
    assert item.subject == "evil?Injected: 1??" + "x" * 110 + "..."
    assert item.reason == "Bad?Reason" + "R" * 54 + "..."
    assert item.message == "m??" * 133 + "m..."
    status = json.dumps(summary.to_status())
    assert all(field.isprintable() for field in (item.path, item.subject, item.reason, item.message))
    assert len(status) < 1000
    assert summary.message().isprintable()
    assert len(summary.message()) <= skipsummary.LINE_LIMIT + 3


def test_free_text_reasons_are_counted_in_a_bounded_number_of_counters() -> None:
    summary = skipsummary.summarise([Skip(f"p[{n}]", "", f"Reason{n:03d}", "m") for n in range(100)])
    assert len(summary.by_reason) == skipsummary.MAX_REASONS
    assert summary.by_reason[-1] == ("Other", 81)
    assert sum(count for _, count in summary.by_reason) == 100


def test_thirty_thousand_skips_make_a_status_of_a_few_kilobytes() -> None:
    long_message = "publicServices[0].hostname: Invalid value: " + "a" * 5000
    summary = skipsummary.summarise(
        Skip(f"publicServices[{n}]", "a" * 300, "InvalidHostname", long_message) for n in range(30_000)
    )
    assert summary.total == 30_000
    assert len(json.dumps(summary.to_status())) < 20_000


def test_summary_is_a_value() -> None:
    summary = skipsummary.summarise(skips(2))
    assert summary == SkipSummary(
        2,
        (("InvalidHostname", 2),),
        (
            SkipItem("publicServices[0]", "h0", "InvalidHostname", "publicServices[0].hostname: bad"),
            SkipItem("publicServices[1]", "h1", "InvalidHostname", "publicServices[1].hostname: bad"),
        ),
    )


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short", 10, "short"),
        ("a\nb\tc\x00d\x7fe\u2028f\u202eg\ud800h", 100, "a?b?c?d?e?f?g?h"),
        ("x" * 20, 5, "xxxxx..."),
        ("héllo wörld", 100, "héllo wörld"),
    ],
    ids=["short", "control and invisible characters", "cut", "printable non-ASCII is kept"],
)
def test_printable(text: str, limit: int, expected: str) -> None:
    assert remotetext.printable(text, limit) == expected


def test_excerpt_cuts_without_escaping() -> None:
    assert remotetext.excerpt("a\n" * 40) == "a\n" * 32 + "..."
    assert remotetext.excerpt("short\n") == "short\n"

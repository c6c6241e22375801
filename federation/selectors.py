"""Kubernetes label selectors: parse the string form and match it against a label map.

Both object-store backends filter cached objects with this (the Kubernetes API is never asked to
LIST per call), so it follows apimachinery's grammar: ``a=b``, ``a==b``, ``a!=b``,
``a in (x, y)``, ``a notin (x)``, ``a`` (exists), ``!a`` (does not exist), ``a>1``, ``a<1``,
joined by commas, all of which must hold.  Errors name the offending token and what was expected,
in the words apimachinery uses, so a bad selector reads the same whatever backend rejected it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

EQUALS = "="
NOT_EQUALS = "!="
IN = "in"
NOT_IN = "notin"
EXISTS = "exists"
DOES_NOT_EXIST = "!"
GREATER_THAN = "gt"
LESS_THAN = "lt"

# Matched with fullmatch: Python's $ also matches before a final newline.
_NAME_RE = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_PREFIX_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_VALUE_RE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
# Characters that end an identifier; anything else (including '/', '.', '_') belongs to it.
_SPECIAL = set(" \t\r\n,=!()<>")


class SelectorError(ValueError):
    """The selector text is malformed; the message says where and what was expected."""


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.operator == EXISTS:
            return present
        if self.operator == DOES_NOT_EXIST:
            return not present
        if self.operator in (EQUALS, IN):
            return present and value in self.values
        if self.operator in (NOT_EQUALS, NOT_IN):
            # Kubernetes semantics: an absent key satisfies "!=" and "notin".
            return not present or value not in self.values
        if not present or value is None:
            return False
        try:
            actual = int(value)
        except ValueError:
            return False
        bound = int(self.values[0])
        return actual > bound if self.operator == GREATER_THAN else actual < bound

    def __str__(self) -> str:
        if self.operator == EXISTS:
            return self.key
        if self.operator == DOES_NOT_EXIST:
            return f"!{self.key}"
        if self.operator in (IN, NOT_IN):
            return f"{self.key} {self.operator} ({','.join(self.values)})"
        symbol = {EQUALS: "=", NOT_EQUALS: "!=", GREATER_THAN: ">", LESS_THAN: "<"}[self.operator]
        return f"{self.key}{symbol}{self.values[0]}"


@dataclass(frozen=True)
class Selector:
    """All requirements must hold; the empty selector matches everything."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        current = labels or {}
        return all(requirement.matches(current) for requirement in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements

    def __str__(self) -> str:
        return ",".join(str(requirement) for requirement in self.requirements)


def parse(text: str | None) -> Selector:
    """Parse a selector string; ``None`` and ``""`` give the selector that matches everything."""
    if text is None or not text.strip():
        return Selector()
    return Selector(tuple(_Parser(_tokenize(text)).requirements()))


def matches(selector: str | None, labels: Mapping[str, str] | None) -> bool:
    return parse(selector).matches(labels)


def from_labels(labels: Mapping[str, str]) -> str:
    """The equality selector that matches exactly these labels (and possibly more)."""
    return ",".join(f"{key}={labels[key]}" for key in sorted(labels))


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    position = 0
    while position < len(text):
        char = text[position]
        if char.isspace():
            position += 1
            continue
        two = text[position : position + 2]
        if two in ("==", "!="):
            tokens.append(two)
            position += 2
            continue
        if char in _SPECIAL:
            tokens.append(char)
            position += 1
            continue
        end = position
        while end < len(text) and text[end] not in _SPECIAL:
            end += 1
        tokens.append(text[position:end])
        position = end
    return tokens


def _is_identifier(token: str | None) -> bool:
    return token is not None and token not in _SPECIAL and token not in ("==", "!=")


class _Parser:
    def __init__(self, tokens: list[str]) -> None:
        self._tokens = tokens
        self._position = 0

    def _peek(self) -> str | None:
        return self._tokens[self._position] if self._position < len(self._tokens) else None

    def _next(self) -> str | None:
        token = self._peek()
        self._position += 1
        return token

    @staticmethod
    def _found(token: str | None) -> str:
        return "end of string" if token is None else token

    def requirements(self) -> list[Requirement]:
        result: list[Requirement] = []
        while True:
            result.append(self._requirement())
            token = self._next()
            if token is None:
                return result
            if token != ",":
                raise SelectorError(f"found '{token}', expected: ',' or 'end of string'")

    def _requirement(self) -> Requirement:
        token = self._next()
        if token == "!":
            key = self._next()
            if not _is_identifier(key):
                raise SelectorError(f"found '{self._found(key)}', expected: identifier after '!'")
            assert key is not None
            _check_key(key)
            return Requirement(key, DOES_NOT_EXIST)
        if not _is_identifier(token):
            raise SelectorError(f"found '{self._found(token)}', expected: !, identifier, or 'end of string'")
        assert token is not None
        key = token
        _check_key(key)
        operator = self._peek()
        if operator in (None, ","):
            return Requirement(key, EXISTS)
        self._position += 1
        if operator in ("=", "=="):
            return Requirement(key, EQUALS, (self._single_value(),))
        if operator == "!=":
            return Requirement(key, NOT_EQUALS, (self._single_value(),))
        if operator in (">", "<"):
            value = self._single_value()
            if not re.fullmatch(r"-?[0-9]+", value):
                raise SelectorError(f"for 'gt', 'lt' operators, the value must be an integer: '{value}'")
            return Requirement(key, GREATER_THAN if operator == ">" else LESS_THAN, (value,))
        if operator in (IN, NOT_IN):
            return Requirement(key, operator, self._value_set(operator))
        raise SelectorError(f"found '{operator}', expected: in, notin, =, ==, !=, gt, lt")

    def _single_value(self) -> str:
        token = self._peek()
        if token in (None, ","):
            return _check_value("")
        if not _is_identifier(token):
            raise SelectorError(f"found '{token}', expected: identifier")
        self._position += 1
        assert token is not None
        return _check_value(token)

    def _value_set(self, operator: str) -> tuple[str, ...]:
        token = self._next()
        if token != "(":
            raise SelectorError(f"found '{self._found(token)}', expected: '('")
        values: list[str] = []
        while True:
            token = self._next()
            if token == ")" and not values:
                raise SelectorError(f"for '{operator}' operator, values set can't be empty")
            if token in (",", ")"):
                # An empty member, as in "a in (x,,y)", is the empty value, which is valid.
                values.append("")
            elif _is_identifier(token):
                assert token is not None
                values.append(_check_value(token))
                token = self._next()
            else:
                raise SelectorError(f"found '{self._found(token)}', expected: identifier, ',' or ')'")
            if token == ")":
                return tuple(values)
            if token != ",":
                raise SelectorError(f"found '{self._found(token)}', expected: ',' or ')'")


def _check_key(key: str) -> None:
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _PREFIX_RE.fullmatch(prefix)):
        raise SelectorError(f'invalid label key "{key}": prefix part must be a lowercase RFC 1123 subdomain')
    if not name or len(name) > 63 or not _NAME_RE.fullmatch(name):
        raise SelectorError(
            f"invalid label key \"{key}\": name part must consist of alphanumeric characters, '-', '_' "
            "or '.', and must start and end with an alphanumeric character, at most 63 characters"
        )


def _check_value(value: str) -> str:
    if len(value) > 63 or not _VALUE_RE.fullmatch(value):
        raise SelectorError(
            f'invalid label value: "{value}": a valid label must be an empty string or consist of '
            "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
            "character, at most 63 characters"
        )
    return value

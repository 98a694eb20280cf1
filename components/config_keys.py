"""How a stack config key is declared: on its dataclass field, with its parser and one line of docs.

`key(...)` is a `dataclasses.field` whose metadata names the key, so each key's type (the field's
annotation), default, parser and documentation are written once, on the field that holds it.
`CONFIG_KEYS`, `parse_keys` and the README's configuration table are read off those fields.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from facts.stack import CONFIG_NAMESPACE as NAMESPACE

_TRUE = ("true", "yes", "1")
_FALSE = ("false", "no", "0")


class ConfigError(ValueError):
    """A stack config value is invalid; the message names the key, the value and what is allowed."""


def qualified(name: str) -> str:
    """The key as `pulumi config` shows it: `embedding-endpoint:memorySizeMb`."""
    return f"{NAMESPACE}:{name}"


def invalid(name: str, value: object, allowed: str) -> ConfigError:
    """The one shape of every value error: the key, the value, what is allowed."""
    return ConfigError(f"config key '{qualified(name)}' has invalid value {value!r}: {allowed}")


_INTEGER = re.compile(r"-?[0-9]+")


@dataclass(frozen=True)
class Integer:
    """An integer, optionally within `low`-`high` or one of `values`; `unit` ends the message."""

    low: int | None = None
    high: int | None = None
    values: tuple[int, ...] = ()
    unit: str = ""
    allowed_text: str = ""

    @property
    def allowed(self) -> str:
        if self.allowed_text:
            return self.allowed_text
        if self.values:
            text = f"expected one of {', '.join(map(str, self.values))}"
        else:
            text = f"expected an integer {self.low}-{self.high}"
        return f"{text} ({self.unit})" if self.unit else text

    def __call__(self, name: str, text: str) -> int:
        # ASCII digits only: int() would also take "2_048", "+5" and other scripts' digits.
        if not _INTEGER.fullmatch(text.strip()):
            raise invalid(name, text, self.allowed)
        value = int(text.strip())
        in_range = self.low is None or self.high is None or self.low <= value <= self.high
        if not in_range or (self.values and value not in self.values):
            raise invalid(name, value, self.allowed)
        return value


@dataclass(frozen=True)
class Boolean:
    """true/false, yes/no, 1/0 (any case)."""

    def __call__(self, name: str, text: str) -> bool:
        value = text.strip().lower()
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise invalid(name, text, "expected true or false")


@dataclass(frozen=True)
class Choice:
    """One of a fixed set of words."""

    values: tuple[str, ...]

    def __call__(self, name: str, text: str) -> str:
        if text not in self.values:
            raise invalid(name, text, f"expected one of {', '.join(self.values)}")
        return text


@dataclass(frozen=True)
class Checked:
    """A string that `problem` accepts (it returns None, else why not), e.g. an identifier rule's
    (facts/identifiers.py)."""

    problem: Callable[[str], str | None]

    def __call__(self, name: str, text: str) -> str:
        problem = self.problem(text)
        if problem:
            raise invalid(name, text, problem)
        return text


@dataclass(frozen=True)
class Text:
    """Any string (a cross-field rule may judge it); `strip` removes surrounding blanks."""

    strip: bool = False

    def __call__(self, name: str, text: str) -> str:
        return text.strip() if self.strip else text


Parser = Callable[[str, str], Any]


@dataclass(frozen=True)
class ConfigKey:
    """One key: its name, its parser, one line of docs, and how the docs show its default."""

    name: str
    parse: Parser
    doc: str
    shown_default: str | None = None


def key(
    name: str,
    default: Any,
    parse: Parser,
    doc: str,
    *,
    shown_default: str | None = None,
    repr: bool = True,  # noqa: A002 - the dataclasses.field argument it passes on
) -> Any:
    """A dataclass field that is read from config key `name` (unset or empty: `default`)."""
    spec = ConfigKey(name, parse, doc, shown_default)
    return dataclasses.field(default=default, repr=repr, metadata={"config_key": spec})


def declared(cls: type) -> Iterator[tuple[dataclasses.Field[Any], ConfigKey]]:
    """Each field of `cls` that is a config key, with its declaration, in field order."""
    for item in dataclasses.fields(cls):
        spec = item.metadata.get("config_key")
        if spec is not None:
            yield item, spec


def parse_keys(cls: type, raw: Mapping[str, str]) -> dict[str, Any]:
    """The field values of `cls`'s keys: each parsed from `raw`, or its default when unset."""
    values = {}
    for item, spec in declared(cls):
        text = raw.get(spec.name)
        if text is None or text == "":
            values[item.name] = item.default
        else:
            values[item.name] = spec.parse(spec.name, str(text))
    return values


def set_away_from_default(cls: type, raw: Mapping[str, str]) -> dict[str, str]:
    """The raw values of `cls`'s keys that are set to something other than the key's default.

    A key written out at its default (`modelRevision: main`, `httpApiAuth: iam`) changes
    nothing, so no rule that refuses an unread key refuses it.
    """
    found = {}
    for item, spec in declared(cls):
        text = raw.get(spec.name)
        if text not in (None, "") and spec.parse(spec.name, str(text)) != item.default:
            found[spec.name] = str(text)
    return found


def shown_default(item: dataclasses.Field[Any], spec: ConfigKey) -> str:
    """The default as the docs' tables show it."""
    if spec.shown_default is not None:
        return spec.shown_default
    if isinstance(item.default, bool):
        return f"`{str(item.default).lower()}`"
    return "none" if item.default is None else f"`{item.default}`"


def markdown_table(*classes: type) -> str:
    """The configuration table of the README: key, default and rule of every declared key."""
    rows = ["| key | default | rule |", "|---|---|---|"]
    for cls in classes:
        for item, spec in declared(cls):
            rows.append(f"| `{spec.name}` | {shown_default(item, spec)} | {spec.doc} |")
    return "\n".join(rows) + "\n"

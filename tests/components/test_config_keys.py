"""The config keys are declared once: the README's table, the docs' table and CONFIG_KEYS follow."""

from __future__ import annotations

import re
from dataclasses import Field
from pathlib import Path
from typing import Any

import pytest

from components.config import CONFIG_KEYS, StackConfig
from components.config_keys import (
    ConfigError,
    ConfigKey,
    Integer,
    declared,
    markdown_table,
    shown_default,
)
from components.endpoint_monitoring import AlarmThresholds

ROOT = Path(__file__).resolve().parents[2]
DECLARED = [pair for cls in (StackConfig, AlarmThresholds) for pair in declared(cls)]
DEFAULTED = [(item, spec) for item, spec in DECLARED if item.default is not None]
ROW = re.compile(r"^\| `([A-Za-z0-9]+)` \| ([^|]*) \|", re.MULTILINE)


def test_the_readme_table_is_the_one_the_declarations_make() -> None:
    expected = markdown_table(StackConfig, AlarmThresholds)
    assert expected in (ROOT / "README.md").read_text(encoding="utf-8"), (
        "README.md's configuration table differs from the keys declared on StackConfig and "
        f"AlarmThresholds; replace it with:\n{expected}"
    )


def test_the_configuration_doc_lists_every_declared_key_and_no_other() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    documented = [name for name, _ in ROW.findall(text)]
    assert sorted(documented) == sorted(CONFIG_KEYS)


@pytest.mark.parametrize(("item", "spec"), DECLARED, ids=[spec.name for _, spec in DECLARED])
def test_the_configuration_doc_shows_the_declared_default(
    item: Field[Any], spec: ConfigKey
) -> None:
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    cell = dict(ROW.findall(text))[spec.name].strip()
    if item.default is None and spec.shown_default is None:
        assert cell.startswith("none"), f"{spec.name}: docs show {cell!r}, declared None"
    elif item.default is None:
        assert cell.startswith(("none", "(required", spec.shown_default)), cell
    else:
        assert cell == shown_default(item, spec), f"{spec.name}: docs show {cell!r}"


@pytest.mark.parametrize(("item", "spec"), DEFAULTED, ids=[spec.name for _, spec in DEFAULTED])
def test_each_declared_default_passes_its_own_parser(item: Field[Any], spec: ConfigKey) -> None:
    text = str(item.default).lower() if isinstance(item.default, bool) else str(item.default)
    assert spec.parse(spec.name, text) == item.default


def test_an_integer_outside_its_values_names_the_key_value_and_allowed_values() -> None:
    with pytest.raises(ConfigError) as caught:
        Integer(values=(1, 3), unit="days")("logRetentionDays", " 2 ")
    assert str(caught.value) == (
        "config key 'embedding-endpoint:logRetentionDays' has invalid value 2: "
        "expected one of 1, 3 (days)"
    )


def test_a_non_integer_is_refused_as_written() -> None:
    with pytest.raises(ConfigError) as caught:
        Integer(1, 200)("maxConcurrency", "five")
    assert "has invalid value 'five': expected an integer 1-200" in str(caught.value)

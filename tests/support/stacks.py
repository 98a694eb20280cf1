"""The repository's stack files as the engine hands them to the program."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def stack_config(stack: str, **overrides: str) -> dict[str, str]:
    """A stack file's config as the engine hands it to the program: every value a string."""
    raw = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]

    def as_text(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (dict, list)):
            return json.dumps(value)
        return str(value)

    config = {key: as_text(value) for key, value in raw.items()}
    config.update({f"embedding-endpoint:{key}": value for key, value in overrides.items()})
    return config

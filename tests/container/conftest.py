"""The container's script imported as the toolkit imports it, and the reference model it loads."""

from __future__ import annotations

import pytest

from tests.support.models import REFERENCE_MODEL_DIR, import_inference


@pytest.fixture(scope="module")
def inference():
    return import_inference()


@pytest.fixture(scope="module")
def loaded(inference):
    return inference.model_fn(str(REFERENCE_MODEL_DIR))

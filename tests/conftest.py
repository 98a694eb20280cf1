"""Shared fixtures: each lives in its own module under tests/fixtures and is registered here."""

pytest_plugins = [
    "tests.fixtures.aws",
    "tests.fixtures.hub",
    "tests.fixtures.pulumi_mocks",
]

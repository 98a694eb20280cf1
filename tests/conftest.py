"""Shared fixtures: each lives in its own module under tests/fixtures and is registered here."""

pytest_plugins = [
    "tests.fixtures.aws",
    "tests.fixtures.api_key",
    "tests.fixtures.aws_proxy",
    "tests.fixtures.artifacts",
    "tests.fixtures.hub",
    "tests.fixtures.onnx_export",
    "tests.fixtures.lambda_api",
    "tests.fixtures.bedrock_api",
    "tests.fixtures.local_endpoint",
    "tests.fixtures.pulumi_mocks",
    "tests.fixtures.sagemaker_runtime",
    "tests.fixtures.transform_jobs",
    "tests.fixtures.dlc",
]

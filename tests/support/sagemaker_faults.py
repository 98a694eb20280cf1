"""A thin fault layer over moto's SageMaker: the failures a real account produces, on demand.

moto answers SageMaker's control plane (models, endpoint configurations, endpoints) but every
endpoint it creates is `InService` at once, it has no UpdateEndpoint, and a second CreateEndpoint
with a taken name silently replaces the first. The tests need what SageMaker documents instead:

- an update whose new variant fails its health check is rolled back: the endpoint returns to
  `InService` on the *old* EndpointConfigName with FailureReason set (DescribeEndpoint);
- a create that never becomes healthy leaves the endpoint `Failed`; only DeleteEndpoint works;
- CreateEndpoint with the name of an existing endpoint is refused
  ("Cannot create already existing endpoint");
- the provider's Delete tolerates an endpoint that is already gone (terraform-provider-aws:
  "Could not find endpoint" is success) and waits while it is `Deleting`.

ThreadedMotoServer runs in the test's process, so this layer edits moto's state directly; what
the production code sees is still moto's HTTP API through boto3.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError
from moto.backends import get_backend

from facts.sagemaker_endpoints import ARTIFACT_SHA256_VARIABLE, VARIANT_NAME
from tests.fixtures.aws import AwsEndpoint

MOTO_ACCOUNT = "123456789012"
EXECUTION_ROLE = f"arn:aws:iam::{MOTO_ACCOUNT}:role/embedding-role"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-inference:2.1.0"
HEALTH_CHECK_FAILURE = (
    "The primary container for production variant AllTraffic did not pass the ping health "
    "check. Please check CloudWatch logs for this endpoint."
)
OUT_OF_MEMORY_FAILURE = (
    "Memory size is insufficient to load the model: the container was stopped while loading "
    "model_fn (out of memory). Please check CloudWatch logs for this endpoint."
)


@dataclass(frozen=True)
class Deployed:
    """What one simulated deploy created: its Model and EndpointConfiguration."""

    model_name: str
    config_name: str
    artifact_sha256: str


class SageMakerFaults:
    """SageMaker's documented failure behaviour, played on moto's in-process state."""

    def __init__(self, aws: AwsEndpoint, client: Any = None, account: str = MOTO_ACCOUNT) -> None:
        """`client` and `account`: another account's SageMaker (credentials of a role in it)."""
        self.aws = aws
        self.client = client or aws.client("sagemaker")
        self.backend = get_backend("sagemaker")[account][aws.region]
        self.created: list[Deployed] = []

    # --- what a deploy creates before the endpoint ---------------------------------------------

    def model_and_config(self, prefix: str, artifact_sha256: str) -> Deployed:
        """A Model recording `artifact_sha256` and a serverless EndpointConfiguration serving it."""
        model_name, config_name = f"{prefix}-model", f"{prefix}-config"
        self.client.create_model(
            ModelName=model_name,
            ExecutionRoleArn=EXECUTION_ROLE,
            PrimaryContainer={
                "Image": IMAGE,
                "ModelDataUrl": f"s3://artifacts/models/{prefix}/model.tar.gz",
                "Environment": {ARTIFACT_SHA256_VARIABLE: artifact_sha256},
            },
        )
        self.client.create_endpoint_config(
            EndpointConfigName=config_name,
            ProductionVariants=[
                {
                    "VariantName": VARIANT_NAME,
                    "ModelName": model_name,
                    "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 2},
                }
            ],
        )
        deployed = Deployed(model_name, config_name, artifact_sha256)
        self.created.append(deployed)
        return deployed

    # --- the endpoint, as SageMaker treats it --------------------------------------------------

    def endpoint(self, name: str) -> Any:
        """moto's record of the endpoint (status, failure_reason, endpoint_config_name)."""
        return self.backend.endpoints[name]

    def exists(self, name: str) -> bool:
        return name in self.backend.endpoints

    def create_endpoint(
        self, name: str, config_name: str, tags: dict[str, str] | None = None
    ) -> None:
        """CreateEndpoint as SageMaker answers it: a taken name is refused (moto overwrites)."""
        if self.exists(name):
            arn = self.endpoint(name).arn
            raise ClientError(
                {
                    "Error": {
                        "Code": "ValidationException",
                        "Message": f'Cannot create already existing endpoint "{arn}".',
                    }
                },
                "CreateEndpoint",
            )
        tagged = [{"Key": key, "Value": value} for key, value in (tags or {}).items()]
        self.client.create_endpoint(EndpointName=name, EndpointConfigName=config_name, Tags=tagged)

    def fail_creation(self, name: str, reason: str = HEALTH_CHECK_FAILURE) -> None:
        """The variant never became healthy: the endpoint stays `Failed`."""
        record = self.endpoint(name)
        record.endpoint_status = "Failed"
        record.failure_reason = reason

    def update_endpoint(self, name: str, config_name: str) -> None:
        """An UpdateEndpoint that succeeds (moto does not implement UpdateEndpoint).

        A `Failed` endpoint refuses it: DeleteEndpoint is the only operation it accepts.
        """
        record = self.endpoint(name)
        if record.endpoint_status == "Failed":
            raise ClientError(
                {
                    "Error": {
                        "Code": "ValidationException",
                        "Message": f'Cannot update in-progress or failed endpoint "{record.arn}".',
                    }
                },
                "UpdateEndpoint",
            )
        record.endpoint_config_name = config_name
        record.endpoint_status = "InService"
        record.failure_reason = None

    def roll_back_update(self, name: str, reason: str = HEALTH_CHECK_FAILURE) -> None:
        """An UpdateEndpoint whose new variant failed its health check, after SageMaker's rollback.

        The endpoint keeps its old configuration, is `InService` again, and says why.
        """
        record = self.endpoint(name)
        record.endpoint_status = "InService"
        record.failure_reason = reason

    def provider_delete(self, name: str) -> None:
        """What the provider's Delete does: DeleteEndpoint, "not found" counts as deleted."""
        if self.exists(name):
            self.client.delete_endpoint(EndpointName=name)

    def set_status(self, name: str, status: str) -> None:
        self.endpoint(name).endpoint_status = status

    def remove(self, name: str) -> None:
        """The endpoint is gone (a deletion SageMaker finished)."""
        self.backend.endpoints.pop(name, None)

    def cleanup(self, *endpoint_names: str) -> None:
        """Forget the given endpoints and every configuration and model made here."""
        for name in endpoint_names:
            self.remove(name)
        for deployed in self.created:
            self.backend.endpoint_configs.pop(deployed.config_name, None)
            self.backend._models.pop(deployed.model_name, None)

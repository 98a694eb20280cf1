"""EndpointRecord: the endpoint the state holds, recorded where the guard reads it (moto)."""

from __future__ import annotations

import json
import uuid

from components.endpoint_record import EndpointRecordProvider, read_record, record_key
from tests.fixtures.aws import AwsEndpoint
from tests.support.sagemaker_faults import SageMakerFaults

SHA = "e" * 64


def test_the_record_names_the_live_endpoint_and_goes_with_the_resource(
    aws: AwsEndpoint, s3_bucket: str
) -> None:
    name = f"embedding-endpoint-{uuid.uuid4().hex[:8]}"
    faults = SageMakerFaults(aws)
    try:
        deployed = faults.model_and_config("recorded", SHA)
        faults.create_endpoint(name, deployed.config_name)
        key = record_key("models/", name)
        props = {
            "endpoint_name": name,
            "endpoint_config_name": deployed.config_name,
            "bucket": s3_bucket,
            "record_key": key,
            "region": aws.region,
            "aws_profile": None,
            "aws_assume_roles": [],
            "aws_endpoints": {"sagemaker": aws.url, "s3": aws.url},
        }
        created = EndpointRecordProvider().create(props)
        s3 = aws.client("s3")
        record = json.loads(s3.get_object(Bucket=s3_bucket, Key=key)["Body"].read())
        assert record["identity"].startswith(faults.endpoint(name).arn + " created ")
        assert read_record(s3, s3_bucket, key) == created.outs["identity"]
        EndpointRecordProvider().delete(created.id, created.outs)
        assert read_record(s3, s3_bucket, key) == ""
    finally:
        faults.cleanup(name)


def test_the_record_key_lives_beside_the_models_of_the_stacks_prefix() -> None:
    assert record_key("models/", "embedding-endpoint-dev") == (
        "models/_endpoints/embedding-endpoint-dev.json"
    )

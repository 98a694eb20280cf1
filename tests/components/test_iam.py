"""Policy documents: each grant is scoped to the bucket prefix, repository or log group given."""

from __future__ import annotations

import pytest

from components import iam
from facts.sagemaker_endpoints import endpoint_log_group

BUCKET_ARN = "arn:aws:s3:::artifacts-1234567"
REPOSITORY_ARN = "arn:aws:ecr:us-east-1:763104351884:repository/huggingface-pytorch-inference"
LOG_GROUP_ARN = iam.log_group_arn(
    "us-east-1", "123456789012", endpoint_log_group("embedding-endpoint-dev")
)


def _actions(statement: iam.Statement) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def _resources(statement: iam.Statement) -> list[str]:
    resource = statement["Resource"]
    return [resource] if isinstance(resource, str) else list(resource)


@pytest.fixture
def execution_policy() -> iam.PolicyDocument:
    return iam.sagemaker_execution_policy(
        bucket_arn=BUCKET_ARN,
        artifact_prefix="models/org/name/",
        repository_arn=REPOSITORY_ARN,
        log_group_arn=LOG_GROUP_ARN,
    )


def test_trust_policy_allows_only_the_given_service_to_assume() -> None:
    (statement,) = iam.assume_role_policy("sagemaker.amazonaws.com")["Statement"]
    assert statement["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert statement["Action"] == "sts:AssumeRole"
    assert "Condition" not in statement


def test_trust_policy_names_the_source_account_and_arns_it_is_given() -> None:
    (statement,) = iam.assume_role_policy(
        "sagemaker.amazonaws.com",
        source_account="123456789012",
        source_arn=iam.sagemaker_source_arn("cn-north-1", "123456789012"),
    )["Statement"]
    assert statement["Condition"] == {
        "StringEquals": {"aws:SourceAccount": "123456789012"},
        "ArnLike": {"aws:SourceArn": "arn:aws-cn:sagemaker:cn-north-1:123456789012:*"},
    }


def test_read_prefix_grants_get_object_under_the_prefix_only() -> None:
    read, _ = iam.s3_read_prefix_statements(BUCKET_ARN, "models/org/name/")
    assert _actions(read) == ["s3:GetObject"]
    assert _resources(read) == [f"{BUCKET_ARN}/models/org/name/*"]


def test_listing_is_limited_to_the_prefix_by_condition() -> None:
    _, listing = iam.s3_read_prefix_statements(BUCKET_ARN, "models/")
    assert _actions(listing) == ["s3:ListBucket"]
    assert _resources(listing) == [BUCKET_ARN]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["models/*"]}}


def test_write_prefix_grants_put_and_delete_under_the_prefix_only() -> None:
    write = iam.s3_write_objects_statement(BUCKET_ARN, "models/")
    assert {"s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"} <= set(_actions(write))
    assert _resources(write) == [f"{BUCKET_ARN}/models/*"]


@pytest.mark.parametrize("prefix", ["", "/models/", "models/*"])
def test_a_prefix_that_would_widen_the_grant_is_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        iam.s3_read_prefix_statements(BUCKET_ARN, prefix)


def test_execution_policy_has_no_s3_action_on_a_wildcard_resource(
    execution_policy: iam.PolicyDocument,
) -> None:
    for statement in execution_policy["Statement"]:
        if any(action.startswith("s3:") for action in _actions(statement)):
            assert all(r.startswith(BUCKET_ARN) for r in _resources(statement)), statement
            assert "s3:*" not in _actions(statement)


def test_only_the_ecr_token_and_conditioned_metrics_are_granted_on_star(
    execution_policy: iam.PolicyDocument,
) -> None:
    on_star = [s for s in execution_policy["Statement"] if "*" in _resources(s)]
    unconditioned = [_actions(s) for s in on_star if "Condition" not in s]
    assert unconditioned == [["ecr:GetAuthorizationToken"]]


def test_the_role_may_put_metrics_in_sagemakers_namespaces_only(
    execution_policy: iam.PolicyDocument,
) -> None:
    metrics = [
        s for s in execution_policy["Statement"] if "cloudwatch:PutMetricData" in _actions(s)
    ]
    (statement,) = metrics
    assert _actions(statement) == ["cloudwatch:PutMetricData"]
    assert statement["Condition"] == {"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}}


def test_image_pull_is_scoped_to_the_dlc_repository(execution_policy: iam.PolicyDocument) -> None:
    pulls = [s for s in execution_policy["Statement"] if "ecr:BatchGetImage" in _actions(s)]
    assert [_resources(s) for s in pulls] == [[REPOSITORY_ARN]]


def test_logs_are_scoped_to_the_endpoint_log_group(execution_policy: iam.PolicyDocument) -> None:
    logs = [
        s for s in execution_policy["Statement"] if any(a.startswith("logs:") for a in _actions(s))
    ]
    resources = {r for s in logs for r in _resources(s)}
    assert resources == {
        "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/"
        "embedding-endpoint-dev",
        "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/"
        "embedding-endpoint-dev:*",
    }


def test_bucket_policy_denies_every_request_without_tls() -> None:
    (statement,) = iam.deny_insecure_transport_policy(BUCKET_ARN)["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Principal"] == "*"
    assert _resources(statement) == [BUCKET_ARN, f"{BUCKET_ARN}/*"]
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


@pytest.mark.parametrize(
    ("region", "partition"),
    [("us-east-1", "aws"), ("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov")],
)
def test_arns_are_built_in_the_partition_of_the_region(region: str, partition: str) -> None:
    assert iam.log_group_arn(region, "123456789012", "/g").startswith(f"arn:{partition}:logs:")
    source = iam.s3_object_arn(region, "s3://training/out/model.tar.gz")
    assert source == f"arn:{partition}:s3:::training/out/model.tar.gz"


def batch_statements(region: str = "us-east-1") -> dict[str, dict]:
    statements = iam.batch_transform_statements(
        region=region,
        input_url="s3://corpus/in/",
        output_url="s3://vectors/out/",
        log_group_arn=iam.log_group_arn(region, "123456789012", iam.SAGEMAKER_TRANSFORM_LOG_GROUP),
        job_name_prefix="embedding-endpoint-dev-batch-",
    )
    return {statement["Sid"]: statement for statement in statements}


def test_batch_transform_reads_and_lists_only_its_input_folder() -> None:
    statements = batch_statements()
    assert statements["ReadBatchInput"]["Action"] == ["s3:GetObject"]
    assert statements["ReadBatchInput"]["Resource"] == "arn:aws:s3:::corpus/in/*"
    listing = statements["ListBatchInput"]
    assert listing["Resource"] == "arn:aws:s3:::corpus"
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["in/*"]}}


def test_batch_transform_writes_only_its_output_folder_and_never_reads_or_deletes_it() -> None:
    write = batch_statements()["WriteBatchOutput"]
    assert write["Resource"] == "arn:aws:s3:::vectors/out/*"
    assert sorted(write["Action"]) == ["s3:AbortMultipartUpload", "s3:PutObject"]


def test_batch_transform_logs_only_to_streams_of_the_stacks_jobs() -> None:
    statements = batch_statements("eu-west-1")
    group = "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/sagemaker/TransformJobs"
    assert statements["CreateTransformLogGroup"]["Resource"] == group
    assert statements["WriteTransformLogs"]["Resource"] == (
        f"{group}:log-stream:embedding-endpoint-dev-batch-*"
    )


def test_batch_transform_arns_follow_the_partition_of_the_region() -> None:
    statements = batch_statements("cn-north-1")
    assert statements["ReadBatchInput"]["Resource"] == "arn:aws-cn:s3:::corpus/in/*"


# The actions of SageMaker's "CreateModel API: Execution Role Permissions" (Developer Guide,
# sagemaker-roles.html#sagemaker-roles-createmodel-perms).
CREATE_MODEL_DOCUMENTED_ACTIONS = {
    "cloudwatch:PutMetricData",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "logs:CreateLogGroup",
    "logs:DescribeLogStreams",
    "s3:GetObject",
    "s3:ListBucket",
    "ecr:GetAuthorizationToken",
    "ecr:BatchCheckLayerAvailability",
    "ecr:GetDownloadUrlForLayer",
    "ecr:BatchGetImage",
}


def test_the_execution_role_has_every_action_aws_documents_for_create_model(
    execution_policy: iam.PolicyDocument,
) -> None:
    granted = {a for s in execution_policy["Statement"] for a in _actions(s)}
    assert CREATE_MODEL_DOCUMENTED_ACTIONS <= granted


def _loader_policy(**names: str) -> iam.PolicyDocument:
    return iam.loader_policy(
        region="eu-west-1",
        bucket_arn=BUCKET_ARN,
        key_prefix="models/",
        log_group_arn=LOG_GROUP_ARN,
        **names,
    )


def test_the_loader_decrypts_nothing_when_it_reads_no_secret_and_no_source_archive() -> None:
    actions = {a for s in _loader_policy()["Statement"] for a in _actions(s)}
    assert not any(action.startswith("kms:") for action in actions)


@pytest.mark.parametrize(
    ("names", "services"),
    [
        (
            {"hf_token_secret_arn": "arn:aws:secretsmanager:eu-west-1:1:secret:hf-AbCdEf"},
            ["secretsmanager.eu-west-1.amazonaws.com"],
        ),
        (
            {"source_model_data_url": "s3://training/out/model.tar.gz"},
            ["s3.eu-west-1.amazonaws.com"],
        ),
    ],
)
def test_the_loader_decrypts_customer_managed_keys_only_through_the_services_it_reads(
    names: dict[str, str], services: list[str]
) -> None:
    (statement,) = [s for s in _loader_policy(**names)["Statement"] if "kms:Decrypt" in _actions(s)]
    assert _actions(statement) == ["kms:Decrypt"]
    assert statement["Condition"] == {"StringEquals": {"kms:ViaService": services}}

"""IAM policy documents as plain data, each scoped to the ARNs it is given.

Pure functions over resolved strings: the components call them inside `Output.apply`, and tests
read the statements directly. No statement here grants an action on `*` except
`ecr:GetAuthorizationToken`, which AWS only accepts on `*`, and `cloudwatch:PutMetricData`, which
has no resource ARN and is limited to SageMaker's namespaces by a condition instead.
"""

from __future__ import annotations

from typing import Any

from facts.identifiers import parse_s3_url
from facts.partitions import dns_suffix, partition

Statement = dict[str, Any]
PolicyDocument = dict[str, Any]

_VERSION = "2012-10-17"

ECR_PULL_ACTIONS = [
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
]
S3_READ_OBJECT_ACTIONS = ["s3:GetObject"]
LOG_WRITE_ACTIONS = ["logs:CreateLogStream", "logs:PutLogEvents"]
S3_WRITE_OBJECT_ACTIONS = [
    "s3:AbortMultipartUpload",
    "s3:DeleteObject",
    "s3:GetObject",
    "s3:ListMultipartUploadParts",
    "s3:PutObject",
]


def document(statements: list[Statement]) -> PolicyDocument:
    return {"Version": _VERSION, "Statement": statements}


def allow(sid: str, action: str | list[str], resource: str | list[str], **more: Any) -> Statement:
    """One Allow statement; `more` holds its Condition, if any."""
    return {"Sid": sid, "Effect": "Allow", "Action": action, "Resource": resource, **more}


def assume_role_policy(
    service: str, *, source_account: str | None = None, source_arn: str | None = None
) -> PolicyDocument:
    """A trust policy letting one AWS service principal (e.g. sagemaker.amazonaws.com) assume.

    `source_account` and `source_arn` guard against the confused deputy, for services that document
    these keys on role trust policies.
    """
    statement: Statement = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    condition: dict[str, dict[str, str]] = {}
    if source_account is not None:
        condition["StringEquals"] = {"aws:SourceAccount": source_account}
    if source_arn is not None:
        condition["ArnLike"] = {"aws:SourceArn": source_arn}
    if condition:
        statement["Condition"] = condition
    return document([statement])


def sagemaker_source_arn(region: str, account_id: str) -> str:
    """Every SageMaker resource of one account and region: the endpoint's Model and the Batch
    Transform jobs that run as its role (SageMaker's confused-deputy guidance, a wildcard ARN)."""
    return f"arn:{partition(region)}:sagemaker:{region}:{account_id}:*"


def _object_arn(bucket_arn: str, prefix: str) -> str:
    if not prefix or prefix.startswith("/") or "*" in prefix:
        raise ValueError(f"key prefix {prefix!r}: expected a non-empty prefix like 'models/'")
    return f"{bucket_arn}/{prefix}*"


def _list_prefix_statement(bucket_arn: str, prefix: str) -> Statement:
    # Without ListBucket a HeadObject on a missing key answers 403 instead of 404; the condition
    # keeps listing to the prefix.
    condition = {"StringLike": {"s3:prefix": [f"{prefix}*"]}}
    return allow("ListPrefix", "s3:ListBucket", bucket_arn, Condition=condition)


def s3_read_prefix_statements(bucket_arn: str, prefix: str) -> list[Statement]:
    """Read the objects under `prefix` of one bucket, and list that prefix only."""
    return [
        allow("ReadPrefix", S3_READ_OBJECT_ACTIONS, _object_arn(bucket_arn, prefix)),
        _list_prefix_statement(bucket_arn, prefix),
    ]


def s3_write_objects_statement(bucket_arn: str, prefix: str) -> Statement:
    """Write, read back and delete objects under `prefix` of one bucket (multipart included)."""
    return allow("WritePrefix", S3_WRITE_OBJECT_ACTIONS, _object_arn(bucket_arn, prefix))


def s3_list_bucket_statement(bucket_arn: str) -> Statement:
    """List one bucket (and its open uploads), with no prefix condition.

    The loader must tell a missing key (404) from a refusal (403), which S3 does only for a caller
    that may list the bucket, without a prefix condition.
    """
    actions = ["s3:ListBucket", "s3:ListBucketMultipartUploads"]
    return allow("ListArtifactBucket", actions, bucket_arn)


def s3_object_arn(region: str, url: str) -> str:
    """The ARN of the object at `s3://bucket/key`, in the partition of `region`."""
    bucket, key = parse_s3_url(url)
    return f"arn:{partition(region)}:s3:::{bucket}/{key}"


def s3_read_object_statements(object_arn: str) -> list[Statement]:
    """Read one object (any version of it), nothing else."""
    return [allow("ReadSourceArtifact", ["s3:GetObject", "s3:GetObjectVersion"], object_arn)]


def secret_read_statements(secret_arn: str, sid: str = "ReadSecret") -> list[Statement]:
    """Read one Secrets Manager secret's value."""
    return [allow(sid, "secretsmanager:GetSecretValue", secret_arn)]


def invoke_statements(backend: str, target_arn: str, sid: str = "InvokeTarget") -> list[Statement]:
    """Invoke one SageMaker endpoint (`sagemaker`) or one Bedrock foundation model (`bedrock`)."""
    action = "sagemaker:InvokeEndpoint" if backend == "sagemaker" else "bedrock:InvokeModel"
    return [allow(sid, action, target_arn)]


def execute_api_invoke_policy(route_arns: list[str]) -> PolicyDocument:
    """What a caller needs to call these HTTP API routes with SigV4."""
    return document([allow("InvokeEmbedRoutes", "execute-api:Invoke", route_arns)])


def deny_insecure_transport_policy(bucket_arn: str) -> PolicyDocument:
    """A bucket policy refusing every request that does not use TLS."""
    return document(
        [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [bucket_arn, f"{bucket_arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ]
    )


def ecr_pull_statements(repository_arn: str) -> list[Statement]:
    """Pull images from one ECR repository (the token call cannot be scoped further)."""
    return [
        allow("EcrToken", "ecr:GetAuthorizationToken", "*"),
        allow("EcrPull", ECR_PULL_ACTIONS, repository_arn),
    ]


def log_group_arn(region: str, account_id: str, log_group: str) -> str:
    """The ARN of one CloudWatch Logs group, in the partition of `region`."""
    return f"arn:{partition(region)}:logs:{region}:{account_id}:log-group:{log_group}"


def log_write_statements(group_arn: str) -> list[Statement]:
    """Write to the streams of one existing log group, nothing else."""
    return [allow("WriteLogs", LOG_WRITE_ACTIONS, f"{group_arn}:*")]


def logs_statements(group_arn: str) -> list[Statement]:
    """Create one log group, list and write to its streams: SageMaker's CreateModel execution role
    actions for CloudWatch Logs, scoped to the endpoint's group.
    """
    return [
        allow("CreateLogGroup", "logs:CreateLogGroup", group_arn),
        allow("DescribeLogStreams", "logs:DescribeLogStreams", [group_arn, f"{group_arn}:*"]),
        *log_write_statements(group_arn),
    ]


def kms_decrypt_via_statements(region: str, services: list[str]) -> list[Statement]:
    """Decrypt with a customer-managed key, only as `services` do it on this role's behalf.

    A secret or object under a customer-managed key needs kms:Decrypt; `kms:ViaService` keeps the
    role from using the key directly. Keys managed by AWS need nothing.
    """
    if not services:
        return []
    via = [f"{service}.{region}.{dns_suffix(region)}" for service in services]
    key_arn = f"arn:{partition(region)}:kms:*:*:key/*"
    condition = {"StringEquals": {"kms:ViaService": via}}
    return [allow("DecryptViaServices", "kms:Decrypt", key_arn, Condition=condition)]


# The metric namespaces SageMaker itself publishes under on an endpoint's behalf; the `AWS/`
# namespaces (AWS/SageMaker invocation metrics) are reserved and need no grant.
SAGEMAKER_METRIC_NAMESPACES = "/aws/sagemaker/*"


def sagemaker_metrics_statements() -> list[Statement]:
    """Publish metrics in SageMaker's namespaces only (PutMetricData has no resource ARN)."""
    condition = {"StringLike": {"cloudwatch:namespace": SAGEMAKER_METRIC_NAMESPACES}}
    return [allow("PutSageMakerMetrics", "cloudwatch:PutMetricData", "*", Condition=condition)]


def sagemaker_execution_policy(
    *, bucket_arn: str, artifact_prefix: str, repository_arn: str, log_group_arn: str
) -> PolicyDocument:
    """What a serverless endpoint's execution role needs: its artifact, image, logs, metrics."""
    return document(
        s3_read_prefix_statements(bucket_arn, artifact_prefix)
        + ecr_pull_statements(repository_arn)
        + logs_statements(log_group_arn)
        + sagemaker_metrics_statements()
    )


def loader_policy(
    *,
    region: str,
    bucket_arn: str,
    key_prefix: str,
    log_group_arn: str,
    hf_token_secret_arn: str | None = None,
    source_model_data_url: str | None = None,
) -> PolicyDocument:
    """The loader Lambda's role: its prefix, its log group, and the secret and source it names."""
    statements = [
        s3_write_objects_statement(bucket_arn, key_prefix),
        s3_list_bucket_statement(bucket_arn),
        *log_write_statements(log_group_arn),
    ]
    if hf_token_secret_arn:
        statements += secret_read_statements(hf_token_secret_arn, sid="ReadHubToken")
    if source_model_data_url:
        statements += s3_read_object_statements(s3_object_arn(region, source_model_data_url))
    services = ["secretsmanager"] * bool(hf_token_secret_arn) + ["s3"] * bool(source_model_data_url)
    return document(statements + kms_decrypt_via_statements(region, services))


SAGEMAKER_TRANSFORM_LOG_GROUP = "/aws/sagemaker/TransformJobs"


def s3_bucket_arn(region: str, bucket: str) -> str:
    """The ARN of one bucket, in the partition of `region`."""
    return f"arn:{partition(region)}:s3:::{bucket}"


def batch_transform_statements(
    *, region: str, input_url: str, output_url: str, log_group_arn: str, job_name_prefix: str
) -> list[Statement]:
    """What a Batch Transform job needs beyond the endpoint's role (which it runs as): read and
    list one input folder, write one output folder, write its own jobs' logs.
    """
    input_bucket, input_prefix = parse_s3_url(input_url)
    output_bucket, output_prefix = parse_s3_url(output_url)
    input_bucket_arn = s3_bucket_arn(region, input_bucket)
    output_arn = _object_arn(s3_bucket_arn(region, output_bucket), output_prefix)
    streams = f"{log_group_arn}:log-stream:{job_name_prefix}*"
    return [
        allow(
            "ReadBatchInput", S3_READ_OBJECT_ACTIONS, _object_arn(input_bucket_arn, input_prefix)
        ),
        {**_list_prefix_statement(input_bucket_arn, input_prefix), "Sid": "ListBatchInput"},
        allow("WriteBatchOutput", ["s3:PutObject", "s3:AbortMultipartUpload"], output_arn),
        allow("CreateTransformLogGroup", "logs:CreateLogGroup", log_group_arn),
        allow("WriteTransformLogs", LOG_WRITE_ACTIONS, streams),
    ]

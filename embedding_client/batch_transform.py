"""`embed batch`: a SageMaker Batch Transform job on the stack's own Model.

    embed batch --stack dev s3://corpus-bucket/in/ s3://vectors-bucket/out/
    embed batch --model-name NAME --region eu-west-1 s3://in/ s3://out/   # a Model you manage

Input, output, folders and exit codes: docs/bulk.md.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

from embedding_client.arguments import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_TARGET,
    EXIT_USAGE,
    record_fields_parent,
    target_parent,
)
from embedding_client.backend import TargetError
from embedding_client.batch_job import (
    DEFAULT_CONCURRENCY_PER_INSTANCE,
    DEFAULT_INSTANCE_COUNT,
    DEFAULT_INSTANCE_TYPE,
    DEFAULT_MAX_PAYLOAD_MB,
    BatchUsageError,
    JobSpec,
    check_within,
    job_name_for,
    transform_job_request,
)
from embedding_client.batch_watch import JobWatcher, list_objects, nothing_under, report
from embedding_client.stack_outputs import load_outputs
from embedding_client.transport import aws_client
from facts import pricing
from facts import stack as stack_facts

POLL_SECONDS = 30.0
DEFAULT_JOB_PREFIX = "embed-batch-"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="embed batch",
        description="Embed JSON lines files under an S3 folder with a SageMaker Batch Transform "
        "job on the stack's Model; waits, reports and stops the job on Ctrl-C. Each record is "
        'an object, or a bare JSON string with --text-field "".',
        epilog="Exit codes: 0 completed, 2 usage, 3 target not resolved, 4 refused by AWS, "
        "5 job failed, 130 stopped with Ctrl-C.",
        parents=[target_parent("model_name"), record_fields_parent()],
    )
    parser.add_argument("input_url", help="s3://bucket/folder/ holding .jsonl files")
    parser.add_argument("output_url", help="s3://bucket/folder/ for the .out files")
    parser.add_argument("--instance-type", default=DEFAULT_INSTANCE_TYPE, help="%(default)s")
    parser.add_argument("--instance-count", type=int, default=DEFAULT_INSTANCE_COUNT)
    parser.add_argument(
        "--max-payload-mb",
        type=int,
        default=DEFAULT_MAX_PAYLOAD_MB,
        help="MiB per mini-batch (default %(default)s); also the largest record",
    )
    parser.add_argument(
        "--concurrency-per-instance",
        type=int,
        default=DEFAULT_CONCURRENCY_PER_INSTANCE,
        help="requests in flight per instance (MaxConcurrentTransforms, default %(default)s)",
    )
    parser.add_argument("--keep-input", action="store_true", help="keep whole records in output")
    parser.add_argument("--no-wait", action="store_true", help="start the job and return")
    parser.add_argument("--price-per-hour", type=float, help="$ per instance-hour (estimate)")
    parser.add_argument("--poll-seconds", type=float, default=POLL_SECONDS, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


@dataclass(frozen=True)
class _Target:
    model_name: str
    region: str | None
    job_prefix: str
    input_prefix: str | None = None
    output_prefix: str | None = None


def _target(args: argparse.Namespace) -> _Target:
    if args.model_name:
        return _Target(args.model_name, args.region, DEFAULT_JOB_PREFIX)
    outputs = load_outputs(args.stack, args.outputs_file)
    if not outputs.get(stack_facts.MODEL_NAME):
        raise TargetError(
            f"the stack exports no '{stack_facts.MODEL_NAME}' (a Bedrock stack, or deployed "
            "before this version: run `pulumi up`)"
        )
    inputs, outputs_prefix = stack_facts.BATCH_INPUT_PREFIX, stack_facts.BATCH_OUTPUT_PREFIX
    if not outputs.get(inputs) or not outputs.get(outputs_prefix):
        raise TargetError(
            "the stack grants its Model's role no S3 folders for Batch Transform: set "
            f"`pulumi config set {inputs} s3://BUCKET/in/` and `{outputs_prefix} "
            "s3://BUCKET/out/`, run `pulumi up`, then retry (docs/bulk.md)"
        )
    return _Target(
        outputs[stack_facts.MODEL_NAME],
        args.region or outputs.get(stack_facts.REGION),
        outputs.get(stack_facts.BATCH_JOB_PREFIX) or DEFAULT_JOB_PREFIX,
        outputs[inputs],
        outputs[outputs_prefix],
    )


def _normalized(url: str) -> str:
    return url if url.endswith("/") else url + "/"


def run(argv: Sequence[str], stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """`embed batch ARGS`; the process's exit code."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr

    args = parse_args(argv)
    try:
        target = _target(args)
        spec = JobSpec(
            job_name=job_name_for(target.job_prefix),
            model_name=target.model_name,
            input_url=_normalized(args.input_url),
            output_url=_normalized(args.output_url),
            instance_type=args.instance_type,
            instance_count=args.instance_count,
            max_payload_mb=args.max_payload_mb,
            concurrency_per_instance=args.concurrency_per_instance,
            text_field=args.text_field,
            id_field=args.id_field,
            keep_input=args.keep_input,
        )
        if target.input_prefix and target.output_prefix:
            check_within(spec.input_url, target.input_prefix, "input")
            check_within(spec.output_url, target.output_prefix, "output")
        request = transform_job_request(spec)
    except TargetError as error:
        print(f"embed batch: {error}", file=stderr)
        return EXIT_TARGET
    except BatchUsageError as error:
        print(f"embed batch: {error}", file=stderr)
        return EXIT_USAGE
    price = args.price_per_hour or pricing.BATCH_TRANSFORM_PER_HOUR.get(spec.instance_type)
    try:
        s3 = aws_client("s3", target.region)
        sagemaker = aws_client("sagemaker", target.region)
        inputs = list_objects(s3, spec.input_url)
        if not inputs:
            print(f"embed batch: {nothing_under(s3, args.input_url, spec.input_url)}", file=stderr)
            return EXIT_USAGE
        sagemaker.create_transform_job(**request)
    except (NoCredentialsError, NoRegionError) as error:
        print(f"embed batch: {error} (configure AWS credentials, or pass --region)", file=stderr)
        return EXIT_TARGET
    except ClientError as error:
        details = error.response.get("Error", {})
        print(f"embed batch: {details.get('Code')}: {details.get('Message')}", file=stderr)
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400)
        return EXIT_REFUSED if 400 <= status < 500 else EXIT_FAILED
    except BotoCoreError as error:
        print(f"embed batch: {error}", file=stderr)
        return EXIT_FAILED
    total_bytes = sum(size for _, size in inputs)
    print(
        f"embed batch: started transform job {spec.job_name} on Model {spec.model_name}: "
        f"{len(inputs)} object(s), {total_bytes / 1e6:,.1f} MB under {spec.input_url} → "
        f"{spec.output_url} ({spec.instance_type} × {spec.instance_count}, "
        f"MaxPayloadInMB {spec.max_payload_mb}, {spec.concurrency_per_instance} per instance)",
        file=stderr,
    )
    if args.no_wait:
        print(spec.job_name, file=stdout)
        return EXIT_OK
    watcher = JobWatcher(spec, [key for key, _ in inputs], s3, sagemaker, stderr, args.poll_seconds)
    try:
        status, described, stopped_by_user = watcher.wait()
    except (BotoCoreError, ClientError) as error:
        print(f"embed batch: lost track of job {spec.job_name}: {error}", file=stderr)
        return EXIT_FAILED
    return report(spec, described, status, stopped_by_user, watcher, target.region, price, stdout)

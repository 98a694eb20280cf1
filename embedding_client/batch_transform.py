"""`embed batch`: a SageMaker Batch Transform job on the stack's own Model, for corpora beyond
what `embed file` should push through a serverless endpoint, or on a schedule.

    embed batch --stack dev s3://corpus-bucket/in/ s3://vectors-bucket/out/
    embed batch --model-name NAME --region eu-west-1 s3://in/ s3://out/   # a Model you manage

Input: JSON lines files under the input folder, one record per line: an object whose
`--text-field` (default `text`) is the text, or a bare JSON string (`--text-field ""`). Output: for
each input file, `<name>.out` under the output folder, one line per input line, in order:
`{"<id-field>": ..., "SageMakerOutput": {"embedding": [...]}}` (`--keep-input` keeps the whole
record). The job runs as the Model's execution role; with `--stack`, the stack's
batchInputPrefix/batchOutputPrefix are the folders that role may use, and paths outside them are
refused here, before anything starts. Exit codes: 0 completed; 2 bad usage; 3 the target cannot
be resolved; 4 AWS refused the request; 5 the job failed; 130 stopped with Ctrl-C (the job is
stopped too). docs/bulk.md has the details and the cost formula.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from embedding_client.backends import TargetError, aws_client
from embedding_client.bulk_runner import CtrlC
from embedding_client.embed import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_TARGET,
    EXIT_USAGE,
    load_outputs,
)
from facts import batch_transform, identifiers, pricing
from facts.embedding_api import JSONLINES_CONTENT_TYPE

# Defaults (docs/bulk.md says why each).
DEFAULT_INSTANCE_TYPE = "ml.c5.xlarge"  # 4 vCPUs, 8 GiB: compute-optimized CPU
DEFAULT_INSTANCE_COUNT = 1
DEFAULT_MAX_PAYLOAD_MB = 1  # mini-batches of at most 1 MiB: thousands of short records
DEFAULT_CONCURRENCY_PER_INSTANCE = 2  # one request computing, the next one already delivered
INVOCATION_TIMEOUT_SECONDS = batch_transform.MAX_INVOCATION_TIMEOUT_SECONDS
INVOCATION_RETRIES = 1
# The model server's response cap in the job (MMS_MAX_RESPONSE_SIZE). 1 GB holds the float
# vectors of a 1 MiB mini-batch whose records average 20 bytes (a JSON string of ~17 characters)
# at 1024 dimensions; a mini-batch of shorter records is refused with a 413 naming the limit.
RESPONSE_BYTES = 1_000_000_000
POLL_SECONDS = 30.0
DEFAULT_JOB_PREFIX = "embed-batch-"
# The DLC image is a CPU build: accelerated instance families cannot run it.
_ACCELERATED = re.compile(r"^ml\.(p\d|g\d|inf\d|trn\d|dl\d)")
_INSTANCE_TYPE = re.compile(r"^ml\.[a-z0-9-]+\.[a-z0-9]+$")
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
FINAL_STATUSES = ("Completed", "Failed", "Stopped")
MAX_LOG_LINES = 20


class BatchUsageError(Exception):
    """The command line asks for a job that cannot be started; nothing was created."""


@dataclass(frozen=True)
class JobSpec:
    """Everything a transform job of `embed batch` is made of."""

    job_name: str
    model_name: str
    input_url: str
    output_url: str
    instance_type: str = DEFAULT_INSTANCE_TYPE
    instance_count: int = DEFAULT_INSTANCE_COUNT
    max_payload_mb: int = DEFAULT_MAX_PAYLOAD_MB
    concurrency_per_instance: int = DEFAULT_CONCURRENCY_PER_INSTANCE
    text_field: str = "text"  # "": each record is a bare JSON string
    id_field: str = "id"
    keep_input: bool = False


def check_spec(spec: JobSpec) -> None:
    """Refuse what SageMaker or the container would refuse, before anything is created."""
    for name in ("input_url", "output_url"):
        problem = identifiers.S3_PREFIX_URL.problem(getattr(spec, name))
        if problem:
            raise BatchUsageError(f"{getattr(spec, name)!r}: {problem}")
    if spec.output_url.startswith(spec.input_url) or spec.input_url.startswith(spec.output_url):
        raise BatchUsageError("the output folder must be outside the input folder and vice versa")
    if not _INSTANCE_TYPE.match(spec.instance_type):
        raise BatchUsageError(f"--instance-type {spec.instance_type!r}: expected e.g. ml.c5.xlarge")
    if _ACCELERATED.match(spec.instance_type):
        raise BatchUsageError(
            f"--instance-type {spec.instance_type}: the Model's image is the DLC's CPU build; "
            "choose a CPU type such as ml.c5.xlarge or ml.m5.xlarge"
        )
    if not 1 <= spec.max_payload_mb <= batch_transform.MAX_PAYLOAD_MB_LIMIT:
        raise BatchUsageError(
            f"--max-payload-mb {spec.max_payload_mb}: expected 1-"
            f"{batch_transform.MAX_PAYLOAD_MB_LIMIT} (a record may not be larger)"
        )
    if spec.instance_count < 1 or spec.concurrency_per_instance < 1:
        raise BatchUsageError("--instance-count and --concurrency-per-instance must be at least 1")
    for flag, field in (("--text-field", spec.text_field), ("--id-field", spec.id_field)):
        if field and not _FIELD.match(field):
            raise BatchUsageError(f"{flag} {field!r}: expected a plain field name (letters, _)")
    if not _JOB_NAME.match(spec.job_name):
        raise BatchUsageError(f"job name {spec.job_name!r}: 1-63 of [a-zA-Z0-9-]")
    for name, value in (("InputFilter", input_filter(spec)), ("OutputFilter", output_filter(spec))):
        if len(value) > batch_transform.MAX_FILTER_LENGTH:
            raise BatchUsageError(f"{name} {value!r} is over 63 characters: shorten the field")


def input_filter(spec: JobSpec) -> str:
    """JSONPath of the text in each record: the container gets a JSON string per line."""
    return f"$.{spec.text_field}" if spec.text_field else "$"


def output_filter(spec: JobSpec) -> str:
    """JSONPath of what each output line keeps of the joined record: the id and the vector."""
    if spec.keep_input:
        return "$"
    if not spec.text_field:  # a bare string record is joined as {"SageMakerInput", ...Output}
        return f"$['{batch_transform.OUTPUT_KEY}']"
    return f"$['{spec.id_field}','{batch_transform.OUTPUT_KEY}']"


def job_environment() -> dict[str, str]:
    """Container variables the job adds to the Model's: a response cap and a request timeout
    large enough for a MultiRecord mini-batch (the container reads SageMaker's own variables)."""
    return {
        batch_transform.RESPONSE_SIZE_ENV: str(RESPONSE_BYTES),
        batch_transform.MODEL_SERVER_TIMEOUT_ENV: str(INVOCATION_TIMEOUT_SECONDS),
    }


def transform_job_request(spec: JobSpec) -> dict[str, Any]:
    """The CreateTransformJob request for `spec` (checked first)."""
    check_spec(spec)
    return {
        "TransformJobName": spec.job_name,
        "ModelName": spec.model_name,
        "MaxConcurrentTransforms": spec.concurrency_per_instance,
        "MaxPayloadInMB": spec.max_payload_mb,
        "BatchStrategy": "MultiRecord",
        "ModelClientConfig": {
            "InvocationsTimeoutInSeconds": INVOCATION_TIMEOUT_SECONDS,
            "InvocationsMaxRetries": INVOCATION_RETRIES,
        },
        "Environment": job_environment(),
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": spec.input_url}},
            "ContentType": JSONLINES_CONTENT_TYPE,
            "CompressionType": "None",
            "SplitType": "Line",
        },
        "TransformOutput": {
            "S3OutputPath": spec.output_url,
            "Accept": JSONLINES_CONTENT_TYPE,
            "AssembleWith": "Line",
        },
        "TransformResources": {
            "InstanceType": spec.instance_type,
            "InstanceCount": spec.instance_count,
        },
        "DataProcessing": {
            "InputFilter": input_filter(spec),
            "JoinSource": "Input",
            "OutputFilter": output_filter(spec),
        },
    }


def job_name_for(prefix: str, now: float | None = None) -> str:
    """The prefix (the stack's, which its role may log under) and the start time."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
    return f"{prefix}{stamp}"


def check_within(url: str, allowed: str, what: str) -> None:
    """Refuse a folder outside the one the stack's role was granted."""
    if not url.startswith(allowed):
        raise BatchUsageError(
            f"{what} {url} is outside the stack's {allowed}: the job's role may only use that "
            "folder (stack config batchInputPrefix/batchOutputPrefix; docs/bulk.md)"
        )


# ---------------------------------------------------------------------------------------------
# S3 listings and the job's logs


def list_objects(s3: Any, url: str) -> list[tuple[str, int]]:
    """(key, size) of every object under an s3:// folder (folder markers left out)."""
    bucket, prefix = identifiers.parse_s3_url(url)
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        found += [(o["Key"], o["Size"]) for o in page.get("Contents", [])]
    return [(key, size) for key, size in found if not key.endswith("/")]


def _nothing_under(s3: Any, given: str, folder: str) -> str:
    """Why the input folder is empty: often because the URL names one object, not a folder."""
    _, key_named = identifiers.parse_s3_url(given)
    if given != folder and any(key == key_named for key, _ in list_objects(s3, given)):
        parent = given.rsplit("/", 1)[0] + "/"
        return (
            f"{given} is one object; the input is a folder: pass {parent} (every object under it "
            "is embedded), or put the file in a folder of its own"
        )
    return f"no objects under {folder}"


def outputs_of(inputs: list[str], input_url: str, output_keys: set[str]) -> dict[str, bool]:
    """Input key → whether its `.out` object exists (Batch Transform writes it when the whole
    file succeeded), matched by the path below the input folder."""
    _, input_prefix = identifiers.parse_s3_url(input_url)
    relative_outputs = {key.rsplit("/", 1)[-1] for key in output_keys}
    done = {}
    for key in inputs:
        relative = key[len(input_prefix) :]
        done[key] = any(out.endswith("/" + relative + ".out") for out in output_keys) or (
            relative + ".out" in relative_outputs
        )
    return done


def error_log_lines(logs: Any, job_name: str) -> list[str]:
    """The job's log lines that name an error (`[sagemaker logs]: bucket/key: ClientError: 400`)."""
    lines: list[str] = []
    kwargs: dict[str, Any] = {
        "logGroupName": "/aws/sagemaker/TransformJobs",
        "logStreamNamePrefix": job_name,
    }
    for _ in range(5):  # pages
        answer = logs.filter_log_events(**kwargs)
        lines += [e["message"] for e in answer.get("events", []) if "Error" in e["message"]]
        if not answer.get("nextToken") or len(lines) >= MAX_LOG_LINES:
            break
        kwargs["nextToken"] = answer["nextToken"]
    return lines[:MAX_LOG_LINES]


# ---------------------------------------------------------------------------------------------
# The command


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="embed batch",
        description="Embed JSON lines files under an S3 folder with a SageMaker Batch Transform "
        "job on the stack's Model; waits, reports and stops the job on Ctrl-C.",
        epilog="Exit codes: 0 completed, 2 usage, 3 target not resolved, 4 refused by AWS, "
        "5 job failed, 130 stopped with Ctrl-C.",
    )
    parser.add_argument("input_url", help="s3://bucket/folder/ holding .jsonl files")
    parser.add_argument("output_url", help="s3://bucket/folder/ for the .out files")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--stack", help="a Pulumi stack of this project (reads its outputs)")
    target.add_argument("--outputs-file", help="a saved `pulumi stack output --json`")
    target.add_argument("--model-name", help="any SageMaker Model (its role must reach S3)")
    parser.add_argument("--region", help="AWS region (default: the stack's, or your config)")
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
    parser.add_argument("--text-field", default="text", help='text field ("" for bare strings)')
    parser.add_argument("--id-field", default="id", help="id field kept in the output")
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
    if not outputs.get("modelName"):
        raise TargetError(
            "the stack exports no 'modelName' (a Bedrock stack, or deployed before this version: "
            "run `pulumi up`)"
        )
    if not outputs.get("batchInputPrefix") or not outputs.get("batchOutputPrefix"):
        raise TargetError(
            "the stack grants its Model's role no S3 folders for Batch Transform: set "
            "`pulumi config set batchInputPrefix s3://BUCKET/in/` and `batchOutputPrefix "
            "s3://BUCKET/out/`, run `pulumi up`, then retry (docs/bulk.md)"
        )
    return _Target(
        outputs["modelName"],
        args.region or outputs.get("region"),
        outputs.get("batchJobPrefix") or DEFAULT_JOB_PREFIX,
        outputs["batchInputPrefix"],
        outputs["batchOutputPrefix"],
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
            print(f"embed batch: {_nothing_under(s3, args.input_url, spec.input_url)}", file=stderr)
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
    watcher = _Watcher(spec, [key for key, _ in inputs], s3, sagemaker, stderr, args.poll_seconds)
    try:
        status, described, stopped_by_user = watcher.wait()
    except (BotoCoreError, ClientError) as error:
        print(f"embed batch: lost track of job {spec.job_name}: {error}", file=stderr)
        return EXIT_FAILED
    return _report(spec, described, status, stopped_by_user, watcher, target.region, price, stdout)


class _Watcher:
    """Polls the job, shows progress (output objects written), stops it on Ctrl-C."""

    def __init__(
        self,
        spec: JobSpec,
        inputs: list[str],
        s3: Any,
        sagemaker: Any,
        stderr: TextIO,
        poll_seconds: float,
    ) -> None:
        self.spec, self.inputs, self.s3, self.sagemaker = spec, inputs, s3, sagemaker
        self.stderr, self.poll_seconds = stderr, poll_seconds
        self.done: dict[str, bool] = {}

    def refresh_outputs(self) -> int:
        keys = {key for key, _ in list_objects(self.s3, self.spec.output_url)}
        self.done = outputs_of(self.inputs, self.spec.input_url, keys)
        return sum(self.done.values())

    def wait(self) -> tuple[str, dict, bool]:
        from tqdm import tqdm

        bar = tqdm(
            total=len(self.inputs),
            unit="file",
            file=self.stderr,
            disable=not self.stderr.isatty(),
            desc=self.spec.job_name,
        )
        last_status, stop_requested = "", False
        try:
            with CtrlC() as interrupts:
                while True:
                    described = self.sagemaker.describe_transform_job(
                        TransformJobName=self.spec.job_name
                    )
                    status = described["TransformJobStatus"]
                    bar.update(self.refresh_outputs() - bar.n)
                    if status != last_status:
                        bar.write(f"embed batch: {self.spec.job_name} is {status}", self.stderr)
                        last_status = status
                    if status in FINAL_STATUSES:
                        return status, described, stop_requested
                    if interrupts.count > 1:
                        return "Stopping", described, True  # the job goes on stopping
                    if interrupts.count and not stop_requested:
                        stop_requested = True
                        bar.write(
                            f"embed batch: stopping {self.spec.job_name} (Ctrl-C again to "
                            "return without waiting)",
                            self.stderr,
                        )
                        self.sagemaker.stop_transform_job(TransformJobName=self.spec.job_name)
                    deadline = time.monotonic() + self.poll_seconds
                    while time.monotonic() < deadline and interrupts.count == int(stop_requested):
                        time.sleep(min(0.2, self.poll_seconds))
        finally:
            bar.close()


def _report(
    spec: JobSpec,
    described: dict,
    status: str,
    stopped_by_user: bool,
    watcher: _Watcher,
    region: str | None,
    price: float | None,
    out: TextIO,
) -> int:
    written = sum(watcher.done.values())
    print(f"{status.lower()}: {written} of {len(watcher.inputs)} object(s) written", file=out)
    print(f"output: {spec.output_url} (one `<input name>.out` per input file)", file=out)
    started, ended = described.get("TransformStartTime"), described.get("TransformEndTime")
    if started and ended:
        seconds = (ended - started).total_seconds()
        instance_seconds = seconds * spec.instance_count
        if price:
            cost = pricing.batch_transform_cost(instance_seconds, price)
            print(
                f"estimated cost: ${cost:,.4f} ({spec.instance_count} × {seconds:,.0f} s × "
                f"${price:g}/h for {spec.instance_type}; list price, start-up time not included)",
                file=out,
            )
        else:
            print(f"no list price for {spec.instance_type}: pass --price-per-hour", file=out)
    missing = [key for key, done in watcher.done.items() if not done]
    if status == "Completed" and not missing:
        return EXIT_OK
    if described.get("FailureReason"):
        print(f"failure reason: {described['FailureReason']}", file=out)
    bucket, _ = identifiers.parse_s3_url(spec.input_url)
    for key in missing[:MAX_LOG_LINES]:
        print(f"not written: s3://{bucket}/{key}", file=out)
    if len(missing) > MAX_LOG_LINES:
        print(f"... and {len(missing) - MAX_LOG_LINES} more", file=out)
    if status == "Failed":
        try:
            lines = error_log_lines(aws_client("logs", region), spec.job_name)
        except Exception as error:  # the report still stands without the logs
            lines = [f"(could not read the job's logs: {error})"]
        for line in lines:
            print(f"log: {line}", file=out)
        print(
            "the failed records are in the job's logs: CloudWatch /aws/sagemaker/TransformJobs, "
            f"streams {spec.job_name}/*/data-log",
            file=out,
        )
        return EXIT_FAILED
    if stopped_by_user:
        return EXIT_INTERRUPTED
    return EXIT_FAILED

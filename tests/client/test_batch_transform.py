"""`embed batch`: the transform job request against moto's CreateTransformJob, and the job's life
(progress, completion, failure, Ctrl-C) played by the transform fault layer over moto."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from moto.backends import get_backend
from moto.core import DEFAULT_ACCOUNT_ID
from sentence_transformers import SentenceTransformer

from embedding_client.arguments import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TARGET,
    EXIT_USAGE,
)
from embedding_client.batch_job import JobSpec, transform_job_request
from embedding_client.batch_transform import run
from facts import batch_transform
from facts.embedding_api import FLOAT_VALUE_BYTES, VECTOR_OVERHEAD_BYTES
from tests.fixtures.aws import FAKE_CREDENTIALS, AwsEndpoint
from tests.fixtures.transform_jobs import TransformPlatform
from tests.support.models import DIMENSIONS, REFERENCE_MODEL_DIR, REPO_ROOT


@pytest.fixture(autouse=True)
def no_transform_jobs(aws: AwsEndpoint):
    """moto's server lives for the whole run: each test starts without transform jobs."""
    jobs = get_backend("sagemaker")[DEFAULT_ACCOUNT_ID][aws.region].transform_jobs
    jobs.clear()
    yield jobs
    jobs.clear()


class Outcome:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err


def embed_batch(*argv: str) -> Outcome:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = run([str(a) for a in argv], stdout, stderr)
    return Outcome(code, stdout.getvalue(), stderr.getvalue())


def stack_outputs(tmp_path: Path, bucket: str, **extra: str) -> Path:
    """A stack's outputs after `pulumi up` with batchInputPrefix/batchOutputPrefix set."""
    outputs = {
        "modelName": "embedding-model-1a2b3c4",
        "region": "us-east-1",
        "batchInputPrefix": f"s3://{bucket}/corpus/",
        "batchOutputPrefix": f"s3://{bucket}/vectors/",
        "batchJobPrefix": "embedding-endpoint-dev-batch-",
        **extra,
    }
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps({k: v for k, v in outputs.items() if v}))
    return path


def put_corpus(aws: AwsEndpoint, bucket: str, files: dict[str, list]) -> dict[str, str]:
    """JSON lines files under corpus/; returns id → text of the object records."""
    s3 = aws.client("s3")
    texts = {}
    for name, records in files.items():
        body = "".join(json.dumps(r) + "\n" for r in records)
        s3.put_object(Bucket=bucket, Key=f"corpus/{name}", Body=body.encode())
        texts.update({r["id"]: r["text"] for r in records if isinstance(r, dict)})
    return texts


def read_out(aws: AwsEndpoint, bucket: str, name: str) -> list[dict]:
    body = aws.client("s3").get_object(Bucket=bucket, Key=f"vectors/{name}.out")["Body"].read()
    return [json.loads(line) for line in body.decode().splitlines()]


RECORDS = {
    "a.jsonl": [{"id": f"a{i}", "text": f"A man is eating food number {i}."} for i in range(5)],
    "part/b.jsonl": [{"id": "b0", "text": "The girl is carrying a baby.", "lang": "en"}],
}


# ---------------------------------------------------------------------------------------------
# The request


def test_the_job_request_is_accepted_by_create_transform_job_and_described_back(
    tmp_path, aws, s3_bucket
):
    put_corpus(aws, s3_bucket, RECORDS)
    outcome = embed_batch(
        "--outputs-file", stack_outputs(tmp_path, s3_bucket), "--no-wait",
        f"s3://{s3_bucket}/corpus/", f"s3://{s3_bucket}/vectors/",
    )  # fmt: skip
    assert outcome.code == EXIT_OK, outcome.err
    job_name = outcome.out.strip()
    assert job_name.startswith("embedding-endpoint-dev-batch-")
    job = aws.client("sagemaker").describe_transform_job(TransformJobName=job_name)
    assert job["ModelName"] == "embedding-model-1a2b3c4"
    assert job["BatchStrategy"] == "MultiRecord"
    assert job["MaxPayloadInMB"] == 1 < 6
    assert job["MaxConcurrentTransforms"] == 2
    assert job["TransformInput"] == {
        "DataSource": {
            "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{s3_bucket}/corpus/"}
        },
        "ContentType": "application/jsonlines",
        "CompressionType": "None",
        "SplitType": "Line",
    }
    assert job["TransformOutput"] == {
        "S3OutputPath": f"s3://{s3_bucket}/vectors/",
        "Accept": "application/jsonlines",
        "AssembleWith": "Line",
    }
    assert job["DataProcessing"] == {
        "InputFilter": "$.text",
        "JoinSource": "Input",
        "OutputFilter": "$['id','SageMakerOutput']",
    }
    assert job["TransformResources"] == {"InstanceType": "ml.c5.xlarge", "InstanceCount": 1}
    assert job["Environment"] == {
        "MMS_MAX_RESPONSE_SIZE": "1000000000",
        "SAGEMAKER_MODEL_SERVER_TIMEOUT": "3600",
    }
    assert job["ModelClientConfig"] == {
        "InvocationsTimeoutInSeconds": 3600,
        "InvocationsMaxRetries": 1,
    }


def test_the_job_environment_fits_what_the_container_and_the_model_server_read():
    request = transform_job_request(
        JobSpec("job-1", "m", "s3://bucket/in/", "s3://bucket/out/", max_payload_mb=100)
    )
    environment = request["Environment"]
    assert len(environment) <= batch_transform.MAX_ENVIRONMENT_ENTRIES
    response_cap = int(environment[batch_transform.RESPONSE_SIZE_ENV])
    assert response_cap <= batch_transform.MAX_RESPONSE_BYTES  # MMS parses a Java int
    # A 1 MiB mini-batch of 20-byte records at 1024 float dimensions fits the cap (the bound the
    # container computes from the bytes a value and a vector take).
    records = batch_transform.MIB // 20
    assert records * (1024 * FLOAT_VALUE_BYTES + VECTOR_OVERHEAD_BYTES) < response_cap


@pytest.mark.parametrize(
    ("text_field", "keep_input", "expected"),
    [
        ("text", False, ("$.text", "$['id','SageMakerOutput']")),
        ("", False, ("$", "$['SageMakerOutput']")),
        ("body", True, ("$.body", "$")),
    ],
)
def test_filters_send_the_text_and_keep_the_id_with_the_vector(text_field, keep_input, expected):
    spec = JobSpec(
        "job-1", "m", "s3://bucket/in/", "s3://bucket/out/",
        text_field=text_field, keep_input=keep_input,
    )  # fmt: skip
    processing = transform_job_request(spec)["DataProcessing"]
    assert (processing["InputFilter"], processing["OutputFilter"]) == expected


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--instance-type", "ml.g5.xlarge"), "CPU build"),
        (("--instance-type", "c5.xlarge"), "expected e.g. ml.c5.xlarge"),
        (("--max-payload-mb", "0"), "expected 1-100"),
        (("--max-payload-mb", "101"), "expected 1-100"),
        (("--text-field", "a.b"), "plain field name"),
        (("--id-field", ""), "--id-field '': expected a plain field name"),
    ],
)
def test_a_job_that_cannot_run_is_refused_before_anything_is_created(
    tmp_path, aws, s3_bucket, no_transform_jobs, flags, message
):
    outcome = embed_batch(
        "--outputs-file", stack_outputs(tmp_path, s3_bucket), *flags,
        f"s3://{s3_bucket}/corpus/", f"s3://{s3_bucket}/vectors/",
    )  # fmt: skip
    assert outcome.code == EXIT_USAGE and message in outcome.err
    assert no_transform_jobs == {}


def test_folders_outside_the_stacks_grant_are_refused_naming_the_granted_one(
    tmp_path, aws, s3_bucket
):
    outcome = embed_batch(
        "--outputs-file", stack_outputs(tmp_path, s3_bucket),
        f"s3://{s3_bucket}/elsewhere/", f"s3://{s3_bucket}/vectors/",
    )  # fmt: skip
    assert outcome.code == EXIT_USAGE
    assert f"outside the stack's s3://{s3_bucket}/corpus/" in outcome.err


def test_a_stack_without_batch_folders_says_which_config_to_set(tmp_path, aws, s3_bucket):
    outputs = stack_outputs(tmp_path, s3_bucket, batchInputPrefix="", batchOutputPrefix="")
    outcome = embed_batch("--outputs-file", outputs, "s3://x-bucket/in/", "s3://x-bucket/out/")
    assert outcome.code == EXIT_TARGET
    assert "pulumi config set batchInputPrefix" in outcome.err


def test_an_empty_input_folder_starts_no_job(tmp_path, aws, s3_bucket, no_transform_jobs):
    outcome = embed_batch(
        "--outputs-file", stack_outputs(tmp_path, s3_bucket),
        f"s3://{s3_bucket}/corpus/", f"s3://{s3_bucket}/vectors/",
    )  # fmt: skip
    assert outcome.code == EXIT_USAGE and "no objects under" in outcome.err
    assert no_transform_jobs == {}


def test_a_single_object_as_input_is_pointed_to_its_folder(
    tmp_path, aws, s3_bucket, no_transform_jobs
):
    put_corpus(aws, s3_bucket, {"part-1.jsonl": [{"id": "a", "text": "one"}]})
    outcome = embed_batch(
        "--outputs-file", stack_outputs(tmp_path, s3_bucket),
        f"s3://{s3_bucket}/corpus/part-1.jsonl", f"s3://{s3_bucket}/vectors/",
    )  # fmt: skip
    assert outcome.code == EXIT_USAGE
    assert f"is one object; the input is a folder: pass s3://{s3_bucket}/corpus/" in outcome.err
    assert no_transform_jobs == {}


# ---------------------------------------------------------------------------------------------
# The job's life, played over moto


def _play_in_background(platform: TransformPlatform, **kwargs) -> None:
    import threading

    def play() -> None:
        job = platform.wait_for_job()
        platform.wait_until_seen_in_progress()  # the command sees it InProgress first
        platform.run(job, **kwargs)

    threading.Thread(target=play, daemon=True).start()


def test_a_completed_job_reports_its_output_and_cost_and_the_vectors_are_right(
    tmp_path, aws, s3_bucket, transform_platform
):
    texts = put_corpus(aws, s3_bucket, RECORDS)
    _play_in_background(transform_platform)
    outcome = embed_batch(
        "--outputs-file", stack_outputs(tmp_path, s3_bucket), "--poll-seconds", "0.05",
        f"s3://{s3_bucket}/corpus/", f"s3://{s3_bucket}/vectors/",
    )  # fmt: skip
    assert outcome.code == EXIT_OK, outcome.err
    assert "is InProgress" in outcome.err and "is Completed" in outcome.err
    assert "completed: 2 of 2 object(s) written" in outcome.out
    assert f"output: s3://{s3_bucket}/vectors/" in outcome.out
    assert "estimated cost: $" in outcome.out and "$0.204/h for ml.c5.xlarge" in outcome.out
    lines = read_out(aws, s3_bucket, "a.jsonl") + read_out(aws, s3_bucket, "part/b.jsonl")
    assert [sorted(line) for line in lines] == [["SageMakerOutput", "id"]] * len(texts)
    ids = [line["id"] for line in lines]
    assert ids == [r["id"] for f in RECORDS.values() for r in f]  # in input order
    ours = np.asarray([line["SageMakerOutput"]["embedding"] for line in lines])
    theirs = SentenceTransformer(str(REFERENCE_MODEL_DIR), device="cpu").encode(
        [texts[i] for i in ids], normalize_embeddings=True
    )
    assert ours.shape == (len(ids), DIMENSIONS)
    assert ((ours * theirs).sum(axis=1)).min() >= 0.9999


def test_a_failed_job_names_the_files_without_output_and_the_logged_errors(
    tmp_path, aws, s3_bucket, transform_platform
):
    put_corpus(aws, s3_bucket, RECORDS)
    _play_in_background(transform_platform, failing=("part/b.jsonl",))
    outcome = embed_batch(
        "--outputs-file", stack_outputs(tmp_path, s3_bucket), "--poll-seconds", "0.05",
        f"s3://{s3_bucket}/corpus/", f"s3://{s3_bucket}/vectors/",
    )  # fmt: skip
    assert outcome.code == EXIT_FAILED, outcome.err
    assert "failed: 1 of 2 object(s) written" in outcome.out
    assert "failure reason: ClientError" in outcome.out
    assert f"not written: s3://{s3_bucket}/corpus/part/b.jsonl" in outcome.out
    assert f"log: 2026-01-01T00:00:00.000:[sagemaker logs]: {s3_bucket}/corpus/part/b.jsonl" in (
        outcome.out
    )


def test_ctrl_c_stops_the_job_and_waits_until_it_has_stopped(
    tmp_path, aws, s3_bucket, transform_platform
):
    put_corpus(aws, s3_bucket, RECORDS)
    environment = {
        **os.environ,
        **FAKE_CREDENTIALS,
        "AWS_ENDPOINT_URL": aws.url,
        "AWS_DEFAULT_REGION": aws.region,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "embedding_client", "embed", "batch", "--poll-seconds", "0.05"]
        + ["--outputs-file", str(stack_outputs(tmp_path, s3_bucket))]
        + [f"s3://{s3_bucket}/corpus/", f"s3://{s3_bucket}/vectors/"],
        cwd=REPO_ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    job = transform_platform.wait_for_job()
    transform_platform.wait_until_seen_in_progress()  # the command is waiting on the job
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == EXIT_INTERRUPTED, stderr
    assert transform_platform.stop_calls == [job.transform_job_name]
    assert "is Stopping" in stderr and "is Stopped" in stderr
    assert "stopped: 0 of 2 object(s) written" in stdout
    assert job.transform_job_status == "Stopped"

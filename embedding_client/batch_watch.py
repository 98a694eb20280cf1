"""`embed batch` after the job starts: what is under its S3 folders, the job polled until it ends
(stopped on Ctrl-C), and the report: objects written, cost, and the log lines naming errors.
"""

from __future__ import annotations

import time
from typing import Any, TextIO

from embedding_client.arguments import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from embedding_client.batch_job import JobSpec
from embedding_client.ctrl_c import CtrlC
from embedding_client.transport import aws_client
from facts import identifiers, pricing

FINAL_STATUSES = ("Completed", "Failed", "Stopped")
MAX_LOG_LINES = 20


def list_objects(s3: Any, url: str) -> list[tuple[str, int]]:
    """(key, size) of every object under an s3:// folder (folder markers left out)."""
    bucket, prefix = identifiers.parse_s3_url(url)
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        found += [(o["Key"], o["Size"]) for o in page.get("Contents", [])]
    return [(key, size) for key, size in found if not key.endswith("/")]


def nothing_under(s3: Any, given: str, folder: str) -> str:
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


class JobWatcher:
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


def report(
    spec: JobSpec,
    described: dict,
    status: str,
    stopped_by_user: bool,
    watcher: JobWatcher,
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

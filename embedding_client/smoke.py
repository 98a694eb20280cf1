"""Post-deploy smoke test: is the endpoint answering with plausible sentence embeddings?

    python -m embedding_client.smoke --endpoint NAME --region REGION   # SageMaker endpoint
    python -m embedding_client.smoke --url http://127.0.0.1:8080        # local endpoint

`--expected-config` runs the deploy check first (deploy_check.py). The paraphrases must be
closer to each other than to the unrelated sentence by `--min-margin`: a margin holds across
models, absolute thresholds do not (docs/environments.md). Exit 0: passed; 1: failed.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from deploy_account.session import AwsSettings, assume_roles_from_config
from embedding_client.backend import (
    EmbeddingBackend,
    EmbeddingResult,
    InputTooLargeError,
    ResponseFormatError,
    TargetError,
)
from embedding_client.deploy_check import DEFAULT_POLL_SECONDS, DEFAULT_WAIT_SECONDS
from facts.embedding_api import EmbeddingOptions

PARAPHRASES = ("A man is playing a guitar on stage.", "Someone plays the guitar at a concert.")
UNRELATED = "The tax office closes early on public holidays."
NORM_TOLERANCE = 1e-3
NORMALIZED = EmbeddingOptions(normalize=True)
DEFAULT_MIN_MARGIN = 0.05


class SmokeTestFailure(Exception):
    """The endpoint answered, but not with what an embedding model returns."""


@dataclass(frozen=True)
class SmokeReport:
    model: str
    dimensions: int
    paraphrase_similarity: float
    unrelated_similarity: float


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def check_vectors(result: EmbeddingResult, expected_dimensions: int | None) -> None:
    """Raise SmokeTestFailure unless `result` holds finite unit vectors of the expected size.

    The count and each vector's length against the declared dimensions are the response
    reader's checks (facts.embedding_api.read_response), made before a result exists.
    """
    if expected_dimensions is not None and result.dimensions != expected_dimensions:
        raise SmokeTestFailure(
            f"response declares {result.dimensions} dimensions, expected {expected_dimensions}"
        )
    for index, vector in enumerate(result.vectors):
        if not all(math.isfinite(value) for value in vector):
            raise SmokeTestFailure(f"vector {index} contains NaN or infinite values")
        norm = math.sqrt(sum(value * value for value in vector))
        if abs(norm - 1.0) > NORM_TOLERANCE:
            raise SmokeTestFailure(
                f"vector {index} has norm {norm:.6f}; normalize was requested, expected 1"
            )


def check_similarity(
    paraphrases: EmbeddingResult, unrelated: EmbeddingResult, min_margin: float
) -> tuple[float, float]:
    """(paraphrase, closest unrelated) cosine similarity; raise unless they differ by the margin."""
    if unrelated.dimensions != paraphrases.dimensions:
        raise SmokeTestFailure(
            f"two requests returned {paraphrases.dimensions} and {unrelated.dimensions} dimensions"
        )
    first, second = paraphrases.vectors
    (other,) = unrelated.vectors
    paraphrase = _cosine(first, second)
    closest_unrelated = max(_cosine(first, other), _cosine(second, other))
    if paraphrase - closest_unrelated < min_margin:
        raise SmokeTestFailure(
            f"implausible similarity: paraphrases score {paraphrase:.3f}, an unrelated sentence "
            f"{closest_unrelated:.3f}; expected the paraphrases higher by at least {min_margin}"
        )
    return paraphrase, closest_unrelated


def _with_retries(
    call: Callable[[], EmbeddingResult], attempts: int, delay_s: float
) -> EmbeddingResult:
    """Retry failed invocations (a serverless endpoint's first call may meet a cold start); an
    answer that would not change (malformed, refused input, no target) fails at once.
    """
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except (ResponseFormatError, InputTooLargeError, TargetError) as error:
            raise SmokeTestFailure(f"the endpoint's answer is unusable: {error}") from error
        except Exception as error:  # noqa: BLE001 - transport and endpoint errors are retried
            if attempt == attempts:
                raise SmokeTestFailure(
                    f"invocation failed after {attempts} attempt(s): {error}"
                ) from error
            print(f"attempt {attempt} failed ({error}); retrying in {delay_s:g} s", file=sys.stderr)
            time.sleep(delay_s)
    raise AssertionError("unreachable")


def run_smoke_test(
    backend: EmbeddingBackend,
    *,
    expected_dimensions: int | None = None,
    min_margin: float = DEFAULT_MIN_MARGIN,
    attempts: int = 3,
    retry_delay_s: float = 10.0,
) -> SmokeReport:
    """Run every check against `backend`; raise SmokeTestFailure at the first that fails."""
    paraphrases = _with_retries(
        lambda: backend.embed(list(PARAPHRASES), NORMALIZED), attempts, retry_delay_s
    )
    check_vectors(paraphrases, expected_dimensions)
    unrelated = _with_retries(
        lambda: backend.embed([UNRELATED], NORMALIZED), attempts, retry_delay_s
    )
    check_vectors(unrelated, expected_dimensions)
    paraphrase, closest_unrelated = check_similarity(paraphrases, unrelated, min_margin)
    return SmokeReport(
        model=paraphrases.model,
        dimensions=paraphrases.dimensions,
        paraphrase_similarity=round(paraphrase, 4),
        unrelated_similarity=round(closest_unrelated, 4),
    )


def _aws_settings(args: argparse.Namespace) -> AwsSettings:
    """The stack's region, profile and role chain, as the command line names them."""
    return AwsSettings(
        region=args.region,
        profile=args.profile,
        assume_roles=assume_roles_from_config(args.assume_roles, key="--assume-roles"),
    )


def _verify_deploy(args: argparse.Namespace) -> None:
    """The deploy check, when the command line names what the deploy created."""
    from embedding_client import deploy_check

    expected = deploy_check.ExpectedDeploy(
        endpoint_name=args.endpoint,
        region=args.region,
        config_name=args.expected_config,
        artifact_sha256=args.expected_sha256,
    )
    client = (
        _aws_settings(args).session().client("sagemaker", endpoint_url=args.sagemaker_endpoint_url)
    )
    live = deploy_check.verify_deploy(
        client, expected, timeout_s=args.wait, poll_s=args.poll_interval
    )
    print(
        f"deploy check passed: {args.endpoint} is {live.status} on {live.config_name}",
        file=sys.stderr,
    )


def _backend(args: argparse.Namespace) -> EmbeddingBackend:
    from embedding_client.backend_local import HttpBackend
    from embedding_client.backend_sagemaker import SageMakerBackend

    if args.url:
        return HttpBackend(args.url)
    return SageMakerBackend(
        args.endpoint,
        args.region,
        endpoint_url=args.endpoint_url,
        session=_aws_settings(args).session(),
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m embedding_client.smoke", description=__doc__.splitlines()[0]
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--endpoint", help="SageMaker endpoint name (needs --region)")
    target.add_argument("--url", help="local endpoint base URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("--region", help="AWS region of --endpoint")
    parser.add_argument("--endpoint-url", help="sagemaker-runtime endpoint override")
    parser.add_argument(
        "--sagemaker-endpoint-url",
        help="SageMaker API endpoint override for the deploy check (an emulator)",
    )
    parser.add_argument("--profile", help="AWS profile (the stack's aws:profile)")
    parser.add_argument(
        "--assume-roles",
        help="roles to assume in turn, as JSON in the shape of the stack's aws:assumeRoles",
    )
    parser.add_argument(
        "--expected-config",
        help="run the deploy check first: the endpoint configuration the deploy created",
    )
    parser.add_argument(
        "--expected-sha256", help="with --expected-config: the archive the deploy packaged"
    )
    parser.add_argument(
        "--skip-invocations",
        action="store_true",
        help="with --expected-config: run the deploy check alone (the stack's smokeTest: false)",
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=DEFAULT_WAIT_SECONDS,
        help="seconds the deploy check waits while the endpoint is Creating or Updating",
    )
    parser.add_argument(
        "--poll-interval", type=float, default=DEFAULT_POLL_SECONDS, help=argparse.SUPPRESS
    )
    parser.add_argument("--expected-dimensions", type=int, help="the model's embedding size")
    parser.add_argument("--min-margin", type=float, default=DEFAULT_MIN_MARGIN)
    parser.add_argument("--attempts", type=int, default=3, help="invocation attempts")
    parser.add_argument("--retry-delay", type=float, default=10.0, help="seconds between them")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.endpoint and not args.region:
        parser.error("--endpoint needs --region")
    if args.attempts < 1:
        parser.error("--attempts must be at least 1")
    if (args.expected_config or args.expected_sha256) and not args.endpoint:
        parser.error("--expected-config and --expected-sha256 need --endpoint")
    if args.expected_sha256 and not args.expected_config:
        parser.error("--expected-sha256 needs --expected-config")
    if args.skip_invocations and not args.expected_config:
        parser.error("--skip-invocations needs --expected-config: there would be nothing to check")
    target = args.url or f"endpoint {args.endpoint} in {args.region}"
    if args.expected_config:
        from botocore.exceptions import BotoCoreError, ClientError

        from embedding_client.deploy_check import DeployCheckFailure

        try:
            _verify_deploy(args)
        except DeployCheckFailure as failure:
            print(str(failure), file=sys.stderr)
            return 1
        except (BotoCoreError, ClientError) as error:
            print(f"deploy check could not read {target}: {error}", file=sys.stderr)
            return 1
        if args.skip_invocations:
            print(json.dumps({"deploy_check": "passed", "target": target}))
            return 0
    try:
        backend = _backend(args)
    except Exception as error:  # noqa: BLE001 - a bad profile or role chain, said in one line
        print(f"smoke test failed ({target}): AWS settings unusable: {error}", file=sys.stderr)
        return 1
    try:
        report = run_smoke_test(
            backend,
            expected_dimensions=args.expected_dimensions,
            min_margin=args.min_margin,
            attempts=args.attempts,
            retry_delay_s=args.retry_delay,
        )
    except SmokeTestFailure as failure:
        print(f"smoke test failed ({target}): {failure}", file=sys.stderr)
        if args.endpoint:
            from facts.sagemaker_endpoints import endpoint_log_group

            print(
                f"logs: CloudWatch log group {endpoint_log_group(args.endpoint)}", file=sys.stderr
            )
        return 1
    print(json.dumps({"smoke_test": "passed", "target": target, **asdict(report)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

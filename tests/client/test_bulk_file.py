"""`embed file` end to end: the local endpoint, a SageMaker endpoint (moto's control plane and a
sagemaker-runtime fault layer in front of the real model), and Bedrock (its fixture).

What the issue asks of it: Parquet read back with pyarrow matches sentence-transformers; a killed
and resumed run writes each id exactly once; injected throttling halves the concurrency and it
recovers; a bad document lands in the error file while the rest is embedded.
"""

from __future__ import annotations

import io
import json
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from sentence_transformers import SentenceTransformer

from embedding_client.arguments import EXIT_FAILED, EXIT_OK, EXIT_REFUSED, EXIT_USAGE
from embedding_client.bulk_command import EXIT_INTERRUPTED, run
from embedding_client.serve import LocalEndpoint
from tests.fixtures.aws import FAKE_CREDENTIALS, AwsEndpoint
from tests.fixtures.sagemaker_runtime import FaultyRuntime
from tests.support.models import DIMENSIONS, REFERENCE_MODEL_DIR, REPO_ROOT

WORDS = "river mountain bread coffee engine violin garden winter market signal harbor".split()


def corpus_texts(count: int, seed: int = 0) -> list[str]:
    """Deterministic short documents of 3 to 30 words."""
    rng = np.random.default_rng(seed)
    return [
        " ".join(rng.choice(WORDS, size=int(rng.integers(3, 30)))) + f" ({index})"
        for index in range(count)
    ]


def write_corpus(path: Path, texts: list[str], id_prefix: str = "doc-") -> dict[str, str]:
    records = {f"{id_prefix}{i}": text for i, text in enumerate(texts)}
    path.write_text("".join(json.dumps({"id": k, "text": v}) + "\n" for k, v in records.items()))
    return records


def read_output(path: Path) -> dict[str, list[float]]:
    """id → vector, asserting that no id appears twice."""
    if path.suffix == ".parquet":
        rows = pq.read_table(path).to_pylist()
    else:
        rows = [json.loads(line) for line in path.read_text().splitlines()]
    ids = [row["id"] for row in rows]
    assert len(ids) == len(set(ids)), "an id was written twice"
    return {row["id"]: row["vector"] for row in rows}


class Outcome:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err


def embed_file(*argv: str) -> Outcome:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = run([str(a) for a in argv], stdout, stderr)
    return Outcome(code, stdout.getvalue(), stderr.getvalue())


@pytest.fixture(scope="module")
def sentence_transformer() -> SentenceTransformer:
    return SentenceTransformer(str(REFERENCE_MODEL_DIR), device="cpu")


def assert_matches_sentence_transformers(model, vectors: dict[str, list[float]], records):
    ids = sorted(vectors)
    theirs = model.encode([records[i] for i in ids], normalize_embeddings=True)
    ours = np.asarray([vectors[i] for i in ids], dtype=np.float32)
    assert ours.shape == (len(ids), DIMENSIONS)
    cosine = (ours * theirs).sum(axis=1) / np.linalg.norm(ours, axis=1)
    assert cosine.min() >= 0.9999


@pytest.fixture
def local_url(reference_endpoint: LocalEndpoint) -> str:
    return reference_endpoint.url


# ---------------------------------------------------------------------------------------------
# The local endpoint


def test_parquet_output_read_back_with_pyarrow_matches_sentence_transformers(
    tmp_path, local_url, sentence_transformer
):
    texts = corpus_texts(60) + ["Ein Mann isst Essen.", "短い文", "  spaced out  "]
    records = write_corpus(tmp_path / "corpus.jsonl", texts)
    outcome = embed_file(
        tmp_path / "corpus.jsonl", "--out", tmp_path / "v.parquet", "--url", local_url
    )
    assert outcome.code == EXIT_OK, outcome.err
    assert f"done: {len(records)} embedded, 0 skipped" in outcome.out
    table = pq.read_table(tmp_path / "v.parquet")
    assert (
        str(table.schema.field("vector").type) == f"fixed_size_list<element: float>[{DIMENSIONS}]"
    )
    assert set(table.column("model").to_pylist()) == {"model"}
    assert set(table.column("dimensions").to_pylist()) == {DIMENSIONS}
    assert_matches_sentence_transformers(
        sentence_transformer, read_output(tmp_path / "v.parquet"), records
    )
    assert not (tmp_path / "v.parquet.errors.jsonl").exists()


def test_bad_documents_land_in_the_error_file_and_the_rest_is_embedded(
    tmp_path, local_url, sentence_transformer
):
    texts = corpus_texts(30)
    texts[4] = ""  # empty
    texts[9] = "word " * 400  # over the model's 256 tokens: the endpoint refuses it (no truncate)
    texts[17] = "x" * 4_100_000  # over a request's 4 MB on its own
    records = write_corpus(tmp_path / "corpus.jsonl", texts)
    outcome = embed_file(
        tmp_path / "corpus.jsonl",
        "--out",
        tmp_path / "v.jsonl",
        "--url",
        local_url,
        "--no-truncate",
    )
    assert outcome.code == EXIT_REFUSED, outcome.err
    assert "27 embedded" in outcome.out and "3 failed (listed in" in outcome.out
    errors = {
        line["id"]: line for line in map(json.loads, (tmp_path / "v.jsonl.errors.jsonl").open())
    }
    assert sorted(errors) == ["doc-17", "doc-4", "doc-9"]
    assert errors["doc-4"]["error"] == "empty text: nothing to embed"
    assert "max_seq_length" in errors["doc-9"]["error"] and errors["doc-9"]["position"] == 10
    assert "one request holds at most 4000000 bytes" in errors["doc-17"]["error"]
    vectors = read_output(tmp_path / "v.jsonl")
    assert sorted(vectors) == sorted(set(records) - set(errors))
    good = {k: v for k, v in records.items() if k not in errors}
    assert_matches_sentence_transformers(sentence_transformer, vectors, good)


def test_duplicate_ids_are_embedded_once_and_counted(tmp_path, local_url):
    path = tmp_path / "corpus.jsonl"
    path.write_text(
        "".join(json.dumps({"id": i, "text": f"text {n}"}) + "\n" for n, i in enumerate("abab"))
    )
    outcome = embed_file(path, "--out", tmp_path / "v.jsonl", "--url", local_url)
    assert outcome.code == EXIT_OK and "2 duplicate ids skipped" in outcome.out
    assert sorted(read_output(tmp_path / "v.jsonl")) == ["a", "b"]


def test_plain_text_and_csv_inputs_are_embedded_with_their_ids(tmp_path, local_url):
    (tmp_path / "lines.txt").write_text("first line\nsecond line\n")
    outcome = embed_file(tmp_path / "lines.txt", "--out", tmp_path / "t.jsonl", "--url", local_url)
    assert outcome.code == EXIT_OK, outcome.err
    assert sorted(read_output(tmp_path / "t.jsonl")) == ["1", "2"]
    (tmp_path / "c.csv").write_text('key,body\nk1,"one, two"\nk2,three\n')
    outcome = embed_file(
        tmp_path / "c.csv", "--out", tmp_path / "c.parquet", "--url", local_url,
        "--id-field", "key", "--text-field", "body",
    )  # fmt: skip
    assert outcome.code == EXIT_OK, outcome.err
    assert sorted(read_output(tmp_path / "c.parquet")) == ["k1", "k2"]


def test_an_unusable_input_or_output_fails_before_anything_is_sent(tmp_path, local_url):
    (tmp_path / "c.csv").write_text("key,text\n1,a\n")
    outcome = embed_file(tmp_path / "c.csv", "--out", tmp_path / "v.jsonl", "--url", local_url)
    assert outcome.code == EXIT_USAGE and "no column 'id'" in outcome.err
    write_corpus(tmp_path / "c.jsonl", ["a"])
    outcome = embed_file(tmp_path / "c.jsonl", "--out", tmp_path / "v.csv", "--url", local_url)
    assert outcome.code == EXIT_USAGE and "expected one of .jsonl, .parquet" in outcome.err
    assert not (tmp_path / "v.jsonl").exists()


def test_a_duplicate_whose_first_copy_is_refused_is_still_embedded(tmp_path, local_url):
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"id": "x", "text": ""}\n{"id": "x", "text": "the real text"}\n')
    outcome = embed_file(path, "--out", tmp_path / "v.jsonl", "--url", local_url)
    assert outcome.code == EXIT_REFUSED  # the empty copy is listed as refused
    assert sorted(read_output(tmp_path / "v.jsonl")) == ["x"]


@pytest.mark.parametrize(
    "foreign",
    ['{"id": "a", "vector": [1, 2]}\n', '{"id": "a", "text": "an input, not vectors"}\n'],
    ids=["no-model", "an-input-file"],
)
def test_an_output_this_command_did_not_write_is_a_usage_error(tmp_path, local_url, foreign):
    write_corpus(tmp_path / "c.jsonl", ["a"])
    (tmp_path / "v.jsonl").write_text(foreign)
    outcome = embed_file(tmp_path / "c.jsonl", "--out", tmp_path / "v.jsonl", "--url", local_url)
    assert outcome.code == EXIT_USAGE, outcome.err
    assert "line 1 is not a vector line this command wrote" in outcome.err
    assert "Traceback" not in outcome.err


def test_a_parquet_part_of_other_columns_is_a_usage_error(tmp_path, local_url):
    import pyarrow as pa

    write_corpus(tmp_path / "c.jsonl", ["a"])
    (tmp_path / "v.parquet").mkdir()
    pq.write_table(pa.table({"id": ["a"]}), tmp_path / "v.parquet" / "part-0.parquet")
    outcome = embed_file(tmp_path / "c.jsonl", "--out", tmp_path / "v.parquet", "--url", local_url)
    assert outcome.code == EXIT_USAGE, outcome.err
    assert "part-0.parquet is not a part this command wrote (its columns: ['id'])" in outcome.err


def test_an_output_folder_that_does_not_exist_fails_before_anything_is_sent(tmp_path, local_url):
    write_corpus(tmp_path / "c.jsonl", ["a"])
    out = tmp_path / "missing" / "v.jsonl"
    outcome = embed_file(tmp_path / "c.jsonl", "--out", out, "--url", local_url)
    assert outcome.code == EXIT_USAGE and "No such file or directory" in outcome.err
    assert "via local endpoint" not in outcome.err  # stopped before the run's header


def test_a_target_that_cannot_be_reached_leaves_no_output_behind(tmp_path):
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    write_corpus(tmp_path / "c.jsonl", ["a"])
    outcome = embed_file(tmp_path / "c.jsonl", "--out", tmp_path / "v.jsonl", "--url", url)
    assert outcome.code != EXIT_OK
    assert not (tmp_path / "v.jsonl").exists()


def test_a_file_that_is_not_parquet_is_named_in_one_line(tmp_path, local_url):
    (tmp_path / "c.parquet").write_text("junk\n")
    outcome = embed_file(tmp_path / "c.parquet", "--out", tmp_path / "v.jsonl", "--url", local_url)
    assert outcome.code == EXIT_USAGE
    assert outcome.err.startswith(f"embed file: {tmp_path / 'c.parquet'}: not a readable Parquet")
    assert "Traceback" not in outcome.err and not (tmp_path / "v.jsonl").exists()


def test_a_damaged_part_of_the_output_is_named_on_resume(tmp_path, local_url):
    write_corpus(tmp_path / "c.jsonl", ["a", "b"])
    out = tmp_path / "v.parquet"
    assert embed_file(tmp_path / "c.jsonl", "--out", out, "--url", local_url).code == EXIT_OK
    part = next(out.glob("*.parquet"))
    part.write_bytes(part.read_bytes()[: part.stat().st_size // 2])
    outcome = embed_file(tmp_path / "c.jsonl", "--out", out, "--url", local_url)
    assert outcome.code == EXIT_USAGE and f"{part}: not a readable Parquet" in outcome.err
    assert "Traceback" not in outcome.err


def _embed_file_process(corpus: Path, out: Path, url: str, *extra: str) -> subprocess.Popen:
    """`python -m embedding_client embed file ...` in its own process, as a user runs it."""
    return subprocess.Popen(
        [sys.executable, "-m", "embedding_client", "embed", "file", str(corpus), "--out", str(out)]
        + ["--url", url, "--concurrency", "1", "--max-tokens", "40", *extra],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _written(out: Path) -> int:
    if out.suffix == ".parquet":
        return len(list(out.glob("part-*.parquet"))) if out.exists() else 0
    return out.read_text().count("\n") if out.exists() else 0


def _wait_until_written(process: subprocess.Popen, out: Path, at_least: int) -> None:
    deadline = time.monotonic() + 120
    while _written(out) < at_least:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the run wrote nothing in time"
        time.sleep(0.02)


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_killed_then_interrupted_then_finished_run_writes_each_id_exactly_once(
    tmp_path, local_url, sentence_transformer, suffix
):
    records = write_corpus(tmp_path / "corpus.jsonl", corpus_texts(240, seed=3))
    out = tmp_path / f"v{suffix}"
    extra = ("--part-rows", "8") if suffix == ".parquet" else ()

    killed = _embed_file_process(tmp_path / "corpus.jsonl", out, local_url, *extra)
    _wait_until_written(killed, out, 3)
    killed.send_signal(signal.SIGKILL)  # no chance to clean up
    killed.communicate(timeout=30)
    after_kill = read_output(out)  # readable as it is
    assert 0 < len(after_kill) < len(records)

    interrupted = _embed_file_process(tmp_path / "corpus.jsonl", out, local_url, *extra)
    _wait_until_written(interrupted, out, _written(out) + 3)
    interrupted.send_signal(signal.SIGINT)
    stdout, stderr = interrupted.communicate(timeout=60)
    assert interrupted.returncode == EXIT_INTERRUPTED, stderr
    assert f"resuming after {len(after_kill)} ids" in stderr
    assert "interrupted: rerun the same command" in stdout
    after_interrupt = read_output(out)
    assert len(after_kill) < len(after_interrupt) < len(records)

    finished = embed_file(tmp_path / "corpus.jsonl", "--out", out, "--url", local_url, *extra)
    assert finished.code == EXIT_OK, finished.err
    assert f"{len(after_interrupt)} skipped (already in the output)" in finished.out
    vectors = read_output(out)
    assert sorted(vectors) == sorted(records)
    assert_matches_sentence_transformers(sentence_transformer, vectors, records)
    assert not list(out.parent.glob("**/.part-*"))


def test_embedding_a_text_that_reads_file_still_works_the_old_way(local_url, capsys):
    from embedding_client import __main__ as package_main

    assert package_main.main(["embed", "--url", local_url, "file"]) == EXIT_OK
    assert '[0] "file"' in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# A SageMaker endpoint: moto's control plane, the fault layer as sagemaker-runtime


def serverless_endpoint(aws: AwsEndpoint, max_concurrency: int, memory_mb: int = 2048) -> str:
    """An endpoint in moto whose configuration says ServerlessConfig(memory, MaxConcurrency)."""
    sagemaker = aws.client("sagemaker")
    name = f"ep-{uuid.uuid4().hex[:8]}"
    sagemaker.create_model(
        ModelName=f"{name}-model",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/sagemaker",
        PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1"},
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=f"{name}-config",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": f"{name}-model",
                "ServerlessConfig": {
                    "MemorySizeInMB": memory_mb,
                    "MaxConcurrency": max_concurrency,
                },
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")
    return name


def stack_outputs_file(tmp_path: Path, endpoint: str, runtime: FaultyRuntime) -> Path:
    """What a local stack exports: the endpoint, its region, where its runtime answers."""
    path = tmp_path / "outputs.json"
    outputs = {"endpointName": endpoint, "region": "us-east-1", "sagemakerRuntimeUrl": runtime.url}
    path.write_text(json.dumps(outputs))
    return path


def test_concurrency_starts_at_the_endpoints_max_concurrency_and_cost_is_estimated(
    tmp_path, aws, faulty_runtime, sentence_transformer
):
    endpoint = serverless_endpoint(aws, max_concurrency=3, memory_mb=3072)
    faulty_runtime.hold = {2: 3}  # the first batch waits until the client has sent three
    records = write_corpus(tmp_path / "corpus.jsonl", corpus_texts(90, seed=5))
    outcome = embed_file(
        tmp_path / "corpus.jsonl", "--out", tmp_path / "v.parquet",
        "--outputs-file", stack_outputs_file(tmp_path, endpoint, faulty_runtime),
        "--max-tokens", "60",
    )  # fmt: skip
    assert outcome.code == EXIT_OK, outcome.err
    assert "3 in flight (the endpoint's MaxConcurrency)" in outcome.err
    assert max(faulty_runtime.in_flight_by_request) == 3
    assert "estimated cost: $" in outcome.out and "(serverless 3072 MB:" in outcome.out
    assert_matches_sentence_transformers(
        sentence_transformer, read_output(tmp_path / "v.parquet"), records
    )


def test_injected_throttling_halves_the_concurrency_and_it_grows_back(
    tmp_path, aws, faulty_runtime, sentence_transformer
):
    endpoint = serverless_endpoint(aws, max_concurrency=4)
    # Request 1 is the info request; the first round of four batches is throttled (one of them
    # as a serverless endpoint still scaling up), and so is the first request after the cut.
    faulty_runtime.faults = {
        2: "throttle",
        3: "throttle",
        4: "not-ready",
        5: "throttle",
        6: "throttle",
    }
    # A request of the run's second half (it sends about 140) waits until three are in flight:
    # the endpoint sees the grown-back concurrency whatever the machine's speed.
    faulty_runtime.hold = {100: 3}
    records = write_corpus(tmp_path / "corpus.jsonl", corpus_texts(160, seed=7))
    outcome = embed_file(
        tmp_path / "corpus.jsonl", "--out", tmp_path / "v.jsonl",
        "--outputs-file", stack_outputs_file(tmp_path, endpoint, faulty_runtime),
        "--max-tokens", "60",
    )  # fmt: skip
    assert outcome.code == EXIT_OK, outcome.err
    assert "5 throttled" in outcome.out
    # 4 → 2 → 1: halved once per round of requests, not once per throttled request; then grown
    # back to the endpoint's MaxConcurrency, and the endpoint saw more than the halved 2 again.
    assert "concurrency lowest 1, at the end 4" in outcome.out
    assert faulty_runtime.requests > 100
    later = faulty_runtime.in_flight_by_request[len(faulty_runtime.in_flight_by_request) // 2 :]
    assert max(later) >= 3
    vectors = read_output(tmp_path / "v.jsonl")
    assert sorted(vectors) == sorted(records)
    assert_matches_sentence_transformers(sentence_transformer, vectors, records)


def test_an_endpoint_that_keeps_failing_stops_the_run_and_a_rerun_finishes_it(
    tmp_path, aws, faulty_runtime
):
    endpoint = serverless_endpoint(aws, max_concurrency=2)
    records = write_corpus(tmp_path / "corpus.jsonl", corpus_texts(120, seed=9))
    outputs = stack_outputs_file(tmp_path, endpoint, faulty_runtime)
    faulty_runtime.fail_from = 8
    args = [tmp_path / "corpus.jsonl", "--out", tmp_path / "v.parquet", "--outputs-file", outputs]
    outcome = embed_file(*args, "--max-tokens", "60")
    assert outcome.code == EXIT_FAILED, outcome.err
    assert "stopped: " in outcome.out and "InternalFailure" in outcome.out
    partial = read_output(tmp_path / "v.parquet")
    assert 0 < len(partial) < len(records)

    faulty_runtime.reset()
    outcome = embed_file(*args)
    assert outcome.code == EXIT_OK, outcome.err
    assert sorted(read_output(tmp_path / "v.parquet")) == sorted(records)
    # The rerun sent only what was missing: one info request, then the rest.
    assert sum(1 for _ in faulty_runtime.answered) < 1 + len(records)


@pytest.mark.parametrize("fault", ["expired", "no-endpoint"])
def test_a_refusal_of_the_request_itself_stops_the_run_instead_of_failing_every_document(
    tmp_path, aws, faulty_runtime, fault
):
    endpoint = serverless_endpoint(aws, max_concurrency=2)
    write_corpus(tmp_path / "corpus.jsonl", corpus_texts(120, seed=11))
    outputs = stack_outputs_file(tmp_path, endpoint, faulty_runtime)
    faulty_runtime.fail_from, faulty_runtime.fail_with = 4, fault
    out = tmp_path / "v.jsonl"
    outcome = embed_file(
        tmp_path / "corpus.jsonl", "--out", out, "--outputs-file", outputs, "--max-tokens", "60"
    )
    assert outcome.code == EXIT_FAILED, outcome.err
    assert "refuses the request itself, not a document" in outcome.out
    assert (
        not (tmp_path / "v.jsonl.errors.jsonl").exists()
        or not (tmp_path / "v.jsonl.errors.jsonl").read_text()
    )
    # No splitting down to single documents: the requests in flight, not twice the corpus.
    assert faulty_runtime.requests < 10


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (("--dimensions", "1024"), f"--dimensions 1024: .* gives 1 to {DIMENSIONS} dimensions"),
        (("--prompt-name", "query"), "--prompt-name 'query': the prompts of .* are none"),
    ],
)
def test_an_option_the_model_lacks_fails_before_the_corpus_is_sent(
    tmp_path, local_url, option, message
):
    write_corpus(tmp_path / "corpus.jsonl", corpus_texts(40))
    outcome = embed_file(
        tmp_path / "corpus.jsonl", "--out", tmp_path / "v.jsonl", "--url", local_url, *option
    )
    assert outcome.code == EXIT_USAGE, outcome.err
    assert re.search(message, outcome.err), outcome.err
    assert not (tmp_path / "v.jsonl.errors.jsonl").exists()


def finished_run(tmp_path, aws, faulty_runtime, out: str) -> list:
    """The arguments of a run of 20 documents that finished (the runtime's counts reset after)."""
    endpoint = serverless_endpoint(aws, max_concurrency=2)
    write_corpus(tmp_path / "corpus.jsonl", corpus_texts(20))
    outputs = stack_outputs_file(tmp_path, endpoint, faulty_runtime)
    args = [tmp_path / "corpus.jsonl", "--out", tmp_path / out, "--outputs-file", outputs]
    assert embed_file(*args).code == EXIT_OK
    faulty_runtime.reset()
    return args


def test_a_finished_output_is_skipped_without_sending_anything(tmp_path, aws, faulty_runtime):
    args = finished_run(tmp_path, aws, faulty_runtime, "v.jsonl")
    outcome = embed_file(*args)
    assert outcome.code == EXIT_OK and "0 embedded, 20 skipped" in outcome.out
    assert faulty_runtime.requests == 1  # the info request only


def test_resuming_with_other_dimensions_is_refused_before_anything_is_sent(
    tmp_path, aws, faulty_runtime
):
    args = finished_run(tmp_path, aws, faulty_runtime, "v.parquet")
    outcome = embed_file(*args, "--dimensions", "64")
    assert outcome.code == EXIT_USAGE, outcome.err
    assert (
        f"({DIMENSIONS} dimensions); this run gives" in outcome.err
        and "(64 dimensions)" in outcome.err
    )
    assert faulty_runtime.requests == 1  # the info request only


def test_resuming_without_normalizing_is_refused_before_anything_is_sent(
    tmp_path, aws, faulty_runtime
):
    args = finished_run(tmp_path, aws, faulty_runtime, "v.jsonl")
    outcome = embed_file(*args, "--no-normalize")
    assert outcome.code == EXIT_USAGE, outcome.err
    assert 'options {"normalize":true}; this run asks for {"normalize":false}' in outcome.err
    assert faulty_runtime.requests == 1  # the info request only


def test_a_cold_endpoint_answering_model_not_ready_is_asked_again(tmp_path, aws, faulty_runtime):
    """A serverless endpoint scaling up from zero: the first request (the info) meets it."""
    endpoint = serverless_endpoint(aws, max_concurrency=2)
    write_corpus(tmp_path / "corpus.jsonl", corpus_texts(10))
    faulty_runtime.faults = {1: "not-ready"}
    outcome = embed_file(
        tmp_path / "corpus.jsonl", "--out", tmp_path / "v.jsonl",
        "--outputs-file", stack_outputs_file(tmp_path, endpoint, faulty_runtime),
    )  # fmt: skip
    assert outcome.code == EXIT_OK, outcome.err
    assert len(read_output(tmp_path / "v.jsonl")) == 10


# ---------------------------------------------------------------------------------------------
# Bedrock


def test_bedrock_titan_corpus_is_embedded_one_text_per_call_with_a_token_cost(
    tmp_path, bedrock_api, monkeypatch
):
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", bedrock_api.url)
    records = write_corpus(tmp_path / "corpus.jsonl", corpus_texts(12))
    bedrock_api.fail_next("ThrottlingException", times=2)
    outcome = embed_file(
        tmp_path / "corpus.jsonl", "--out", tmp_path / "v.jsonl", "--region", "us-east-1",
        "--bedrock", "amazon.titan-embed-text-v2:0", "--dimensions", "256",
    )  # fmt: skip
    assert outcome.code == EXIT_OK, outcome.err
    assert "2 throttled" in outcome.out
    # Tokens as Bedrock counts them (its fixture answers one per call), at Titan v2's price.
    assert f"(Bedrock: {len(records)} tokens × $2e-05/1k" in outcome.out
    vectors = read_output(tmp_path / "v.jsonl")
    assert sorted(vectors) == sorted(records) and {len(v) for v in vectors.values()} == {256}
    assert len(bedrock_api.calls) == len(records) + 2


def test_bedrock_refuses_prompts_before_sending(tmp_path, bedrock_api, monkeypatch):
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", bedrock_api.url)
    write_corpus(tmp_path / "corpus.jsonl", ["a"])
    outcome = embed_file(
        tmp_path / "corpus.jsonl", "--out", tmp_path / "v.jsonl", "--region", "us-east-1",
        "--bedrock", "amazon.titan-embed-text-v2:0", "--prompt-name", "query",
    )  # fmt: skip
    assert outcome.code == EXIT_USAGE and "prompt" in outcome.err
    assert bedrock_api.calls == []


def test_bedrock_resume_with_other_options_is_refused_before_sending(
    tmp_path, bedrock_api, monkeypatch
):
    """Bedrock states no model or size up front; the options are the command's own."""
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", bedrock_api.url)
    write_corpus(tmp_path / "corpus.jsonl", corpus_texts(4))
    args = [tmp_path / "corpus.jsonl", "--out", tmp_path / "v.jsonl", "--region", "us-east-1"]
    args += ["--bedrock", "amazon.titan-embed-text-v2:0"]
    assert embed_file(*args, "--no-normalize").code == EXIT_OK
    write_corpus(tmp_path / "corpus.jsonl", corpus_texts(8))
    calls = len(bedrock_api.calls)
    outcome = embed_file(*args)
    assert outcome.code == EXIT_USAGE, outcome.err
    assert 'options {"normalize":false}; this run asks for {"normalize":true}' in outcome.err
    assert len(bedrock_api.calls) == calls


def test_embed_file_needs_no_torch_in_the_client_process():
    """The client runs where `pulumi up` runs: importing it must not pull in torch."""
    code = "import sys, embedding_client.bulk_command; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=False).returncode == 0


@pytest.mark.parametrize("word", ["file", "batch"])
def test_the_embed_command_takes_file_and_batch_as_subcommands(word, capsys):
    import tomllib

    from embedding_client import cli

    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["embed"] == "embedding_client.cli:main"
    with pytest.raises(SystemExit) as exited:
        cli.main([word, "--help"])
    assert exited.value.code == 0
    assert f"usage: embed {word}" in capsys.readouterr().out

"""The `embed` command: output, targets and the exit codes scripts rely on."""

from __future__ import annotations

import io
import json
import os
import stat
import uuid
from pathlib import Path

import numpy as np
import pytest

from embedding_client import __main__ as package_main
from embedding_client import stack_outputs
from embedding_client.arguments import EXIT_FAILED, EXIT_OK, EXIT_REFUSED, EXIT_TARGET, EXIT_USAGE
from embedding_client.embed import _Streams, cosine_matrix, run
from embedding_client.serve import LocalEndpoint
from tests.fixtures.aws import FAKE_CREDENTIALS, AwsEndpoint, queue_sagemaker_results
from tests.support.models import DIMENSIONS

PARAPHRASES = ["A man is eating food.", "A man is eating a piece of bread."]
UNRELATED = "The stock market fell sharply today."


class TtyLessInput(io.StringIO):
    def isatty(self) -> bool:
        return False


class Console:
    """Captured streams for one `embed` run."""

    def __init__(self, stdin: str = "") -> None:
        self.streams = _Streams(TtyLessInput(stdin), io.StringIO(), io.StringIO())

    def run(self, *argv: str) -> int:
        return run(list(argv), self.streams)

    @property
    def out(self) -> str:
        return self.streams.stdout.getvalue()

    @property
    def err(self) -> str:
        return self.streams.stderr.getvalue()


@pytest.fixture
def local_url(reference_endpoint: LocalEndpoint) -> str:
    return reference_endpoint.url


def write_outputs(tmp_path: Path, outputs: dict) -> str:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs))
    return str(path)


def test_report_shows_model_dimensions_vectors_and_similarity_matrix(local_url):
    console = Console()
    assert console.run("--url", local_url, *PARAPHRASES, UNRELATED) == EXIT_OK
    lines = console.out.splitlines()
    assert lines[0] == "model: model"  # the served folder's name; no --model-id given
    assert lines[1] == f"dimensions: {DIMENSIONS}"
    assert lines[2].startswith("tokens: ") and int(lines[2].split()[1]) > 3 * 3
    assert lines[3].startswith('[0] "A man is eating food." [') and "…" in lines[3]
    assert "cosine similarity:" in lines
    matrix_rows = lines[lines.index("cosine similarity:") + 2 :]
    assert len(matrix_rows) == 3
    assert float(matrix_rows[0].split()[1]) == pytest.approx(1.0, abs=1e-3)


def test_json_output_carries_vectors_and_a_matrix_where_paraphrases_are_closest(local_url):
    console = Console()
    assert console.run("--url", local_url, "--json", *PARAPHRASES, UNRELATED) == EXIT_OK
    document = json.loads(console.out)
    assert document["dimensions"] == DIMENSIONS and len(document["embeddings"]) == 3
    similarity = document["similarity"]
    assert all(abs(similarity[i][i] - 1) < 1e-6 for i in range(3))
    assert similarity[0][1] > similarity[0][2] + 0.3


def test_api_options_reach_the_endpoint_and_base64_gives_the_same_vectors(local_url):
    plain, packed = Console(), Console()
    options = ["--prompt", "query: ", "--dimensions", "64"]
    assert plain.run("--url", local_url, "--json", *options, *PARAPHRASES) == EXIT_OK
    assert packed.run("--url", local_url, "--json", "--base64", *options, *PARAPHRASES) == EXIT_OK
    first, second = json.loads(plain.out), json.loads(packed.out)
    assert first["dimensions"] == second["dimensions"] == 64
    assert np.array_equal(np.float32(first["embeddings"]), np.float32(second["embeddings"]))
    assert first["prompt_tokens"] > 2 * len(PARAPHRASES)


def test_unknown_prompt_name_is_refused_with_the_endpoints_message(local_url):
    console = Console()
    assert console.run("--url", local_url, "--prompt-name", "query", "text") == EXIT_REFUSED
    assert "prompt_name 'query' is not one of this model's prompts" in console.err


def test_more_texts_than_one_request_are_sized_by_the_endpoints_info(local_url):
    texts = [f"sentence number {i}" for i in range(300)]
    console = Console(stdin="\n".join(texts) + "\n")
    assert console.run("--url", local_url, "--json", "--base64") == EXIT_OK
    assert len(json.loads(console.out)["embeddings"]) == 300


def test_texts_are_read_from_stdin_one_per_line(local_url):
    console = Console(stdin="first line\n\nsecond line\n")
    assert console.run("--url", local_url, "--json") == EXIT_OK
    assert json.loads(console.out)["texts"] == ["first line", "second line"]


def test_windows_line_ends_on_stdin_are_not_part_of_the_texts(local_url):
    console = Console(stdin="first line\r\nsecond line\r\n")
    assert console.run("--url", local_url, "--json") == EXIT_OK
    assert json.loads(console.out)["texts"] == ["first line", "second line"]


def test_no_texts_is_a_usage_error():
    console = Console()
    assert console.run("--url", "http://127.0.0.1:9") == EXIT_USAGE
    assert "no texts" in console.err


# What a terminal passes for a byte its encoding cannot read (here 0xff): a lone surrogate.
NOT_UTF8 = b"\xffabc".decode("utf-8", "surrogateescape")


@pytest.mark.parametrize(
    "where", [["--prompt", NOT_UTF8, "a"], ["--prompt-name", NOT_UTF8, "a"], [NOT_UTF8]]
)
def test_an_argument_that_is_not_utf8_is_a_usage_error_naming_it(where, capsys):
    with pytest.raises(SystemExit) as raised:
        Console().run("--url", "http://127.0.0.1:9", *where)
    assert raised.value.code == EXIT_USAGE
    assert "not UTF-8 text at character 0 (shown as ?): '?abc'" in capsys.readouterr().err


def test_a_stdin_line_that_is_not_utf8_is_a_usage_error_naming_the_line():
    console = Console(stdin=f"first\n\n{NOT_UTF8}\n")
    assert console.run("--url", "http://127.0.0.1:9") == EXIT_USAGE
    assert "stdin line 3: not UTF-8 text" in console.err


def test_missing_target_is_an_argparse_usage_error():
    with pytest.raises(SystemExit) as raised:
        Console().run("hello")
    assert raised.value.code == EXIT_USAGE


def test_refused_request_exits_4_with_the_endpoints_message(local_url):
    console = Console()
    code = console.run("--url", local_url, "--no-truncate", "word " * 400)
    assert code == EXIT_REFUSED
    assert "longer than the max_seq_length of 256 tokens" in console.err


def test_unreachable_endpoint_exits_5():
    console = Console()
    assert console.run("--url", "http://127.0.0.1:9", "hello") == EXIT_FAILED
    assert "cannot connect" in console.err


def test_outputs_file_missing_the_endpoint_exits_3_naming_the_output(tmp_path):
    console = Console()
    outputs = write_outputs(tmp_path, {"backend": "sagemaker", "region": "us-east-1"})
    assert console.run("--outputs-file", outputs, "hello") == EXIT_TARGET
    assert "'endpointName' is missing" in console.err


def test_bedrock_stack_outputs_reach_the_bedrock_model(tmp_path, bedrock_api, monkeypatch):
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", bedrock_api.url)  # boto3 reads it for every client
    outputs = {
        "backend": "bedrock",
        "bedrockModelId": "amazon.titan-embed-text-v2:0",
        "region": "us-east-1",
    }
    console = Console()
    assert console.run("--outputs-file", write_outputs(tmp_path, outputs), "--json", "a", "b") == 0
    assert json.loads(console.out)["dimensions"] == 1024
    assert [call.model_id for call in bedrock_api.calls] == ["amazon.titan-embed-text-v2:0"] * 2


def test_bedrock_flag_calls_the_named_model(bedrock_api, monkeypatch):
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", bedrock_api.url)
    console = Console()
    code = console.run("--bedrock", "cohere.embed-multilingual-v3", "--region", "us-east-1", "x")
    assert code == EXIT_OK
    assert "dimensions: 1024" in console.out


def _fake_pulumi(bin_dir: Path, outputs: dict, stack: str) -> None:
    """A stand-in for the Pulumi CLI (absent here) answering only `stack output --json -s STACK`."""
    bin_dir.mkdir()
    script = bin_dir / "pulumi"
    script.write_text(
        "#!/bin/sh\n"
        f'if [ "$*" = "stack output --json -s {stack}" ]; then\n'
        f"  cat <<'EOF'\n{json.dumps(outputs)}\nEOF\n"
        "  exit 0\nfi\n"
        'echo "error: no stack named $5" >&2\nexit 255\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


def test_stack_flag_reads_pulumi_stack_outputs_and_invokes_the_endpoint(
    tmp_path, aws: AwsEndpoint, monkeypatch
):
    endpoint_name = f"ep-{uuid.uuid4().hex[:8]}"
    body = {"embeddings": [[1.0, 0.0], [0.0, 1.0]], "model": "org/name", "dimensions": 2}
    queue_sagemaker_results(aws, json.dumps(body))
    outputs = {"backend": "sagemaker", "endpointName": endpoint_name, "region": aws.region}
    _fake_pulumi(tmp_path / "bin", outputs, "dev")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    console = Console()
    # moto answers from its queue once per distinct request body, so the texts are unique.
    texts = [f"first {endpoint_name}", f"second {endpoint_name}"]
    assert console.run("--stack", "dev", "--json", *texts) == EXIT_OK
    document = json.loads(console.out)
    assert document["model"] == "org/name"
    assert document["similarity"] == [pytest.approx([1.0, 0.0]), pytest.approx([0.0, 1.0])]


def test_stack_that_pulumi_does_not_know_exits_3_with_pulumis_message(tmp_path, monkeypatch):
    _fake_pulumi(tmp_path / "bin", {}, "dev")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    console = Console()
    assert console.run("--stack", "prod", "hello") == EXIT_TARGET
    assert "no stack named prod" in console.err


def test_stack_without_the_pulumi_cli_exits_3(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    console = Console()
    assert console.run("--stack", "dev", "hello") == EXIT_TARGET
    assert "pulumi CLI is not on PATH" in console.err


def test_stack_whose_pulumi_cli_never_answers_exits_3_after_the_timeout(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "pulumi"
    script.write_text("#!/bin/sh\nexec sleep 30\n")  # as a CLI waiting at a passphrase prompt
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(stack_outputs, "CLI_TIMEOUT_SECONDS", 1)
    console = Console()
    assert console.run("--stack", "dev", "hello") == EXIT_TARGET
    assert "gave no answer in 1 s" in console.err


def test_cosine_matrix_of_orthogonal_and_parallel_vectors():
    matrix = cosine_matrix([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0]])
    assert matrix == [[1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 1.0]]


def test_python_dash_m_package_embed_is_the_same_command(local_url, capsys):
    assert package_main.main(["embed", "--url", local_url, "--json", "hello"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["texts"] == ["hello"]

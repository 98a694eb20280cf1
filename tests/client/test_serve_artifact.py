"""What `serve` makes of an artifact before serving it: bounded extraction, the model's name."""

from __future__ import annotations

import io
import json
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from embedding_client import __main__ as entry
from embedding_client import serve_artifact
from embedding_client.serve import InferenceHandler
from embedding_client.serve_artifact import ArtifactError, archive_name, prepare_model_dir
from tests.support.models import REPO_ROOT, build_artifact, copy_model

REVISION = "0123456789abcdef0123456789abcdef01234567"


def write_archive(path: Path, *members: tuple[tarfile.TarInfo, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for member, data in members:
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data) if data else None)
    return path


def regular(name: str, data: bytes = b"{}", mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    member = tarfile.TarInfo(name)
    member.mode = mode
    return member, data


def special(name: str, kind: bytes) -> tuple[tarfile.TarInfo, bytes]:
    member = tarfile.TarInfo(name)
    member.type = kind
    return member, b""


def extracted_files(work: Path) -> list[Path]:
    return [path for path in work.rglob("*") if not path.is_dir()]


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "work").mkdir()
    return tmp_path / "work"


def test_an_archive_with_more_members_than_the_bound_is_refused_before_extraction(
    tmp_path, work, monkeypatch
):
    monkeypatch.setattr(serve_artifact, "MAX_MEMBERS", 3)
    archive = write_archive(tmp_path / "m.tar.gz", *(regular(f"f{i}.json") for i in range(4)))
    with pytest.raises(ArtifactError, match="more than 3 members"):
        prepare_model_dir(str(archive), work)
    assert extracted_files(work) == []


def test_an_archive_that_unpacks_past_the_size_bound_is_refused_before_extraction(
    tmp_path, work, monkeypatch
):
    monkeypatch.setattr(serve_artifact, "MAX_EXTRACTED_BYTES", 1000)
    # 600 + 600 zero bytes: a few hundred bytes compressed, over the bound unpacked.
    archive = write_archive(
        tmp_path / "bomb.tar.gz", regular("a.bin", bytes(600)), regular("b.bin", bytes(600))
    )
    with pytest.raises(ArtifactError, match="unpacks to more than the 1000 bytes allowed"):
        prepare_model_dir(str(archive), work)
    assert extracted_files(work) == []


@pytest.mark.parametrize("filtered", [True, False], ids=["data-filter", "fallback"])
@pytest.mark.parametrize(
    "member",
    [special("fifo", tarfile.FIFOTYPE), special("dev", tarfile.CHRTYPE)],
    ids=["fifo", "device"],
)
def test_device_and_fifo_members_are_refused(tmp_path, work, monkeypatch, filtered, member):
    if not filtered:
        monkeypatch.delattr(tarfile, "data_filter")
    archive = write_archive(tmp_path / "s.tar.gz", regular("config.json"), member)
    with pytest.raises(ArtifactError, match="unsafe member"):
        prepare_model_dir(str(archive), work)
    assert extracted_files(work) == []


@pytest.mark.parametrize("filtered", [True, False], ids=["data-filter", "fallback"])
def test_setuid_and_setgid_bits_are_stripped(tmp_path, work, monkeypatch, filtered):
    if not filtered:
        monkeypatch.delattr(tarfile, "data_filter")
    mode = 0o755 | stat.S_ISUID | stat.S_ISGID
    archive = write_archive(tmp_path / "x.tar.gz", regular("code/run.sh", b"#!/bin/sh\n", mode))
    model_dir = prepare_model_dir(str(archive), work)
    extracted = (model_dir / "code" / "run.sh").stat().st_mode
    assert extracted & (stat.S_ISUID | stat.S_ISGID) == 0


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (f"s3://bucket/models/org/name/{REVISION}/model.tar.gz", "name"),
        (f"downloads/org/name/{REVISION}/onnx-py310/model.tar.gz", "name"),
        ("s3://bucket/elsewhere/model.tar.gz", "elsewhere"),
        ("downloads/all-MiniLM-L6-v2.tar.gz", "all-MiniLM-L6-v2"),
        ("e5-small/model.tar.gz", "e5-small"),
        ("model.tar.gz", "model"),
        ("../..", "model"),
    ],
)
def test_an_archive_is_extracted_into_a_folder_named_for_its_model(source, expected):
    assert archive_name(source) == expected


def test_an_archive_without_a_name_in_its_config_is_served_under_its_own(tmp_path, work):
    """The container names such a model after its folder: the archive's, not a temp name."""
    folder = copy_model(tmp_path / "source", with_script=True)
    config = json.loads((folder / "config.json").read_text())
    config.pop("_name_or_path", None)
    (folder / "config.json").write_text(json.dumps(config))
    archive = build_artifact(folder, tmp_path / "e5-small.tar.gz")
    handler = InferenceHandler.load(prepare_model_dir(str(archive), work))
    answer = handler.invoke(b'{"inputs": "a"}', "application/json", None)
    assert answer.status == 200 and json.loads(answer.body)["model"] == "e5-small"


def test_serve_help_says_the_archive_code_runs_and_takes_a_model_id(capsys):
    with pytest.raises(SystemExit):
        entry.main(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "runs the archive's code/inference.py" in text
    assert "--model-id" in text


def test_make_serve_passes_model_id_to_the_command():
    completed = subprocess.run(
        ["make", "-n", "serve", "ARTIFACT=model.tar.gz", "MODEL_ID=org/name"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert '--model-id "org/name"' in completed.stdout


@pytest.mark.parametrize(
    ("source", "given", "expected"),
    [
        ("downloads/e5-small.tar.gz", "org/chosen", "org/chosen"),
        (f"s3://bucket/models/org/name/{REVISION}/model.tar.gz", None, "org/name"),
        ("downloads/e5-small.tar.gz", None, "e5-small"),
        ("/models/all-MiniLM-L6-v2/", None, "all-MiniLM-L6-v2"),
    ],
)
def test_both_local_servers_name_the_model_given_then_the_keys_then_the_archives(
    source, given, expected
):
    assert serve_artifact.served_model_id(source, given) == expected

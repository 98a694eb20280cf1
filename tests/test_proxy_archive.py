"""The proxy's deployment zip: deterministic, self-contained, and it runs from a bare directory."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from proxy.archive import HANDLER, SOURCES, build_archive, write_archive


def test_same_sources_give_the_same_bytes():
    assert build_archive() == build_archive()


def test_entries_are_sorted_with_fixed_time_and_mode():
    with zipfile.ZipFile(io.BytesIO(build_archive())) as archive:
        infos = archive.infolist()
    names = [info.filename for info in infos]
    assert names == sorted(names)
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {info.external_attr >> 16 for info in infos} == {0o100644}


def test_archive_holds_the_handler_and_formats_but_not_the_builder_or_the_client_package():
    with zipfile.ZipFile(io.BytesIO(build_archive())) as archive:
        names = set(archive.namelist())
        package_marker = archive.read("embedding_endpoint/__init__.py")
    assert set(SOURCES) <= names
    assert "proxy/archive.py" not in names
    assert b"import" not in package_marker


def test_a_source_change_changes_the_archive(tmp_path):
    for name in SOURCES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes((Path(__file__).parents[1] / name).read_bytes())
    before = build_archive(tmp_path)
    (tmp_path / "proxy/handler.py").write_text("# changed\n", encoding="utf-8")
    assert build_archive(tmp_path) != before


def test_written_archive_is_content_addressed(tmp_path):
    path, digest = write_archive(tmp_path)
    assert path.name == f"embed-proxy-{digest[:16]}.zip"
    assert path.read_bytes() == build_archive()
    assert write_archive(tmp_path) == (path, digest)


def test_extracted_archive_serves_a_request_without_the_repository(tmp_path, bedrock_api):
    with zipfile.ZipFile(io.BytesIO(build_archive())) as archive:
        archive.extractall(tmp_path / "task")
    module, function = HANDLER.rsplit(".", 1)
    script = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(tmp_path / 'task')!r})\n"
        f"from {module} import {function} as handler\n"
        "event = {'body': json.dumps({'inputs': ['hi']}), 'isBase64Encoded': False,\n"
        "         'requestContext': {'http': {'method': 'POST'}}}\n"
        "print(json.dumps(handler(event, None)))\n"
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "EMBED_BACKEND": "bedrock",
        "EMBED_TARGET": "amazon.titan-embed-text-v1",
        "AWS_ENDPOINT_URL": bedrock_api.url,
        "AWS_REGION": bedrock_api.region,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    # -I: the repository (cwd, PYTHONPATH) is not importable, only the extracted archive is.
    done = subprocess.run(
        [sys.executable, "-I", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    response = json.loads(done.stdout.strip().splitlines()[-1])
    assert response["statusCode"] == 200, response
    assert json.loads(response["body"])["dimensions"] == 1536

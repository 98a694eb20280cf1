"""The proxy's deployment zip: deterministic, self-contained, and it runs from a bare directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile

from components.lambda_zip import folder_files
from components.proxy_bundle import HANDLER, PROJECT_ROOT, SOURCE_FOLDERS, build_proxy_zip


def test_same_sources_give_the_same_bytes(tmp_path):
    first = build_proxy_zip(tmp_path / "a")
    second = build_proxy_zip(tmp_path / "b")
    assert first.name == second.name
    assert first.read_bytes() == second.read_bytes()


def test_entries_are_sorted_with_fixed_time_and_mode(tmp_path):
    with zipfile.ZipFile(build_proxy_zip(tmp_path)) as archive:
        infos = archive.infolist()
    names = [info.filename for info in infos]
    assert names == sorted(names)
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {info.external_attr >> 16 for info in infos} == {0o100644}


def test_zip_holds_the_proxy_and_the_facts_it_imports_and_nothing_else(tmp_path):
    with zipfile.ZipFile(build_proxy_zip(tmp_path)) as archive:
        names = set(archive.namelist())
    assert {"proxy/handler.py", "facts/bedrock_formats.py", "facts/bedrock_models.py"} <= names
    assert {name.split("/")[0] for name in names} == {"proxy", "facts"}


def test_a_source_change_gives_a_new_zip(tmp_path):
    for folder in ("proxy", "facts"):
        shutil.copytree(PROJECT_ROOT / folder, tmp_path / "root" / folder)
    before = build_proxy_zip(tmp_path / "cache", tmp_path / "root")
    (tmp_path / "root" / "proxy" / "handler.py").write_text("# changed\n", encoding="utf-8")
    after = build_proxy_zip(tmp_path / "cache", tmp_path / "root")
    assert after != before and after.read_bytes() != before.read_bytes()
    assert set(folder_files(tmp_path / "root", SOURCE_FOLDERS)) == set(
        folder_files(PROJECT_ROOT, SOURCE_FOLDERS)
    )


def test_extracted_zip_serves_a_request_without_the_repository(tmp_path, bedrock_api):
    with zipfile.ZipFile(build_proxy_zip(tmp_path / "cache")) as archive:
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

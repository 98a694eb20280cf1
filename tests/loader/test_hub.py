"""Hub access through the real client: revision pinning, streamed files, resume, error mapping."""

from __future__ import annotations

import hashlib

import pytest

import loader.hub
from loader.errors import DownloadError, RepositoryNotFound, RevisionNotFound
from loader.hub import fetch_snapshot, hub_endpoint, resolve_revision, stream_file
from loader.selection import RepoFile
from tests.fixtures.hub import REFERENCE_COMMIT, REFERENCE_MODEL_ID, make_repo
from tests.support.loader import large_repo


def test_branch_resolves_to_the_commit_sha(hub):
    assert resolve_revision(REFERENCE_MODEL_ID, "main") == REFERENCE_COMMIT


def test_tag_resolves_to_its_commit_sha(hub):
    repo = hub.register(
        make_repo("org/tagged", {"a.json": b"{}"}, refs={"main": "", "v1": "1" * 40})
    )
    assert resolve_revision(repo.repo_id, "v1") == "1" * 40


def test_a_full_sha_resolves_to_itself(hub):
    assert resolve_revision(REFERENCE_MODEL_ID, REFERENCE_COMMIT) == REFERENCE_COMMIT


def test_unknown_revision_raises_revision_not_found(hub):
    with pytest.raises(RevisionNotFound, match="revision 'nope' not found"):
        resolve_revision(REFERENCE_MODEL_ID, "nope")


def test_unknown_repo_raises_repository_not_found(hub):
    with pytest.raises(RepositoryNotFound, match="'org/absent' not found on http://127.0.0.1"):
        resolve_revision("org/absent", "main")


def test_endpoint_is_read_from_the_environment_at_call_time(hub, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://example.invalid/")
    assert hub_endpoint() == "http://example.invalid"
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    assert resolve_revision(REFERENCE_MODEL_ID, "main") == REFERENCE_COMMIT


def test_snapshot_lists_every_file_with_its_size(hub):
    snapshot = fetch_snapshot(REFERENCE_MODEL_ID, "main")
    sizes = {item.path: item.size for item in snapshot.files}
    assert sizes["model.safetensors"] == 90868376
    assert sizes["1_Pooling/config.json"] == 190
    assert snapshot.revision == REFERENCE_COMMIT and not snapshot.gated


def test_streamed_file_bytes_equal_the_served_file(hub):
    repo = hub.register(large_repo("org/streamed", weights_mib=3))
    data = repo.files["model.safetensors"].source
    item = RepoFile("model.safetensors", len(data))
    streamed = b"".join(stream_file(repo.repo_id, repo.commit, item))
    assert hashlib.sha256(streamed).digest() == hashlib.sha256(data).digest()


def test_dropped_connection_resumes_where_it_stopped(hub, monkeypatch):
    monkeypatch.setattr(loader.hub, "RETRY_BASE_SECONDS", 0.0)
    repo = hub.register(large_repo("org/resumed", weights_mib=3))
    data = repo.files["model.safetensors"].source
    hub.switches.cut_file, hub.switches.cut_times = "model.safetensors", 2
    item = RepoFile("model.safetensors", len(data))
    assert b"".join(stream_file(repo.repo_id, repo.commit, item)) == data
    assert hub.downloads().count(f"/{repo.repo_id}/resolve/{repo.commit}/model.safetensors") == 3


def test_file_shorter_than_listed_is_a_download_error(hub):
    repo = hub.register(make_repo("org/short", {"config.json": b"{}"}))
    with pytest.raises(DownloadError, match=r"file 'config.json'.*received 2 bytes.*says 5"):
        list(stream_file(repo.repo_id, repo.commit, RepoFile("config.json", 5)))

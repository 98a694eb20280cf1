"""Everything the loader asks of the Hugging Face Hub, through the real `huggingface_hub` client.

`HF_ENDPOINT` is read at call time and passed explicitly (the library reads it once, at import).
Only the token given by the caller is sent — never an ambient one from the environment or a
login on the machine — so the Lambda and local runners behave alike.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx2
from huggingface_hub import HfApi, hf_hub_url
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

from loader.errors import (
    DownloadError,
    GatedRepoAccessDenied,
    LoaderError,
    RepositoryNotFound,
    RevisionNotFound,
)
from loader.selection import RepoFile

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://huggingface.co"
DOWNLOAD_ATTEMPTS = 5
RETRY_BASE_SECONDS = 1.0  # waits 1, 2, 4, 8 s between attempts
_RETRY_STATUS = (429, 500, 502, 503, 504)
DOWNLOAD_CHUNK = 1024 * 1024
_TIMEOUT = httpx2.Timeout(60.0, connect=20.0)
_LIBRARY = "embedding-endpoint-loader"


@dataclass(frozen=True)
class RepoSnapshot:
    """A repo at one commit: the pinned sha, its files with sizes, and whether it is gated."""

    model_id: str
    revision: str
    files: tuple[RepoFile, ...]
    gated: bool


def hub_endpoint() -> str:
    """The Hub base URL: `HF_ENDPOINT` now, else huggingface.co."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


@contextmanager
def hub_errors(model_id: str, revision: str, step: str, file: str | None = None) -> Iterator[None]:
    """Translate the client's errors into messages that say what to change."""
    where = {"step": step, "model": model_id, "file": file}
    try:
        yield
    except GatedRepoError as error:  # a subclass of RepositoryNotFoundError: test it first
        raise GatedRepoAccessDenied(
            f"'{model_id}' is a gated repo: accept its terms on the Hub with your account, then "
            "set a token of that account (config secret hfToken, or hfTokenSecretArn)",
            **where,
        ) from error
    except RepositoryNotFoundError as error:
        raise RepositoryNotFound(
            f"repository '{model_id}' not found on {hub_endpoint()} (check modelId; a private "
            "repo also needs a token that can read it)",
            **where,
        ) from error
    except RevisionNotFoundError as error:
        raise RevisionNotFound(
            f"revision '{revision}' not found in '{model_id}' (use a branch, a tag or a 40-hex "
            "commit sha that exists in the repo)",
            **where,
        ) from error
    except (HfHubHTTPError, httpx2.HTTPError, OSError) as error:
        message = f"Hub request failed: {type(error).__name__}: {error}"
        raise DownloadError(message, **where) from error


def _api(token: str | None) -> HfApi:
    return HfApi(endpoint=hub_endpoint(), token=token or False, library_name=_LIBRARY)


def resolve_revision(model_id: str, revision: str, token: str | None = None) -> str:
    """The 40-hex commit sha a branch, tag or sha names now (what the provider pins)."""
    with hub_errors(model_id, revision, step="resolve-revision"):
        info = _api(token).model_info(model_id, revision=revision)
    if not info.sha:
        raise LoaderError("the Hub returned no commit sha", step="resolve-revision", model=model_id)
    return info.sha


def fetch_snapshot(model_id: str, revision: str, token: str | None = None) -> RepoSnapshot:
    """Pinned sha and the file listing with sizes (one `model_info(files_metadata=True)` call)."""
    with hub_errors(model_id, revision, step="list-files"):
        info = _api(token).model_info(model_id, revision=revision, files_metadata=True)
    files = []
    for sibling in info.siblings or []:
        if sibling.size is None:
            raise LoaderError(
                "the Hub listing has no size for this file",
                step="list-files",
                model=model_id,
                file=sibling.rfilename,
            )
        files.append(RepoFile(sibling.rfilename, sibling.size))
    return RepoSnapshot(model_id, info.sha or "", tuple(files), gated=bool(info.gated))


class _Transient(Exception):
    """A network failure or a 429/5xx answer: worth another attempt from where we stopped."""


def _get(
    url: str, headers: dict[str, str], offset: int, model_id: str, commit: str, path: str
) -> Iterator[bytes]:
    """One GET from `offset` (a `Range` request when resuming)."""
    if offset:
        headers = {**headers, "Range": f"bytes={offset}-"}
    try:
        with get_session().stream(
            "GET", url, headers=headers, follow_redirects=True, timeout=_TIMEOUT
        ) as response:
            if response.status_code in _RETRY_STATUS:
                raise _Transient(f"HTTP {response.status_code}")
            with hub_errors(model_id, commit, step="download", file=path):
                hf_raise_for_status(response)
            if offset and response.status_code != 206:
                message = f"the server ignored the resume request (HTTP {response.status_code})"
                raise DownloadError(message, step="download", model=model_id, file=path)
            yield from response.iter_bytes(DOWNLOAD_CHUNK)
    except httpx2.TransportError as error:
        raise _Transient(f"{type(error).__name__}: {error}") from error


def stream_file(
    model_id: str, commit: str, item: RepoFile, token: str | None = None
) -> Iterator[bytes]:
    """The file's bytes in chunks, resuming with `Range` after a dropped connection.

    Yielded bytes are final, so a retry continues after the last one yielded. DownloadError unless
    exactly `item.size` bytes arrive.
    """
    url = hf_hub_url(model_id, item.path, revision=commit, endpoint=hub_endpoint())
    headers = build_hf_headers(token=token or False, library_name=_LIBRARY)
    where = {"step": "download", "model": model_id, "file": item.path}
    received = 0
    for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
        try:
            for chunk in _get(url, headers, received, model_id, commit, item.path):
                received += len(chunk)
                if received > item.size:
                    break
                yield chunk
            break
        except _Transient as error:
            if attempt == DOWNLOAD_ATTEMPTS:
                raise DownloadError(
                    f"gave up after {attempt} attempts at byte {received} of {item.size}: {error}",
                    **where,
                ) from error
            log.warning(
                "download of %s/%s interrupted at byte %d (%s); retrying",
                model_id,
                item.path,
                received,
                error,
            )
            time.sleep(RETRY_BASE_SECONDS * 2 ** (attempt - 1))
    if received != item.size:
        message = f"received {received} bytes, the Hub listing says {item.size}"
        raise DownloadError(message, **where)

"""The local endpoint's model directory: an s3:// archive, a local .tar.gz or a folder.

An archive is untrusted until extracted: sizes are added up before anything is written (a bomb is
refused), and only files and folders inside the model directory are extracted. Serving runs its
`code/inference.py`, as the DLC does: serve only archives you would deploy.
"""

from __future__ import annotations

import logging
import shutil
import stat
import tarfile
from pathlib import Path, PurePosixPath

from facts.artifact_keys import ARCHIVE_NAME, model_id_from_key
from facts.identifiers import parse_s3_url

logger = logging.getLogger("embedding_client.serve")

# Bounds on what an archive may unpack to. SageMaker Serverless takes images up to 10 GB and the
# loader's archives hold a handful of files; these leave room for any model the stack deploys.
MAX_EXTRACTED_BYTES = 32 * 1024**3
MAX_MEMBERS = 10_000
MODEL_FOLDER = "model"
# Mode bits an extracted file never keeps (the fallback for Pythons without tarfile's filters).
_PRIVILEGE_BITS = stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX
# What tarfile's `data` filter raises for an unsafe member (absent where the filter is).
_FILTER_ERROR = getattr(tarfile, "FilterError", ())


class ArtifactError(Exception):
    """The artifact cannot be found, fetched or extracted; the message says which and why."""


def _plain_member(member: tarfile.TarInfo, root: Path, archive: Path) -> tarfile.TarInfo:
    """`member` if it is a file or folder inside `root`, without setuid/setgid/sticky bits."""
    target = (root / member.name).resolve()
    if root not in (target, *target.parents):
        raise ArtifactError(
            f"{archive}: refusing unsafe member {member.name!r} (outside the folder)"
        )
    if not (member.isreg() or member.isdir()):
        raise ArtifactError(
            f"{archive}: refusing unsafe member {member.name!r}: only regular files and folders "
            "are extracted, not links, devices or FIFOs (`tar -h` archives what links point to)"
        )
    member.mode &= ~_PRIVILEGE_BITS
    return member


def _checked_members(tar: tarfile.TarFile, archive: Path, root: Path) -> list[tarfile.TarInfo]:
    """Every member, checked before a byte is written: count, total size, kind and place."""
    bound = min(MAX_EXTRACTED_BYTES, shutil.disk_usage(root).free)
    limit = f"the {MAX_EXTRACTED_BYTES} bytes allowed"
    if bound < MAX_EXTRACTED_BYTES:
        limit = f"the {bound} bytes free in {root.parent}"
    members, total = [], 0
    for member in tar:
        if len(members) == MAX_MEMBERS:
            raise ArtifactError(f"{archive}: more than {MAX_MEMBERS} members; refusing to extract")
        total += max(member.size, 0)
        if total > bound:
            raise ArtifactError(f"{archive}: unpacks to more than {limit}; refusing to extract")
        members.append(_plain_member(member, root, archive))
    return members


def safe_extract(archive: Path, destination: Path) -> None:
    """Extract a tar.gz: bounded, and only regular files and folders inside `destination`
    (every member checked first; tarfile's `data` filter again where this Python has it).
    """
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = _checked_members(tar, archive, destination.resolve())
            if hasattr(tarfile, "data_filter"):
                tar.extractall(destination, members=members, filter="data")
            else:
                tar.extractall(destination, members=members)
    except _FILTER_ERROR as error:
        raise ArtifactError(f"{archive}: refusing unsafe member: {error}") from error
    except (tarfile.TarError, OSError, EOFError) as error:
        raise ArtifactError(f"cannot extract {archive}: {error}") from error


def _download_s3(url: str, destination: Path) -> None:
    """Fetch `s3://bucket/key` with boto3 (AWS_ENDPOINT_URL, profiles and regions honoured)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        bucket, key = parse_s3_url(url)
    except ValueError as error:
        raise ArtifactError(str(error)) from None
    try:
        boto3.client("s3").download_file(bucket, key, str(destination))
    except ClientError as error:
        message = error.response.get("Error", {}).get("Message") or str(error)
        raise ArtifactError(f"cannot download {url}: {message}") from error
    except BotoCoreError as error:
        raise ArtifactError(f"cannot download {url}: {error}") from error


def archive_name(source: str) -> str:
    """The folder an archive is extracted into, named for the model where its path says it.

    The loader's key names the model (`org/name/<revision>/model.tar.gz` → `name`), any other
    archive its file (`e5-small.tar.gz` → `e5-small`), as SageMaker's /opt/ml/model would.
    """
    path = PurePosixPath(source.replace("\\", "/"))
    from_key = model_id_from_key(source)
    if from_key:
        return from_key.split("/")[-1]
    name = path.name
    for suffix in (".tar.gz", ".tgz", ".tar"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    if name == MODEL_FOLDER and path.parent.name not in ("", ".", ".."):
        name = path.parent.name  # …/e5-small/model.tar.gz
    return name if name not in ("", ".", "..") else MODEL_FOLDER


def served_model_id(source: str, given: str | None = None) -> str:
    """The name a local server answers under: `given`, else the loader's key's, else the archive's.

    Both local servers (serve.py, scripts/dlc_server.py) set it as EMBEDDING_MODEL_ID, as a
    deployment does, so the name does not depend on the folder the archive is unpacked into.
    """
    return given or model_id_from_key(source) or archive_name(source)


def prepare_model_dir(source: str, work_dir: Path) -> Path:
    """A model directory for `source`: an s3:// URL or a local .tar.gz (extracted), or a folder.

    `work_dir` is created when missing (scripts/dlc_server.py passes a folder of its scratch).
    """
    if source.startswith("s3://"):
        work_dir.mkdir(parents=True, exist_ok=True)
        archive = work_dir / ARCHIVE_NAME
        logger.info("downloading %s", source)
        _download_s3(source, archive)
    else:
        path = Path(source).expanduser()
        if path.is_dir():
            return path.resolve()
        if not path.is_file():
            raise ArtifactError(
                f"{source!r} is not an s3:// URL, a model.tar.gz file or a model folder"
            )
        archive = path
    model_dir = work_dir / archive_name(source)
    model_dir.mkdir(parents=True)
    logger.info("extracting %s", archive)
    safe_extract(archive, model_dir)
    if archive.parent == work_dir:
        archive.unlink()  # the extracted copy is all that is needed
    return model_dir

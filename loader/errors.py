"""Loader errors: each message names the model, the file (when one is involved) and the step.

The Lambda runtime turns an uncaught exception into a `FunctionError` whose `errorMessage` is
`str(exception)`, and the provider re-raises that text, so the message is what the user reads.
"""

from __future__ import annotations


class LoaderError(Exception):
    """A packaging step failed; `str()` is a complete, actionable message."""

    def __init__(
        self, message: str, *, step: str, model: str | None = None, file: str | None = None
    ) -> None:
        self.step, self.model, self.file, self.detail = step, model, file, message
        where = f"step '{step}'"
        if model:
            where += f", model '{model}'"
        if file:
            where += f", file '{file}'"
        super().__init__(f"{where}: {message}")


class EventError(LoaderError):
    """The event is malformed; names the field and what is allowed. Raised before any I/O."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"event field '{field}' {message}", step="validate-event")
        self.field = field


class RepositoryNotFound(LoaderError):
    """The Hub has no such model repo (or it is private and the token cannot see it)."""


class RevisionNotFound(LoaderError):
    """The repo exists but the branch, tag or commit does not."""


class GatedRepoAccessDenied(LoaderError):
    """The repo is gated and no token (or a token without granted access) was given."""


class DownloadError(LoaderError):
    """A file could not be fetched completely from the Hub or the source bucket."""


class UploadError(LoaderError):
    """S3 refused a step of the multipart upload (bucket missing, access denied, ...)."""


class ChecksumMismatch(LoaderError):
    """The built archive's sha256 is not the `expected_sha256` the caller pinned."""


class SourceArchiveError(LoaderError):
    """A `source_model_data_url` archive is missing, unreadable or holds unsafe entries."""


class PickledWeights(LoaderError):
    """The weights the container would load are pickles, and the stack does not trust them."""

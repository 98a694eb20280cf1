"""The identifiers and choices every trust boundary accepts: stack config, Lambda event, CLI.

One definition each, so that a value the config accepts is never refused later by the loader, and
every refusal says the same thing ("expected ..."). `Rule.problem(value)` is None for a good value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    """A pattern a string must match, and how to say what is expected."""

    pattern: re.Pattern[str]
    expected: str

    def matches(self, value: object) -> bool:
        # fullmatch: a pattern's "$" alone would also match before a trailing newline.
        return isinstance(value, str) and bool(self.pattern.fullmatch(value))

    def problem(self, value: object) -> str | None:
        """None when `value` matches, else "expected <what>"."""
        return None if self.matches(value) else f"expected {self.expected}"


# Hub repo ids: "org/name" as huggingface_hub's validate_repo_id takes them (its REPO_ID_REGEX,
# in ASCII, with the namespace required): each part 1-96 of letters, digits, "-", "_" and ".",
# starting and ending with a letter, digit or "_"; no "--" or ".."; not ending in ".git".
_REPO_PART = r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,94}[A-Za-z0-9_])?"
MODEL_ID = Rule(
    re.compile(rf"(?!.*(?:--|\.\.))(?!.*\.git$){_REPO_PART}/{_REPO_PART}"),
    "a Hub repo id 'org/name' (each part 1-96 letters, digits, '-', '_' or '.', not starting "
    "or ending with '-' or '.'; no '--' or '..')",
)
# Branches, tags (including the Hub's refs/pr/N) or a full commit sha.
REVISION = Rule(
    re.compile(r"^(?!-)(?!.*\.\.)[A-Za-z0-9._/-]{1,255}$"), "a branch, a tag or a 40-hex commit sha"
)
COMMIT_SHA = Rule(re.compile(r"^[0-9a-f]{40}$"), "a 40-hex commit sha")
SHA256 = Rule(re.compile(r"^[0-9a-f]{64}$"), "64 lowercase hex characters")
BUCKET = Rule(
    re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"), "an S3 bucket name (3-63 of a-z 0-9 . -)"
)
S3_URL = Rule(
    re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>.+)$"),
    "an s3://bucket/key URL",
)
# What SageMaker's ModelDataUrl and the loader's source archive reader accept.
S3_TARBALL_URL = Rule(
    re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+\.tar\.gz$"),
    "an s3://bucket/path/model.tar.gz URL",
)
# AWS's partitions, as an ARN names them.
_PARTITION = r"(?:aws|aws-cn|aws-us-gov|aws-iso|aws-iso-[bef]|aws-eusc)"
SECRET_ARN = Rule(
    re.compile(rf"^arn:{_PARTITION}:secretsmanager:[a-z0-9-]+:\d{{12}}:secret:.+$"),
    "a Secrets Manager secret ARN "
    "(arn:<partition>:secretsmanager:<region>:<account>:secret:<name>)",
)
SNS_TOPIC_ARN = Rule(
    re.compile(rf"^arn:{_PARTITION}:sns:[a-z0-9-]+:\d{{12}}:[A-Za-z0-9_-]{{1,256}}$"),
    "an SNS topic ARN (arn:<partition>:sns:<region>:<account>:<topic>)",
)
# S3 key prefixes: empty, or folders of S3's safe characters, each ending in "/".
KEY_PREFIX = Rule(
    re.compile(r"^([A-Za-z0-9!_.*'()-]+/)*$"),
    "'' or '/'-terminated path segments without a leading '/', such as 'models/'",
)

# A folder of a bucket: what a Batch Transform job reads from or writes to, and IAM scopes.
S3_PREFIX_URL = Rule(
    re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/(?:[^/*]+/)+$"),
    "an s3://bucket/folder/ URL ending in '/' (a folder, not the whole bucket; no empty "
    "folder names, no '*')",
)
# A name in a model's `prompts` (config_sentence_transformers.json), such as "query".
PROMPT_NAME = Rule(re.compile(r"^[A-Za-z0-9_.-]{1,64}$"), "a prompt name such as 'query'")
# A TCP port, 1-65535.
_PORT = r"(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
# An http(s) base URL (a local endpoint standing in for SageMaker Runtime).
HTTP_URL = Rule(
    re.compile(rf"^https?://[A-Za-z0-9.-]+(:{_PORT})?/?$"),
    "an http(s)://host[:port] URL (port 1-65535)",
)

# Where embeddings come from: a packaged model on a SageMaker endpoint, or a Bedrock model.
BACKENDS = ("sagemaker", "bedrock")
# How the optional HTTP API authenticates callers: SigV4 (IAM) or a bearer token (OpenAI clients).
HTTP_API_AUTH_MODES = ("iam", "apiKey")


def parse_s3_url(url: str) -> tuple[str, str]:
    """`s3://bucket/key` → (bucket, key); ValueError naming the URL otherwise."""
    match = S3_URL.pattern.match(url)
    if not match:
        raise ValueError(f"{url!r} is not {S3_URL.expected}")
    return match["bucket"], match["key"]

"""The shapes of the identifiers the stack config, the provider and the loader event all accept.

One definition, so that a value the config accepts is never refused later by the loader.
"""

from __future__ import annotations

import re

# Hub repo ids: "org/name" with the characters the Hub allows.
MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
# Branches, tags (including the Hub's refs/pr/N) or a full commit sha.
REVISION = re.compile(r"^(?!-)(?!.*\.\.)[A-Za-z0-9._/-]{1,255}$")
COMMIT_SHA = re.compile(r"^[0-9a-f]{40}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
S3_TARBALL_URL = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+\.tar\.gz$")
SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$")
# S3 key prefixes: empty, or folders of S3's safe characters, each ending in "/".
KEY_PREFIX = re.compile(r"^([A-Za-z0-9!_.*'()-]+/)*$")

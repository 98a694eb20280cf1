"""`ModelArtifactBucket`: the private, encrypted, versioned S3 bucket that holds model archives."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import iam

# Parts of uploads the loader abandoned (a failed deploy) are billed until aborted.
ABORT_INCOMPLETE_UPLOADS_AFTER_DAYS = 1
# Old versions of an overwritten archive are only useful for a short rollback window.
NONCURRENT_VERSIONS_EXPIRE_AFTER_DAYS = 30


@dataclass(frozen=True)
class ModelArtifactBucketArgs:
    """retain: keep the bucket and its archives when the stack is destroyed (prod)."""

    retain: bool = False
    tags: tuple[tuple[str, str], ...] = ()


class ModelArtifactBucket(pulumi.ComponentResource):
    """A bucket reachable only over TLS by principals IAM grants a prefix to.

    With `retain`: protected, left in the account on delete, never force-emptied.
    """

    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: ModelArtifactBucketArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("embedding-endpoint:index:ModelArtifactBucket", name, None, opts)
        # A retained bucket keeps its settings too: deleting the public access block, the
        # policy or the versioning resource would strip them from the bucket left behind.
        child = pulumi.ResourceOptions(
            parent=self, protect=args.retain, retain_on_delete=args.retain
        )
        tags = dict(args.tags)

        bucket = aws.s3.Bucket(name, force_destroy=not args.retain, tags=tags, opts=child)
        public_access = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket.id,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}],
            opts=child,
        )
        versioning = aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=bucket.id,
            versioning_configuration={"status": "Enabled"},
            opts=child,
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket.id,
            rules=[
                {
                    "id": "abort-incomplete-uploads-and-expire-old-versions",
                    "status": "Enabled",
                    "filter": {},
                    "abort_incomplete_multipart_upload": {
                        "days_after_initiation": ABORT_INCOMPLETE_UPLOADS_AFTER_DAYS
                    },
                    "noncurrent_version_expiration": {
                        "noncurrent_days": NONCURRENT_VERSIONS_EXPIRE_AFTER_DAYS
                    },
                }
            ],
            # S3 rejects a lifecycle rule on noncurrent versions before versioning is set.
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=[versioning])
            ),
        )
        aws.s3.BucketPolicy(
            f"{name}-tls-only",
            bucket=bucket.id,
            policy=bucket.arn.apply(
                lambda arn: json.dumps(iam.deny_insecure_transport_policy(arn))
            ),
            # Applying a policy while the public access block is being written can fail with
            # AccessDenied; order them.
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=[public_access])
            ),
        )

        self.bucket_name = bucket.bucket
        self.bucket_arn = bucket.arn
        self.register_outputs({"bucket_name": self.bucket_name, "bucket_arn": self.bucket_arn})

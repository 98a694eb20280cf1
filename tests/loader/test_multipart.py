"""The bounded multipart uploader: part sizing, completion, abort on failure."""

from __future__ import annotations

import os

import pytest

from loader.errors import UploadError
from loader.multipart import MAX_PARTS, PART_SIZE, MultipartUpload, part_size_for
from tests.support.loader import leftovers

MiB = 1024 * 1024
MIN_PART = 5 * MiB  # S3's minimum for every part but the last


def test_default_part_size_fits_a_50_gb_model_in_10000_parts():
    assert part_size_for(50 * 10**9) == PART_SIZE
    assert PART_SIZE * MAX_PARTS >= 50 * 10**9 * 1.05  # headroom for tar/gzip framing


def test_part_size_grows_in_whole_mib_beyond_the_default_range():
    size = part_size_for(200 * 10**9)
    assert size % MiB == 0 and size * MAX_PARTS >= 200 * 10**9


def test_archives_beyond_s3_limits_are_refused():
    with pytest.raises(ValueError, match="10,000 × 5 GiB"):
        part_size_for(60 * 1024**4)


def test_bytes_written_in_odd_chunks_arrive_as_one_object(aws, s3_bucket):
    s3 = aws.client("s3")
    data = os.urandom(2 * MIN_PART + 123)
    with MultipartUpload(s3, s3_bucket, "obj", model="m", part_size=MIN_PART) as upload:
        for start in range(0, len(data), 777_777):
            upload.write(data[start : start + 777_777])
        upload.complete()
    assert s3.get_object(Bucket=s3_bucket, Key="obj")["Body"].read() == data


def test_every_part_but_the_last_has_the_fixed_size(aws, s3_bucket):
    s3 = aws.client("s3")
    with MultipartUpload(s3, s3_bucket, "obj", model="m", part_size=MIN_PART) as upload:
        upload.write(b"\0" * (2 * MIN_PART + 10))
        upload.complete()
    head = s3.head_object(Bucket=s3_bucket, Key="obj", PartNumber=1)
    assert head["PartsCount"] == 3 and head["ContentLength"] == MIN_PART


def test_exception_inside_the_upload_aborts_it(aws, s3_bucket):
    s3 = aws.client("s3")
    with pytest.raises(RuntimeError, match="producer failed"):
        with MultipartUpload(s3, s3_bucket, "obj", model="m", part_size=MIN_PART) as upload:
            upload.write(os.urandom(MIN_PART + 1))
            raise RuntimeError("producer failed")
    assert leftovers(s3, s3_bucket) == ([], [])


def test_upload_to_a_missing_bucket_fails_naming_the_step_and_model(aws):
    s3 = aws.client("s3")
    with pytest.raises(UploadError, match="step 'create-multipart-upload', model 'org/m'"):
        with MultipartUpload(s3, "no-such-bucket-for-parts", "obj", model="org/m"):
            pass

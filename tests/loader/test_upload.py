"""The upload through boto3's transfer manager: part sizing, completion, abort on failure."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from loader.errors import ChecksumMismatch, UploadError
from loader.upload import MAX_PARTS, PART_SIZE, ArchiveReader, part_size_for, upload_archive
from tests.support.loader import leftovers

MiB = 1024 * 1024
MIN_PART = 5 * MiB  # S3's minimum for every part but the last


def accept(sha256: str) -> None:
    pass


def in_pieces(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_default_part_size_fits_a_50_gb_model_in_10000_parts():
    assert part_size_for(50 * 10**9) == PART_SIZE
    assert PART_SIZE * MAX_PARTS >= 50 * 10**9 * 1.05  # headroom for tar/gzip framing


def test_part_size_grows_in_whole_mib_beyond_the_default_range():
    size = part_size_for(200 * 10**9)
    assert size % MiB == 0 and size * MAX_PARTS >= 200 * 10**9


def test_archives_beyond_s3_limits_are_refused():
    with pytest.raises(ValueError, match="10,000 × 5 GiB"):
        part_size_for(60 * 1024**4)


def test_reader_hands_out_exact_sizes_and_hashes_what_it_returned():
    data = os.urandom(1000)
    reader = ArchiveReader(in_pieces(data, 77), accept)
    parts = [reader.read(300) for _ in range(4)]
    assert [len(p) for p in parts] == [300, 300, 300, 100]
    assert reader.read(300) == b""
    assert reader.sha256 == hashlib.sha256(data).hexdigest() and reader.size == 1000


def test_reader_verifies_before_handing_out_the_last_bytes():
    def refuse(sha256: str) -> None:
        raise ChecksumMismatch("no", step="verify-sha256")

    reader = ArchiveReader(in_pieces(b"x" * 10, 3), refuse)
    assert reader.read(4) == b"xxxx"
    with pytest.raises(ChecksumMismatch):
        reader.read(100)


def test_bytes_read_in_odd_chunks_arrive_as_one_object(aws, s3_bucket):
    s3 = aws.client("s3")
    data = os.urandom(2 * MIN_PART + 123)
    reader = ArchiveReader(in_pieces(data, 777_777), accept)
    upload_archive(s3, s3_bucket, "obj", reader, part_size=MIN_PART, model="m")
    assert s3.get_object(Bucket=s3_bucket, Key="obj")["Body"].read() == data


def test_every_part_but_the_last_has_the_fixed_size_and_a_crc32(aws, s3_bucket):
    s3 = aws.client("s3")
    reader = ArchiveReader([b"\0" * (2 * MIN_PART + 10)], accept)
    etag = upload_archive(s3, s3_bucket, "obj", reader, part_size=MIN_PART, model="m")
    head = s3.head_object(Bucket=s3_bucket, Key="obj", PartNumber=1)
    assert head["PartsCount"] == 3 and head["ContentLength"] == MIN_PART
    whole = s3.head_object(Bucket=s3_bucket, Key="obj", ChecksumMode="ENABLED")
    assert "ChecksumCRC32" in whole and whole["ETag"] == etag
    assert whole["ContentType"] == "application/gzip"


def test_small_archive_is_still_a_multipart_upload(aws, s3_bucket):
    s3 = aws.client("s3")
    upload_archive(
        s3, s3_bucket, "obj", ArchiveReader([b"tiny"], accept), part_size=MIN_PART, model="m"
    )
    assert s3.head_object(Bucket=s3_bucket, Key="obj", PartNumber=1)["PartsCount"] == 1


def test_failing_producer_aborts_the_upload_and_keeps_its_error(aws, s3_bucket):
    s3 = aws.client("s3")

    def chunks() -> Iterator[bytes]:
        yield os.urandom(MIN_PART + 1)  # a first part is uploaded before the failure
        raise RuntimeError("producer failed")

    with pytest.raises(RuntimeError, match="producer failed"):
        upload_archive(
            s3, s3_bucket, "obj", ArchiveReader(chunks(), accept), part_size=MIN_PART, model="m"
        )
    assert leftovers(s3, s3_bucket) == ([], [])


def test_failed_verification_aborts_the_upload(aws, s3_bucket):
    s3 = aws.client("s3")

    def refuse(sha256: str) -> None:
        raise ChecksumMismatch("mismatch", step="verify-sha256")

    reader = ArchiveReader([os.urandom(MIN_PART + 5)], refuse)
    with pytest.raises(ChecksumMismatch):
        upload_archive(s3, s3_bucket, "obj", reader, part_size=MIN_PART, model="m")
    assert leftovers(s3, s3_bucket) == ([], [])


def test_upload_to_a_missing_bucket_fails_naming_the_step_and_model(aws):
    s3 = aws.client("s3")
    reader = ArchiveReader([b"x"], accept)
    with pytest.raises(UploadError, match="step 'create-multipart-upload', model 'org/m'"):
        upload_archive(
            s3, "no-such-bucket-for-parts", "obj", reader, part_size=MIN_PART, model="org/m"
        )


def _abort_while_parts_arrive(s3, bucket: str, upload: dict) -> None:
    """The test's own AbortMultipartUpload; moto's server answers it 500 now and then when a
    part of the same upload is being stored at that moment (the retries are off here), so it is
    asked again: the test's fault is S3 losing the upload, not this call failing."""
    for _ in range(20):
        try:
            s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
            return
        except ClientError as error:
            if error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") != 500:
                raise
    raise AssertionError("moto refused the test's abort 20 times")


def test_a_refused_part_stops_the_reader_instead_of_reading_to_the_end(aws, s3_bucket, monkeypatch):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # moto answers 500 here; do not retry it
    s3 = aws.client("s3")
    produced, aborted_at = 0, None

    def chunks() -> Iterator[bytes]:
        nonlocal produced, aborted_at
        while produced < 100:  # 500 MiB if nothing stopped it
            produced += 1
            if produced >= 3 and aborted_at is None:
                # S3 loses the upload: every later UploadPart is refused. The transfer manager
                # may read ahead before it creates the upload, so wait until there is one.
                uploads = s3.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", [])
                for upload in uploads:
                    _abort_while_parts_arrive(s3, s3_bucket, upload)
                aborted_at = produced if uploads else None
            yield bytes(MIN_PART)

    reader = ArchiveReader(chunks(), accept)
    with pytest.raises(UploadError, match="step 'upload-part'"):
        upload_archive(s3, s3_bucket, "obj", reader, part_size=MIN_PART, model="m")
    assert aborted_at is not None
    # At most the parts already in memory when the refusal came back, not the other 500 MiB.
    assert produced - aborted_at < 20
    assert leftovers(s3, s3_bucket) == ([], [])

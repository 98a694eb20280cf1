"""Archive framing: tarfile headers, the hand-written stored gzip, standard readers, chunking."""

from __future__ import annotations

import gzip
import hashlib
import io
import random
import shutil
import subprocess
import sys
import tarfile
import zlib
from pathlib import Path

import pytest

from loader.archive import (
    GZIP_HEADER,
    STORED_BLOCK_MAX,
    TarEntry,
    gzip_size,
    stored_gzip,
    tar_header,
    tar_size,
    tar_stream,
)
from loader.errors import DownloadError


def gzip_bytes(chunks: list[bytes]) -> bytes:
    return b"".join(stored_gzip(chunks))


def tar_bytes(files: dict[str, bytes], directories: tuple[str, ...] = ()) -> bytes:
    members = [(TarEntry(name, is_directory=True), ()) for name in directories]
    members += [(TarEntry(name, len(data)), [data]) for name, data in files.items()]
    return b"".join(tar_stream(members, model="m"))


def test_gzip_of_small_input_matches_golden_bytes():
    expected = (
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # no mtime, no name, OS unknown
        b"\x01\x05\x00\xfa\xff"  # final stored block, LEN 5, NLEN
        b"hello"
        b"\x86\xa6\x10\x36\x05\x00\x00\x00"  # CRC-32 and length, little-endian
    )
    assert gzip_bytes([b"hello"]) == expected


def test_gzip_of_empty_input_is_one_empty_final_block():
    assert gzip_bytes([]) == GZIP_HEADER + b"\x01\x00\x00\xff\xff" + b"\0" * 8


def test_gzip_output_decompresses_with_the_standard_library():
    data = random.Random(1).randbytes(3 * STORED_BLOCK_MAX + 17)
    assert gzip.decompress(gzip_bytes([data])) == data
    assert zlib.decompressobj(wbits=31).decompress(gzip_bytes([data])) == data


def test_gzip_bytes_do_not_depend_on_how_input_is_chunked():
    data = random.Random(2).randbytes(5 * STORED_BLOCK_MAX + 1000)
    whole = gzip_bytes([data])
    rng = random.Random(3)
    cuts = sorted(rng.sample(range(1, len(data)), 40))
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    assert gzip_bytes(pieces) == whole
    assert gzip_bytes([data[i : i + 1] for i in range(0, 70000)] + [data[70000:]]) == whole


def test_gzip_blocks_are_full_size_except_the_last():
    data = b"x" * (2 * STORED_BLOCK_MAX + 10)
    out = gzip_bytes([data])
    first = len(GZIP_HEADER)
    assert out[first : first + 5] == b"\x00\xff\xff\x00\x00"
    second = first + 5 + STORED_BLOCK_MAX
    assert out[second : second + 5] == b"\x00\xff\xff\x00\x00"
    third = second + 5 + STORED_BLOCK_MAX
    assert out[third : third + 5] == b"\x01\x0a\x00\xf5\xff"


@pytest.mark.parametrize("size", [0, 1, STORED_BLOCK_MAX - 1, STORED_BLOCK_MAX, 200_000])
def test_gzip_size_predicts_the_exact_length(size):
    assert len(gzip_bytes([b"\0" * size])) == gzip_size(size)


def test_tar_header_matches_golden_digest():
    # Frozen: any change to the header layout changes every artifact's sha256.
    header = tar_header(TarEntry("config.json", 612))
    assert len(header) == 512
    assert hashlib.sha256(header).hexdigest() == (
        "13e5650368b6d3d580c6af7f17fa0676e682c369e293497c0a25c961e3048b16"
    )


def test_tar_header_is_plain_ustar_for_short_ascii_names():
    header = tar_header(TarEntry("1_Pooling/config.json", 190))
    assert len(header) == 512 and header[257:265] == b"ustar\x0000"
    assert header[:21] == b"1_Pooling/config.json"


def test_tar_reads_back_with_normalised_metadata():
    blob = tar_bytes({"a/b.txt": b"abc", "z.bin": b"\1" * 513}, directories=("a",))
    with tarfile.open(fileobj=io.BytesIO(blob)) as archive:
        members = archive.getmembers()
        assert [m.name for m in members] == ["a", "a/b.txt", "z.bin"]
        for member in members:
            assert (member.mtime, member.uid, member.gid, member.uname, member.gname) == (
                0,
                0,
                0,
                "",
                "",
            )
        assert [oct(m.mode) for m in members] == ["0o755", "0o644", "0o644"]
        assert archive.extractfile("z.bin").read() == b"\1" * 513


def test_long_and_unicode_names_use_a_pax_path_record():
    long_name = "deep/" * 30 + "weights.safetensors"
    blob = tar_bytes({long_name: b"1", "tokenizer-é.json": b"2"})
    with tarfile.open(fileobj=io.BytesIO(blob)) as archive:
        assert archive.getnames() == [long_name, "tokenizer-é.json"]
        assert archive.extractfile(long_name).read() == b"1"


def test_files_over_8_gib_use_a_pax_size_record():
    size = 8 * 1024**3 + 5
    header = tar_header(TarEntry("huge.safetensors", size))
    assert b" size=%d\n" % size in header
    info = tarfile.TarInfo.frombuf(header[-512:], "utf-8", "surrogateescape")
    assert info.name == "huge.safetensors"


def test_tar_size_predicts_the_exact_length():
    files = {"x" * 120: b"1" * 700, "b": b""}
    entries = [TarEntry(n, len(d)) for n, d in files.items()]
    assert tar_size(entries) == len(tar_bytes(files))


def test_file_shorter_than_announced_fails_naming_the_file():
    with pytest.raises(DownloadError, match="file 'w.bin'.*got 3 bytes where 4 were announced"):
        b"".join(tar_stream([(TarEntry("w.bin", 4), [b"abc"])], model="m"))


def test_file_longer_than_announced_fails_naming_the_file():
    with pytest.raises(DownloadError, match="file 'w.bin'"):
        b"".join(tar_stream([(TarEntry("w.bin", 2), [b"abc"])], model="m"))


def test_archive_ends_with_two_zero_blocks_and_no_record_padding():
    blob = tar_bytes({"a": b"x"})
    assert len(blob) == 512 + 512 + 1024 and blob[-1024:] == b"\0" * 1024


@pytest.mark.skipif(shutil.which("tar") is None, reason="needs a tar command")
def test_tar_command_lists_and_extracts_the_archive(tmp_path):
    long_name = "deep/" * 30 + "weights.safetensors"
    files = {"a/b.txt": b"abc", long_name: b"1", "tokenizer-\u00e9.json": b"2"}
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(gzip_bytes([tar_bytes(files, directories=("a",))]))
    listing = subprocess.run(
        ["tar", "-tzvf", str(archive)], capture_output=True, text=True, check=True
    ).stdout
    assert "drwxr-xr-x 0/0" in listing and "-rw-r--r-- 0/0" in listing
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(["tar", "-xzf", str(archive), "-C", str(out)], check=True)
    for name, data in files.items():
        assert (out / name).read_bytes() == data


_FRAMING_SCRIPT = """
import hashlib, random, sys
sys.path.insert(0, sys.argv[1])
from loader.archive import TarEntry, stored_gzip, tar_stream
weights = random.Random(5).randbytes(200_000)
files = {"config.json": b"{}", "deep/" * 30 + "w.bin": weights, "tokenizer-\u00e9.json": b"2"}
members = [(TarEntry("deep", is_directory=True), ())]
members += [(TarEntry(n, len(d)), [d[:777], d[777:]]) for n, d in sorted(files.items())]
print(hashlib.sha256(b"".join(stored_gzip(tar_stream(members, "m")))).hexdigest())
"""


def _other_interpreters() -> list[str]:
    """Every other CPython >= 3.10 on this machine (pyenv's versions included) that runs."""
    found = {str(p) for p in Path.home().glob(".pyenv/versions/3.*/bin/python3")}
    found |= {w for v in range(10, 15) if (w := shutil.which(f"python3.{v}"))}
    usable = []
    for path in sorted(found):
        probe = subprocess.run(
            [path, "-c", "import sys; print(sys.version_info >= (3, 10), sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.startswith("True") and path != sys.executable:
            usable.append(path)
    return usable


def test_framing_bytes_are_the_same_under_every_python_on_this_machine():
    # tarfile's headers come from the interpreter's standard library: the local runner (any
    # Python >= 3.10) must build the bytes the Lambda (python3.12) builds.
    others = _other_interpreters()
    if not others:
        pytest.skip("no other Python >= 3.10 on this machine")
    root = str(Path(__file__).resolve().parents[2])
    digests = {
        path: subprocess.run(
            [path, "-c", _FRAMING_SCRIPT, root], capture_output=True, text=True, check=True
        ).stdout.strip()
        for path in [sys.executable, *others]
    }
    assert len(set(digests.values())) == 1, digests


def test_stdlib_gzip_at_level_0_is_not_chunking_independent():
    # Why the stored-block writer stays hand-written (docs/loader.md, "Library or hand-written:
    # measured"): zlib's stored blocks follow its caller's buffers. If this ever fails, the
    # library may have become an option again.
    data = random.Random(4).randbytes(3 * STORED_BLOCK_MAX + 100)

    def stdlib(piece: int) -> bytes:
        out = io.BytesIO()
        with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, compresslevel=0) as zipped:
            for start in range(0, len(data), piece):
                zipped.write(data[start : start + piece])
        return out.getvalue()

    assert stdlib(1 << 20) != stdlib(1 << 14)
    assert gzip_bytes([data]) == gzip_bytes([data[:1000], data[1000:]])

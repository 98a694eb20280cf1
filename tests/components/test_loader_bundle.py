"""Lambda zips: one reproducible recipe; the loader's zip contents and its content-addressed cache.

No pip and no network here: the zip writer runs on prepared trees, pip is replaced where a build
must run, and the cache test primes the cache with the file `build_loader_zip` would build.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from components import loader_bundle, loader_lock
from components.lambda_zip import ZIP_TIMESTAMP, tree_files
from components.lambda_zip import write_reproducible_zip as write_entries
from components.loader_bundle import build_loader_zip, bundle_digest, zip_entries
from facts.onnx_runtime import RuntimeWheel
from loader.vendored_runtime import WHEEL_CACHE_VARIABLE, wheel_cache
from loader.version import format_version
from tests.fixtures.pulumi_mocks import lock_installing, source_entries


def make_tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return root


TREE = {
    "loader/__init__.py": b"",
    "loader/handler.py": b"def handler(event, context):\n    return event\n",
    "huggingface_hub/__init__.py": b"__version__ = '2.4.0'\n",
    "huggingface_hub-2.4.0.dist-info/METADATA": b"Name: huggingface_hub\n",
}


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_reproducible_zip(root: Path, destination: Path) -> Path:
    """Zip a pip target tree as the loader bundle does."""
    return write_entries(zip_entries(root), destination)


def test_same_tree_gives_byte_identical_zip_despite_times_and_modes(tmp_path: Path) -> None:
    first = make_tree(tmp_path / "a", TREE)
    second = make_tree(tmp_path / "b", dict(reversed(list(TREE.items()))))
    for path in second.rglob("*"):
        if path.is_file():
            os.utime(path, (1_700_000_000, 1_700_000_000))
            path.chmod(0o755)
    zip_a = write_reproducible_zip(first, tmp_path / "a.zip")
    zip_b = write_reproducible_zip(second, tmp_path / "b.zip")
    assert sha256_of(zip_a) == sha256_of(zip_b)


def test_changed_content_changes_the_zip(tmp_path: Path) -> None:
    before = write_reproducible_zip(make_tree(tmp_path / "a", TREE), tmp_path / "a.zip")
    changed = TREE | {"loader/handler.py": b"def handler(event, context):\n    return None\n"}
    after = write_reproducible_zip(make_tree(tmp_path / "b", changed), tmp_path / "b.zip")
    assert sha256_of(before) != sha256_of(after)


def test_zip_entries_are_sorted_with_fixed_time_and_mode(tmp_path: Path) -> None:
    archive = write_reproducible_zip(make_tree(tmp_path / "t", TREE), tmp_path / "t.zip")
    with zipfile.ZipFile(archive) as opened:
        infos = opened.infolist()
    assert [info.filename for info in infos] == sorted(TREE)
    assert {info.date_time for info in infos} == {ZIP_TIMESTAMP}
    assert {(info.external_attr >> 16) & 0o777 for info in infos} == {0o644}


def test_bytecode_caches_and_scripts_are_left_out(tmp_path: Path) -> None:
    noisy = TREE | {
        "loader/__pycache__/handler.cpython-312.pyc": b"\x00",
        "bin/hf": b"#!/home/someone/.venv/bin/python\n",
        "huggingface_hub/legacy.pyc": b"\x00",
    }
    archive = write_reproducible_zip(make_tree(tmp_path / "t", noisy), tmp_path / "t.zip")
    with zipfile.ZipFile(archive) as opened:
        assert sorted(opened.namelist()) == sorted(TREE)


def test_zip_is_written_whole_or_not_at_all(tmp_path: Path) -> None:
    destination = tmp_path / "out.zip"
    write_reproducible_zip(make_tree(tmp_path / "t", TREE), destination)
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".partial"] == []
    assert zipfile.is_zipfile(destination)


@pytest.mark.parametrize(
    "changed",
    [
        "loader/requirements.lock",
        "loader/handler.py",
        "container/inference.py",
        "facts/serverless.py",
    ],
)
def test_digest_follows_every_shipped_folder_and_the_requirements(
    tmp_path: Path, changed: str
) -> None:
    files = {
        "loader/requirements.lock": b"huggingface_hub==2.4.0 --hash=sha256:00\n",
        "loader/handler.py": b"x = 1\n",
        "container/inference.py": b"y = 1\n",
        "facts/serverless.py": b"z = 1\n",
    }
    root = make_tree(tmp_path / "project", files)
    lock = root / "loader" / "requirements.lock"
    original = bundle_digest(root, lock=lock)
    assert bundle_digest(root, lock=lock) == original
    (root / changed).write_bytes(files[changed] + b"# changed\n")
    assert bundle_digest(root, lock=lock) != original


def test_loader_zip_carries_the_loader_the_container_code_and_the_facts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fake_pip(requirements: Path, target: Path) -> None:
        make_tree(target, {"huggingface_hub/__init__.py": b"__version__ = '2.4.0'\n"})

    monkeypatch.setattr(loader_bundle, "install_requirements", fake_pip)
    built = build_loader_zip(tmp_path / "cache")
    with zipfile.ZipFile(built) as opened:
        opened.extractall(tmp_path / "task")
        names = set(opened.namelist())
    assert {"loader/handler.py", "container/inference.py", "facts/identifiers.py"} <= names
    assert "huggingface_hub/__init__.py" in names
    assert not any("__pycache__" in name or name.startswith("tests/") for name in names)
    # The Lambda computes the same format version as this checkout: it ships the same code.
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "from loader.version import format_version; print(format_version())"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", probe, str(tmp_path / "task")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == format_version()


def test_loader_zip_carries_the_runtime_wheel_where_the_loader_looks_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, this_python_runtime: RuntimeWheel
) -> None:
    def fake_pip(requirements: Path, target: Path) -> None:
        make_tree(target, {"huggingface_hub/__init__.py": b"__version__ = '2.4.0'\n"})

    monkeypatch.setattr(loader_bundle, "install_requirements", fake_pip)
    built = build_loader_zip(tmp_path / "cache", runtime=this_python_runtime)
    assert built.name == f"loader-{bundle_digest(runtime=this_python_runtime)}.zip"
    assert bundle_digest(runtime=this_python_runtime) != bundle_digest()
    with zipfile.ZipFile(built) as opened:
        opened.extractall(tmp_path / "task")
    shipped = tmp_path / "task" / "wheels" / this_python_runtime.filename
    assert shipped.read_bytes() == (wheel_cache() / this_python_runtime.filename).read_bytes()
    # In the Lambda (no wheel cache there), the loader finds and verifies the bundled wheel.
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "from facts.onnx_runtime import RUNTIME_WHEELS; "
        "from loader.vendored_runtime import find_wheel; "
        "print(find_wheel(RUNTIME_WHEELS[sys.argv[2]]))"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", probe, str(tmp_path / "task"), this_python_runtime.python],
        capture_output=True,
        text=True,
        check=True,
        env={WHEEL_CACHE_VARIABLE: str(tmp_path / "no-cache")},
    )
    assert done.stdout.strip() == str(shipped)


PACKAGE_FILES = [
    ("huggingface_hub/__init__.py", b"__version__ = '2.4.0'\n"),
    ("huggingface_hub-2.4.0.dist-info/METADATA", b"Name: huggingface_hub\n"),
]


@pytest.fixture
def shared_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A shared cache (EMBEDDING_ENDPOINT_LOADER_CACHE) and a lock whose packages are PACKAGE_FILES.

    pip never runs: the test fails if it does.
    """
    lock = tmp_path / "requirements.lock"
    lock.write_text(lock_installing(loader_lock.LOADER_LOCK.read_text(), PACKAGE_FILES))
    monkeypatch.setattr(loader_lock, "LOADER_LOCK", lock)
    monkeypatch.setenv(loader_bundle.CACHE_DIR_VARIABLE, str(tmp_path / "cache"))

    def no_pip(requirements: Path, target: Path) -> None:
        raise AssertionError("pip ran although the cache held the zip")

    monkeypatch.setattr(loader_bundle, "install_requirements", no_pip)
    return tmp_path / "cache"


def cache_zip(cache: Path, changes: dict[str, bytes] | None = None) -> Path:
    """The zip the build would cache (the checkout's sources, PACKAGE_FILES), with `changes`."""
    entries: dict[str, Path | bytes] = {**source_entries(), **dict(PACKAGE_FILES)}
    return write_entries(entries | (changes or {}), cache / f"loader-{bundle_digest()}.zip")


def test_cached_zip_is_reused_without_running_pip(shared_cache: Path) -> None:
    cached = cache_zip(shared_cache)
    built = cached.read_bytes()
    assert build_loader_zip() == cached
    assert cached.read_bytes() == built


@pytest.mark.parametrize(
    ("changed", "content"),
    [
        ("loader/handler.py", b"import os\n"),
        ("loader/sitecustomize.py", b"import os\n"),
        ("huggingface_hub/__init__.py", b"import os\n"),
        ("huggingface_hub/_extra.pth", b"import os\n"),
    ],
)
def test_a_changed_zip_in_a_shared_cache_is_refused_naming_it(
    shared_cache: Path, changed: str, content: bytes
) -> None:
    cached = cache_zip(shared_cache, {changed: content})
    with pytest.raises(loader_bundle.BundleError, match="does not match this checkout") as failure:
        build_loader_zip()
    assert str(cached) in str(failure.value)
    if changed.startswith("loader/"):
        assert changed in str(failure.value)


def test_a_zip_that_is_no_zip_is_refused(shared_cache: Path) -> None:
    shared_cache.mkdir()
    (shared_cache / f"loader-{bundle_digest()}.zip").write_bytes(b"prebuilt")
    with pytest.raises(loader_bundle.BundleError, match="not a readable zip"):
        build_loader_zip()


def test_a_zip_holding_an_entry_twice_is_refused(shared_cache: Path) -> None:
    cached = cache_zip(shared_cache)
    with zipfile.ZipFile(cached, "a") as opened, pytest.warns(UserWarning, match="Duplicate"):
        opened.writestr("loader/handler.py", b"import os\n")
    with pytest.raises(loader_bundle.BundleError, match="holds an entry twice"):
        build_loader_zip()


def test_a_changed_zip_in_the_checkouts_own_cache_is_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fake_pip(requirements: Path, target: Path) -> None:
        make_tree(target, dict(PACKAGE_FILES))

    monkeypatch.setattr(loader_bundle, "install_requirements", fake_pip)
    cached = cache_zip(tmp_path, {"huggingface_hub/__init__.py": b"import os\n"})
    assert build_loader_zip(tmp_path) == cached
    with zipfile.ZipFile(cached) as opened:
        assert (
            opened.read("huggingface_hub/__init__.py")
            == dict(PACKAGE_FILES)["huggingface_hub/__init__.py"]
        )


def test_the_lock_pins_every_requirement_at_its_version_with_a_hash() -> None:
    lock = loader_lock.read_lock()
    wanted = loader_lock.pins(loader_lock.LOADER_REQUIREMENTS.read_text())
    assert {name: lock.versions.get(name) for name in wanted} == wanted, (
        "loader/requirements.lock is out of step: run `python -m components.loader_lock`"
    )
    assert all(lock.hashes[name] for name in lock.versions)


def test_the_lock_pins_the_optimizer_versions_archives_are_fused_with() -> None:
    from facts.onnx_fusion import FUSION_PACKAGES

    lock = loader_lock.read_lock()
    expected = {loader_lock.normalized(name): version for name, version in FUSION_PACKAGES}
    assert {name: lock.versions.get(name) for name in expected} == expected


def test_a_lock_line_without_a_hash_is_refused() -> None:
    with pytest.raises(loader_lock.LockError, match="line 2"):
        loader_lock.parse_lock(f"{loader_lock.INSTALLED_HEADER}{'0' * 64}\nidna==3.21\n")


def test_pip_installs_the_lock_hash_checked_and_without_resolving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = []

    def run(command, **kwargs):
        seen.append(command)
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(loader_bundle.subprocess, "run", run)
    loader_bundle.install_requirements(loader_lock.LOADER_LOCK, tmp_path)
    (command,) = seen
    assert {"--require-hashes", "--no-deps"} <= set(command)
    assert command[-1] == str(loader_lock.LOADER_LOCK)


def test_pip_failure_names_the_requirements_and_target_platform(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    # `--no-index` keeps pip offline: it fails on resolution, as it would on a missing wheel.
    pin = f"no-such-package-for-the-loader==1.0 --hash=sha256:{'0' * 64}"
    requirements.write_text(f"--no-index\n{pin}\n")
    with pytest.raises(loader_bundle.BundleError) as failure:
        loader_bundle.install_requirements(requirements, tmp_path / "target")
    message = str(failure.value)
    assert str(requirements) in message
    assert "manylinux x86_64" in message
    assert "no-such-package-for-the-loader" in message


def test_install_records_drop_console_scripts_that_embed_the_local_interpreter(
    tmp_path: Path,
) -> None:
    def record(script_hash: str) -> bytes:
        return (
            "idna/__init__.py,sha256=abc,849\n"
            f"../../bin/idna,sha256={script_hash},166\n"
            "idna-3.20.dist-info/RECORD,,\n"
        ).encode()

    first = make_tree(tmp_path / "a", TREE | {"idna-3.20.dist-info/RECORD": record("one")})
    second = make_tree(tmp_path / "b", TREE | {"idna-3.20.dist-info/RECORD": record("two")})
    zip_a = write_reproducible_zip(first, tmp_path / "a.zip")
    zip_b = write_reproducible_zip(second, tmp_path / "b.zip")
    assert sha256_of(zip_a) == sha256_of(zip_b)
    with zipfile.ZipFile(zip_a) as opened:
        shipped = opened.read("idna-3.20.dist-info/RECORD").decode()
    assert shipped == "idna/__init__.py,sha256=abc,849\nidna-3.20.dist-info/RECORD,,\n"


def test_tree_files_skip_caches_and_tests(tmp_path: Path) -> None:
    root = make_tree(
        tmp_path / "t",
        {"a.py": b"", "tests/test_a.py": b"", "__pycache__/a.pyc": b"", "b/c.pyo": b""},
    )
    assert [name for name, _ in tree_files(root)] == ["a.py"]


def test_the_loader_bundles_the_optimizer_versions_its_archives_are_fused_with() -> None:
    """loader/requirements.txt pins what facts/onnx_fusion.py names (the fused bytes follow it)."""
    from facts.onnx_fusion import FUSION_PACKAGES

    pinned = {}
    for line in loader_lock.LOADER_REQUIREMENTS.read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pinned[name.strip()] = version.strip()
    assert {name: pinned.get(name) for name, _ in FUSION_PACKAGES} == dict(FUSION_PACKAGES)
    assert all(
        "==" in line
        for line in loader_lock.LOADER_REQUIREMENTS.read_text().splitlines()
        if line and not line.startswith("#")
    )  # every requirement pinned

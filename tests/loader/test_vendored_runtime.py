"""ONNX Runtime and orjson as archives vendor them: the import surface, needing only numpy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy

from facts.onnx_runtime import RUNTIME_WHEELS, RuntimeWheel
from loader.vendored_runtime import WHEEL_CACHE_VARIABLE, is_shipped, runtime_files, wheel_cache
from loader.version import format_version


def test_format_version_names_the_wheel_without_needing_it(tmp_path, monkeypatch):
    monkeypatch.setenv(WHEEL_CACHE_VARIABLE, str(tmp_path))  # empty: nothing to read
    versions = {format_version(runtime) for runtime in RUNTIME_WHEELS.values()}
    assert len(versions) == len(RUNTIME_WHEELS)
    assert format_version() not in versions


def test_only_the_import_surface_and_the_notices_are_shipped(this_python_runtime: RuntimeWheel):
    with zipfile.ZipFile(wheel_cache() / this_python_runtime.filename) as wheel:
        names = wheel.namelist()
    shipped = sorted(name for name in names if is_shipped(name))
    assert "onnxruntime/__init__.py" in shipped
    assert "onnxruntime/ThirdPartyNotices.txt" in shipped
    assert any(name.startswith("onnxruntime/capi/onnxruntime_pybind11_state") for name in shipped)
    assert all(
        name == "onnxruntime/__init__.py"
        or name.startswith("onnxruntime/capi/")
        or name.rsplit("/", 1)[1] in ("LICENSE", "ThirdPartyNotices.txt", "Privacy.md")
        for name in shipped
    )
    left_out = set(names) - set(shipped)
    assert any(name.startswith("onnxruntime/tools/") for name in left_out)
    assert any("capi/libonnxruntime.so" in name for name in left_out)
    assert any(".dist-info/" in name for name in left_out)


def test_orjson_ships_its_package_and_license_files(this_python_runtime: RuntimeWheel):
    (orjson,) = this_python_runtime.companions
    with zipfile.ZipFile(wheel_cache() / orjson.filename) as wheel:
        names = wheel.namelist()
    shipped = sorted(name for name in names if is_shipped(name))
    assert "orjson/__init__.py" in shipped
    assert any(name.startswith("orjson/orjson.cpython-") for name in shipped)
    assert any(name.endswith("dist-info/licenses/LICENSE-MIT") for name in shipped)
    assert not any(name.endswith(("/RECORD", "/METADATA")) for name in shipped)


def test_the_vendored_runtime_runs_a_graph_with_only_numpy_beside_it(
    this_python_runtime: RuntimeWheel, reference_onnx_export: Path, tmp_path: Path
):
    for name, data in runtime_files(this_python_runtime).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    # numpy alone (and its bundled libraries), without the test venv's site-packages (-S).
    only_numpy = tmp_path / "only-numpy"
    only_numpy.mkdir()
    site = Path(numpy.__file__).resolve().parents[1]
    for entry in ("numpy", "numpy.libs"):
        if (site / entry).exists():
            os.symlink(site / entry, only_numpy / entry)
    child = """
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import numpy as np, onnxruntime
session = onnxruntime.InferenceSession(sys.argv[3], providers=["CPUExecutionProvider"])
ids = np.array([[101, 7592, 2088, 102]], dtype=np.int64)
feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": 0 * ids}
(hidden,) = session.run(["last_hidden_state"], feeds)
import orjson
written = orjson.dumps(np.float32([[0.1, -2.5]]), option=orjson.OPT_SERIALIZE_NUMPY).decode()
print(json.dumps({"file": onnxruntime.__file__, "shape": list(hidden.shape),
                  "orjson": orjson.__file__, "written": written,
                  "modules": sorted({m.split(".")[0] for m in sys.modules})}))
"""
    completed = subprocess.run(
        [sys.executable, "-S", "-c", child, str(tmp_path / "code"), str(only_numpy)]
        + [str(reference_onnx_export)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report["file"] == str(tmp_path / "code" / "onnxruntime" / "__init__.py")
    assert report["shape"] == [1, 4, 384]
    assert report["orjson"] == str(tmp_path / "code" / "orjson" / "__init__.py")
    assert report["written"] == "[[0.1,-2.5]]"
    assert not {"google", "sympy", "coloredlogs", "flatbuffers", "torch"} & set(report["modules"])

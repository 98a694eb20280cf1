"""Run every benchmark (`make bench`); each writes its results under benchmarks/results/."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from pathlib import Path

import benchmarks

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="*", help="run only these (e.g. packaging inference)")
    args = parser.parse_args(argv)
    RESULTS_DIR.mkdir(exist_ok=True)
    found = sorted(
        info.name.removeprefix("bench_")
        for info in pkgutil.iter_modules(benchmarks.__path__)
        if info.name.startswith("bench_")
    )
    chosen = args.names or found
    unknown = sorted(set(chosen) - set(found))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; available: {found}")
    for name in chosen:
        module = importlib.import_module(f"benchmarks.bench_{name}")
        path = module.run(RESULTS_DIR)
        print(f"{name}: results written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

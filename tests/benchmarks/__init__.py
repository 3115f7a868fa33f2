"""Tests of the benchmark scripts, which import each other as sibling modules."""

from __future__ import annotations

import importlib
import pathlib
import sys
from types import ModuleType

BENCHMARKS = pathlib.Path(__file__).resolve().parents[2] / "benchmarks"


def import_benchmarks(*names: str) -> list[ModuleType]:
    """The scripts `names` of benchmarks/ as modules, each seeing its siblings as
    `python benchmarks/<script>.py` does; sys.path is left as it was."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        return [importlib.import_module(name) for name in names]
    finally:
        sys.path.remove(str(BENCHMARKS))

"""The wheel a user installs: it carries the ``py.typed`` marker (PEP 561), so a type checker run
over a user's DAGs reads this package's annotations instead of treating it as untyped."""

from __future__ import annotations

import zipfile
from pathlib import Path

from hatchling.builders.wheel import WheelBuilder

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_ships_py_typed_and_every_module(tmp_path):
    (wheel,) = WheelBuilder(str(ROOT)).build(directory=str(tmp_path), versions=["standard"])
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "airflow_provider_sfjwt/py.typed" in names
    sources = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "airflow_provider_sfjwt").rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert sources and sources <= names, sorted(sources - names)
    assert not any(name.startswith("tests/") for name in names)

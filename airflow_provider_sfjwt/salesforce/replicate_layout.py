"""Where one object's replication writes: the folder layout, its JSON files, the run key.

Under the object's folder (local path or object-storage path): ``data/<key>.<fmt>`` and
``deleted/<key>.<fmt>`` per run, ``runs/<key>.json`` manifests, ``_schema.json`` (the latest
schema snapshot) and ``formulas.<fmt>`` (the latest formula refresh). ``<key>`` is the
interval's start in UTC, so the files of an interval keep their names however often it runs.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from .storage import Destination, FilePath, atomic_output

__all__ = ["Layout", "read_json", "run_key", "write_json"]


def run_key(interval_start: dt.datetime) -> str:
    """The file name stem of an interval's files: its start in UTC, ``20260131T130000Z``."""
    if interval_start.tzinfo is None:
        raise ValueError(f"interval start {interval_start!r} has no time zone")
    return interval_start.astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


class Layout:
    """The file names under one object's folder (see the module docstring)."""

    def __init__(self, output: FilePath, fmt: str) -> None:
        self.root = Destination(output).target
        self.fmt = fmt

    def path(self, *parts: str) -> FilePath:
        joined: FilePath = self.root.joinpath(*parts)
        return joined

    def data(self, key: str) -> FilePath:
        return self.path("data", f"{key}.{self.fmt}")

    def deleted(self, key: str) -> FilePath:
        return self.path("deleted", f"{key}.{self.fmt}")

    def manifest(self, key: str, mode: str = "incremental") -> FilePath:
        name = f"{key}.json" if mode != "formulas" else f"formulas-{key}.json"
        return self.path("runs", name)

    def schema(self) -> FilePath:
        return self.path("_schema.json")

    def formulas(self) -> FilePath:
        return self.path(f"formulas.{self.fmt}")


def read_json(path: FilePath) -> Any:
    """A JSON file's content, ``None`` when it does not exist."""
    try:
        with Destination(path).open("rb") as handle:
            return json.loads(handle.read().decode("utf-8"))
    except FileNotFoundError:
        return None


def write_json(path: FilePath, content: object) -> None:
    with atomic_output(path, "w") as handle:
        json.dump(content, handle, indent=1, sort_keys=True)
        handle.write("\n")

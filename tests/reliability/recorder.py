"""Records the outcome of every matrix cell, so RELIABILITY.md is generated from a real run.

A cell is one (row, column) of a matrix: a fault or a bad input against one operator. Each test
fills in what it expected and what it saw; the conftest marks the cell passed or failed from
pytest's own verdict, and at the end of the session writes every cell to the JSON file named by
``SFJWT_RELIABILITY_RESULTS`` (``make reliability`` sets it). Without that variable nothing is
written, so ``make test`` leaves the tree clean.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RESULTS_ENV = "SFJWT_RELIABILITY_RESULTS"


@dataclass
class Cell:
    """One matrix cell. ``status`` is ``pass``/``fail``; ``outcome`` says what happened."""

    matrix: str = ""
    row: str = ""
    row_title: str = ""
    column: str = ""
    column_title: str = ""
    expected: str = ""
    outcome: str = ""
    status: str = "not run"
    seconds: float = 0.0

    def describe(
        self, matrix: str, row: str, row_title: str, column: str, column_title: str, expected: str
    ) -> None:
        self.matrix, self.row, self.row_title = matrix, row, row_title
        self.column, self.column_title, self.expected = column, column_title, expected


@dataclass
class MatrixRecorder:
    cells: list[Cell] = field(default_factory=list)
    started: float = field(default_factory=time.time)

    def new_cell(self) -> Cell:
        cell = Cell()
        self.cells.append(cell)
        return cell

    def as_dict(self) -> dict[str, Any]:
        import airflow

        return {
            "generated_at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            "python": platform.python_version(),
            "airflow": airflow.__version__,
            "seconds": round(time.time() - self.started, 1),
            "cells": [asdict(c) for c in self.cells if c.matrix],
        }

    def write(self) -> Path | None:
        target = os.environ.get(RESULTS_ENV)
        if not target:
            return None
        path = Path(target)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_dict(), indent=1, ensure_ascii=False) + "\n")
        return path


RECORDER = MatrixRecorder()
"""The session's recorder (one pytest process writes one results file)."""

"""BENCHMARKS.md holds only what a ``make bench`` run recorded.

The report is generated from ``benchmarks/results.json`` (the run's results); a figure typed by
hand, or a result file nothing writes any more, would be a claim no run backs.
"""

from __future__ import annotations

import json
import re

from benchmarks.run import REPO, REPORT, RESULTS, render_report, run_time

DURATION = re.compile(r"\d+(?: to \d+)? minutes|\d+ min \d+ s|took \d+ s")


def recorded() -> dict:
    return json.loads(RESULTS.read_text(encoding="utf-8"))


def test_benchmarks_md_is_exactly_the_report_of_the_recorded_run():
    assert REPORT.read_text(encoding="utf-8") == render_report(recorded())


def test_every_duration_in_benchmarks_md_comes_from_the_run_itself():
    data = recorded()
    stated = DURATION.findall(REPORT.read_text(encoding="utf-8"))
    if "run_seconds" in data:
        assert stated == DURATION.findall(f"took {run_time(data['run_seconds'])}"), stated
    else:
        assert stated == [], f"durations no run recorded: {stated}"


def test_the_report_states_how_long_the_run_took():
    data = {**recorded(), "run_seconds": 252.4, "command": "make bench"}
    text = render_report(data)
    assert "The whole run (`make bench`) took 4 min 12 s." in text
    assert DURATION.findall(text) == ["4 min 12 s"]
    assert run_time(42) == "42 s"


def test_no_result_file_that_make_bench_does_not_write():
    """``make bench`` writes results.json only; any other result file is left over from an
    older run and disagrees with the report."""
    assert sorted(p.name for p in (REPO / "benchmarks").glob("*.json")) == [RESULTS.name]

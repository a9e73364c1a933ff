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


def test_the_readme_quotes_the_recorded_run():
    """README's speed and memory figures are the ones BENCHMARKS.md reports for the recorded run
    (itself checked against results.json above): a new run that moves them fails here until the
    README says what that run measured."""
    report = REPORT.read_text(encoding="utf-8")
    readme = " ".join((REPO / "README.md").read_text(encoding="utf-8").split())

    def figure(pattern: str) -> str:
        found = re.search(pattern, report)
        assert found, f"BENCHMARKS.md no longer reports {pattern!r}"
        return found.group(1)

    core = figure(r"`core` wall time vs floor, median of paired runs, worst N: ([\d.]+)x")
    core_best = figure(r"`core` wall time vs floor.*?best vs best ([\d.]+)x")
    core_mb = round(float(figure(r"`core` peak RSS at N=1,000,000: ([\d.]+) MB")))
    bulk = figure(r"Bulk query wall time vs floor at N=1,000,000, median of paired runs: ([\d.]+)x")
    bulk_mb = round(float(figure(r"Bulk query peak RSS at N=1,000,000: ([\d.]+) MB")))
    said = (
        f"the REST extract took {core}x the loop's time (median of paired runs; {core_best}x best "
        f"against best) in {core_mb} MB, and the Bulk query {bulk}x"
    )
    assert said in readme, said
    assert f"record count, which the loop does not) in {bulk_mb} MB" in readme

"""Run the `airflow` command line in a subprocess with an isolated, migrated AIRFLOW_HOME."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def airflow_env(home: Path, dags_folder: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags_folder),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__UNIT_TEST_MODE="True",
        PYTHONPATH=str(REPO),
    )
    env.update(extra)
    return env


def run_airflow(
    args: list[str], env: dict[str, str], timeout: float = 240
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "airflow", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


def migrated_home(home: Path, dags_folder: Path) -> dict[str, str]:
    env = airflow_env(home, dags_folder)
    out = run_airflow(["db", "migrate"], env)
    assert out.returncode == 0, out.stderr[-3000:]
    return env

"""Run the example DAGs in-process with ``dag.test()`` against the emulator.

``dag.test()`` needs a metadata database and DAGs that live in the dags folder (it serializes
them from the files), so: the suite's AIRFLOW_HOME (see conftest.py) gets a migrated sqlite
database once per test process, and DAGs are loaded from ``example_dags/`` by id. The
connection comes from the ``salesforce_emulator`` fixture's ``AIRFLOW_CONN_SALESFORCE_JWT_DEFAULT``.

Typical use::

    def test_extract(salesforce_emulator, tmp_path, monkeypatch):
        monkeypatch.setenv("SFJWT_OUTPUT_DIR", str(tmp_path))
        run = run_dag("salesforce_extract_accounts")
        assert run.state == "success", run.failures
        summary = run.xcom("extract_accounts_csv")
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_DAGS = REPO / "example_dags"

_db_ready = False


def ensure_db() -> None:
    """Create the sqlite metadata database in the test AIRFLOW_HOME (once per process)."""
    global _db_ready
    if _db_ready:
        return
    from airflow.utils import db

    from .airflow_cli import register_dags

    db.resetdb()
    register_dags(dict(os.environ))
    _db_ready = True


def load_dag(dag_id: str, folder: Path = EXAMPLE_DAGS) -> Any:
    """Parse ``<folder>/<dag_id>.py`` afresh (so env vars read at parse time apply)."""
    return _parse(dag_id, folder).dags[dag_id]


def _parse(dag_id: str, folder: Path, whole_folder: bool = False) -> Any:
    """``<folder>/<dag_id>.py`` parsed, or with ``whole_folder`` every file of the folder."""
    from airflow_provider_sfjwt.compat import dag_bag

    path = folder if whole_folder else folder / f"{dag_id}.py"
    bag = dag_bag(path, bundle_path=folder)
    assert not bag.import_errors, bag.import_errors
    assert dag_id in bag.dags, f"{path} defines no DAG with id {dag_id!r}"
    return bag


@dataclass
class DagRunResult:
    """What a ``dag.test()`` run left behind, read from the metadata database."""

    dag_id: str
    run_id: str
    state: str
    task_states: dict[str, str] = field(default_factory=dict)

    @property
    def failures(self) -> dict[str, str]:
        return {t: s for t, s in self.task_states.items() if s != "success"}

    def xcom(self, task_id: str, key: str = "return_value") -> Any:
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session

        with create_session() as session:
            row = (
                session.query(XComModel)
                .filter_by(dag_id=self.dag_id, run_id=self.run_id, task_id=task_id, key=key)
                .one_or_none()
            )
            return None if row is None else XComModel.deserialize_value(row)


def run_dag(
    dag_id: str,
    conf: dict[str, Any] | None = None,
    folder: Path = EXAMPLE_DAGS,
    logical_date: Any = None,
) -> DagRunResult:
    """Run one DAG to completion with ``dag.test()``; return its state and task states."""
    from airflow_provider_sfjwt.compat import DAG_TEST_REGISTERS_THE_DAG, register_parsed_dags

    ensure_db()
    # Where dag.test() does not register the bundle, the whole folder is parsed and registered
    # (the DAGs scheduled on this one's Assets too), with the Assets this test's env vars make.
    bag = _parse(dag_id, folder, whole_folder=not DAG_TEST_REGISTERS_THE_DAG)
    if not DAG_TEST_REGISTERS_THE_DAG:
        register_parsed_dags(bag)
    dag = bag.dags[dag_id]
    run = dag.test(run_conf=conf, **({"logical_date": logical_date} if logical_date else {}))
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = session.query(TaskInstance).filter_by(dag_id=dag_id, run_id=run.run_id).all()
        states = {ti.task_id: str(ti.state) for ti in tis}
    return DagRunResult(dag_id=dag_id, run_id=run.run_id, state=str(run.state), task_states=states)

"""Every Airflow name that moved between 3.0 and 3.3 comes from ``compat``, and is the right one.

The suite runs on the oldest and the newest supported Airflow (``make test AIRFLOW_VERSION=...``);
these tests say which names those runs depend on, and the import rule keeps a developer on one
release from importing a name that exists only there.
"""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

import pytest
from airflow.sdk import BaseOperator

from airflow_provider_sfjwt import compat
from airflow_provider_sfjwt.compat import AIRFLOW_VERSION, TaskDeferred, in_worker_thread
from airflow_provider_sfjwt.triggers.bulk import SalesforceBulkJobTrigger

REPO = Path(__file__).resolve().parent.parent
CHECKED = ("airflow_provider_sfjwt", "tests", "tests_ui", "example_dags", "scripts", "benchmarks")

# What may be imported from Airflow directly: the same module and name on 3.0, 3.1, 3.2 and 3.3.
STABLE: dict[str, set[str]] = {
    "airflow": {"*"},  # `import airflow` (version, package path)
    "airflow.sdk": {
        "Asset",
        "BaseOperator",
        "BaseSensorOperator",
        "Connection",
        "Context",
        "Param",
        "PokeReturnValue",
        "TaskGroup",
        "Variable",
        "dag",
        "task",
    },
    "airflow.triggers.base": {"BaseTrigger", "TriggerEvent"},
    # dag.test() bookkeeping the tests read back from the metadata database
    "airflow.utils": {"db"},
    "airflow.utils.session": {"create_session"},
    "airflow.models.xcom": {"XComModel"},
    "airflow.models.taskinstance": {"TaskInstance"},
    "airflow.models.asset": {"AssetDagRunQueue", "AssetEvent", "AssetModel"},
    # the scheduler's interval timetable (the example DAG's data intervals)
    "airflow.timetables.interval": {"CronDataIntervalTimetable"},
    # the optional OpenLineage provider, imported only when it asks for lineage
    "airflow.providers.openlineage.extractors": {"OperatorLineage"},
    "airflow.providers.common.compat.openlineage.facet": {
        "Dataset",
        "DatasetFacet",
        "RunFacet",
        "SchemaDatasetFacet",
        "SchemaDatasetFacetFields",
    },
    # probed, not relied on: absent releases simply do not need the Test button fix
    "airflow.api_fastapi.core_api.routes.public.connections": {"_same_endpoint"},
}


def _airflow_imports(path: Path) -> list[tuple[int, str, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "airflow" or node.module.startswith("airflow."):
                found += [(node.lineno, node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [
                (node.lineno, alias.name, "*")
                for alias in node.names
                if alias.name == "airflow" or alias.name.startswith("airflow.")
            ]
    return found


def test_moved_airflow_names_are_imported_only_through_compat():
    offenders = []
    files = [p for top in CHECKED for p in sorted((REPO / top).rglob("*.py"))]
    assert len(files) > 100
    for path in files:
        if path == REPO / "airflow_provider_sfjwt" / "compat.py":
            continue
        for line, module, name in _airflow_imports(path):
            allowed = STABLE.get(module, set())
            if "*" not in allowed and name not in allowed:
                offenders.append(f"{path.relative_to(REPO)}:{line}: from {module} import {name}")
    assert not offenders, "import these through airflow_provider_sfjwt.compat:\n" + "\n".join(
        offenders
    )


@pytest.mark.parametrize("name", sorted(compat._MOVED))
def test_every_moved_name_resolves_on_this_airflow(name):
    value = getattr(compat, name)
    assert value is not None
    assert getattr(compat, name) is value  # resolved once, then a plain module attribute


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="NoSuchThing"):
        compat.NoSuchThing  # noqa: B018


def test_first_import_names_every_place_it_looked():
    with pytest.raises(ImportError, match=r"Nope is in none of airflow\.sdk, airflow\.exceptions"):
        compat.first_import("Nope", "airflow.sdk", "airflow.exceptions")


def test_deferral_raises_the_exception_compat_exports():
    """The class the running Airflow raises on defer() is the one operators and tests catch."""
    op = BaseOperator(task_id="t")
    trigger = SalesforceBulkJobTrigger("c", ["750"], "query")
    with pytest.raises(TaskDeferred) as deferred:
        op.defer(trigger=trigger, method_name="execute_complete")
    assert type(deferred.value) is TaskDeferred
    assert deferred.value.trigger is trigger


def test_exceptions_are_the_ones_the_task_runner_handles():
    """Where both locations exist the old one must be an alias of the new, not another class."""
    for name in ("AirflowFailException", "AirflowNotFoundException", "AirflowRescheduleException"):
        assert getattr(compat, name) is compat.first_import(name, "airflow.exceptions"), name
        assert issubclass(getattr(compat, name), compat.AirflowException)


def test_masking_goes_through_one_primitive():
    secret = "compat-masking-secret-value"
    compat.mask_secret(secret)
    assert compat.redact(f"token {secret}") == "token ***"
    compat.reset_secrets_masker()
    assert compat.redact(secret) == secret


def test_version_is_a_release():
    assert AIRFLOW_VERSION.major == 3
    assert not AIRFLOW_VERSION.is_prerelease


def test_trigger_threads_reach_the_triggerers_event_loop():
    """What a trigger's blocking code does when it asks Airflow for a connection: the sync bridge
    of the triggerer (asgiref's async_to_sync) must run the request on the trigger's own loop,
    which owns the supervisor socket; on a second loop, concurrent requests get mixed up."""
    from asgiref.sync import async_to_sync

    async def main() -> list[bool]:
        loop = asyncio.get_running_loop()
        seen: list[bool] = []

        async def request() -> None:
            seen.append(asyncio.get_running_loop() is loop)

        await asyncio.gather(*(in_worker_thread(async_to_sync(request)) for _ in range(4)))
        return seen

    assert asyncio.run(main()) == [True] * 4

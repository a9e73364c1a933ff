"""What differs between Airflow 3 releases, handled in one place.

The provider supports every Airflow 3 release (3.0 to 3.3), and between them names moved: 3.0 has
no ``airflow.sdk.BaseHook`` (it is ``airflow.hooks.base``); 3.0 and 3.1 raise and catch the task
exceptions (``AirflowFailException``, ``TaskDeferred``, ...) from ``airflow.exceptions``, 3.2 and
later from ``airflow.sdk.exceptions``; the plugin base class and ``conf`` moved under
``airflow.sdk`` in 3.2. Every such import is made here, newest location first, so the rest of
the code imports one stable name from this module and never tries two paths itself. This is what
Airflow's own providers do with ``airflow.providers.common.compat``; that package is not a
dependency here because its map serves Airflow 2 as much as Airflow 3.

Newest first matters for the exceptions: the class a task raises must be the one the running
task runner catches, and where both locations exist the old one is a deprecated alias.

Also here, because each is a difference between releases: the connection form for 3.0 and 3.1
(built from the hook's methods there, from the provider info later), blocking work in a trigger
(safe from any thread only from 3.3), and connection lookups outside a task (3.0's Task SDK reads
no metadata database there). Names that are the same on every Airflow 3 release
(``airflow.sdk.BaseOperator``, ``dag``, ``Variable``, ``airflow.triggers.base.BaseTrigger``, ...)
are imported directly where they are used. The last section serves the test-suite: Airflow
internals that tests inspect (the secrets masker, the providers manager, the DAG bag) moved too,
and tests reach them only through here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import airflow
from packaging.version import Version

AIRFLOW_VERSION = Version(Version(airflow.__version__).base_version)
"""The running Airflow's release, without pre-release or local parts (``3.1.8``)."""


def first_import(name: str, *modules: str) -> Any:
    """``name`` from the first of ``modules`` that has it (the newest location comes first)."""
    for module in modules:
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
    raise ImportError(f"{name} is in none of {', '.join(modules)} (Airflow {AIRFLOW_VERSION})")


_EXCEPTIONS = ("airflow.sdk.exceptions", "airflow.exceptions")

# name -> where it lives, newest release first. Resolved on first use (module ``__getattr__``), so
# importing this module costs nothing: the plugin, loaded by every Airflow component, imports only
# the plugin base class through it, and ObjectStoragePath (fsspec) loads only where a path is made.
_MOVED: dict[str, tuple[str, ...]] = {
    "BaseHook": ("airflow.sdk", "airflow.hooks.base"),
    "ObjectStoragePath": ("airflow.sdk", "airflow.io.path"),
    "AirflowException": _EXCEPTIONS,
    "AirflowFailException": _EXCEPTIONS,
    "AirflowNotFoundException": _EXCEPTIONS,
    "AirflowRescheduleException": _EXCEPTIONS,
    "TaskDeferred": _EXCEPTIONS,
    # The one way the provider registers a secret with Airflow's masker: inside a task it also
    # tells the supervisor, whose log output is then masked too.
    "mask_secret": ("airflow.sdk.log", "airflow.sdk.execution_time.secrets_masker"),
    "conf": ("airflow.sdk.configuration", "airflow.configuration"),
    "AirflowPlugin": ("airflow.sdk.plugins_manager", "airflow.plugins_manager"),
}

if TYPE_CHECKING:  # the newest locations, for type checkers; `as` marks them re-exported
    from airflow.sdk import BaseHook as BaseHook
    from airflow.sdk import ObjectStoragePath as ObjectStoragePath
    from airflow.sdk.configuration import conf as conf
    from airflow.sdk.exceptions import AirflowException as AirflowException
    from airflow.sdk.exceptions import AirflowFailException as AirflowFailException
    from airflow.sdk.exceptions import AirflowNotFoundException as AirflowNotFoundException
    from airflow.sdk.exceptions import AirflowRescheduleException as AirflowRescheduleException
    from airflow.sdk.exceptions import TaskDeferred as TaskDeferred
    from airflow.sdk.log import mask_secret as mask_secret
    from airflow.sdk.plugins_manager import AirflowPlugin as AirflowPlugin


def __getattr__(name: str) -> Any:
    modules = _MOVED.get(name)
    if modules is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = first_import(name, *modules)
    globals()[name] = value  # resolved once
    return value


# --- blocking work in a trigger -----------------------------------------------------------------

T = TypeVar("T")


async def in_worker_thread(func: Callable[..., T], *args: Any) -> T:
    """``func(*args)`` in a worker thread, so that the triggerer's event loop goes on meanwhile.

    Blocking code that asks Airflow for something (a connection, a Variable, masking a new
    token) sends a request to the triggerer's supervisor over a socket the event loop owns. Up to
    3.2 such a request made from a thread reaches that loop only when the thread was started by
    asgiref's ``sync_to_async``, the bridge the triggerer itself uses; from any other thread
    (``asyncio.to_thread``) it reads the socket from a second event loop, concurrent triggers get
    each other's answers ("Response read out of order") and the triggerer exits. 3.3 accepts
    requests from any thread. asgiref comes with Airflow on every release.
    """
    from asgiref.sync import sync_to_async

    return await sync_to_async(func, thread_sensitive=False)(*args)


# --- connections and Variables outside a task (the sfjwt command) ------------------------------

TASK_SDK_READS_THE_DATABASE = Version("3.1") <= AIRFLOW_VERSION
"""From 3.1 the Task SDK's ``Connection.get`` / ``Variable.get`` also search the metadata database
when the process says it is a server (``_AIRFLOW_PROCESS_CONTEXT=server``); 3.0's search only
env vars and secrets backends outside a task, and fail with an ImportError for an unknown id."""


def connection_outside_task(conn_id: str) -> Any:
    """A connection from env vars, secrets backends or the metadata database, as ``airflow
    connections get`` finds it; raises :class:`AirflowNotFoundException` when none has it."""
    if TASK_SDK_READS_THE_DATABASE:
        return first_import("Connection", "airflow.sdk").get(conn_id)
    core = first_import("Connection", "airflow.models.connection")
    return core.get_connection_from_secrets(conn_id)


def variable_outside_task(name: str) -> Any:
    """A Variable from the same places; raises ``KeyError`` when none has it."""
    if TASK_SDK_READS_THE_DATABASE:
        return first_import("Variable", "airflow.sdk").get(name)
    return first_import("Variable", "airflow.models.variable").get(name)


# --- `airflow dags test` / `dag.test()` ------------------------------------------------------

DAG_TEST_REGISTERS_THE_DAG = Version("3.1") <= AIRFLOW_VERSION
"""From 3.1 ``airflow dags test`` and ``dag.test()`` write the DAG's whole bundle (every DAG of
the dags folder) to the metadata database, and so activate its Assets and the schedules of the
DAGs that wait on them, before running it. 3.0's run a DAG as parsed: a task with an Asset outlet
fails as "inactive asset" (apache/airflow#51644) unless that very DAG, with the same Assets, was
registered first, and an Asset event queues no run of a DAG scheduled on it unless that DAG was
registered too: by a dag processor, ``airflow dags reserialize`` or :func:`register_parsed_dags`
over the folder. The example DAGs' Assets depend on env vars read at parse time, so the
registration must see the same environment as the run."""


def register_parsed_dags(bag: Any) -> None:
    """Write a parsed DagBag's DAGs and Assets to the metadata database, as a dag processor does.

    Needed before ``dag.test()`` only where :data:`DAG_TEST_REGISTERS_THE_DAG` is false; the
    bundle row must exist (``airflow dags reserialize`` or the dag processor made it).
    """
    bag.sync_to_db("dags-folder", None)


# --- for the test-suite: Airflow internals that moved ------------------------------------------

_MASKER_MODULES = (
    "airflow.sdk._shared.secrets_masker.secrets_masker",  # 3.1 and later
    "airflow.sdk.execution_time.secrets_masker",  # 3.0
)


def redact(value: Any, name: str | None = None) -> Any:
    """``value`` as the task-side masker would log it (what :func:`mask_secret` fed)."""
    return first_import("redact", *_MASKER_MODULES)(value, name)


def should_hide_value_for_key(name: str) -> bool:
    """Whether Airflow treats a field of this name as sensitive (``token_cache`` is: "token")."""
    return bool(first_import("should_hide_value_for_key", *_MASKER_MODULES)(name))


def reset_secrets_masker() -> None:
    """Forget every registered secret (a long test session would otherwise slow every log line)."""
    first_import("_secrets_masker", *_MASKER_MODULES)().reset_masker()


def provider_hooks() -> Mapping[str, Any]:
    """Airflow's connection-type registry, ``{conn_type: HookInfo}``, as task code reads it.

    Task code has its own providers manager from 3.2 on; the core one still works there but warns.
    """
    try:
        manager = first_import(
            "ProvidersManagerTaskRuntime", "airflow.sdk.providers_manager_runtime"
        )
    except ImportError:
        manager = first_import("ProvidersManager", "airflow.providers_manager")
    hooks: Mapping[str, Any] = manager().hooks
    return hooks


def dag_bag(path: Path, bundle_path: Path) -> Any:
    """A DagBag that parses ``path`` (a file or folder) as the dag processor does."""
    cls = first_import("DagBag", "airflow.dag_processing.dagbag", "airflow.models.dagbag")
    return cls(dag_folder=path, bundle_path=bundle_path)


# --- the connection form on Airflow 3.0 and 3.1 ------------------------------------------------


def connection_form_widgets(fields: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The ``conn-fields`` declaration as the WTForms fields Airflow 3.0 and 3.1 build a form from.

    Those releases never read ``conn-fields``. Their API server imports the hook with WTForms'
    field classes swapped for stand-ins that keep a field's label, help text, default, type and
    ``password`` format, and serves those; so WTForms must be importable there (a dependency of
    this package) and is imported here, when Airflow calls, so the stand-ins are what is used.
    A password-format field becomes a PasswordField (sensitive), an integer an IntegerField,
    text a StringField. Limits, patterns, examples and multi-line input have no stand-in: the
    3.0/3.1 form shows the same fields, labels, help texts, sensitivity and defaults without them.
    """
    from wtforms import IntegerField, PasswordField, StringField
    from wtforms.validators import Optional

    widgets: dict[str, Any] = {}
    for name, spec in fields.items():
        schema = spec["schema"]
        kinds = set(schema["type"]) - {"null"}
        if kinds == {"string"}:
            field = PasswordField if schema.get("format") == "password" else StringField
        elif kinds == {"integer"}:
            field = IntegerField
        else:
            raise ValueError(
                f"connection field {name!r}: no Airflow 3.0/3.1 form field for {kinds}"
            )
        widgets[name] = field(
            spec["label"],
            validators=[Optional()],
            description=spec["description"],
            default=schema.get("default"),
        )
    return widgets


def ui_field_behaviour(behaviour: Mapping[str, Any]) -> dict[str, Any]:
    """``ui-field-behaviour`` as ``get_ui_field_behaviour()`` returns it (``hidden_fields``, ...)."""
    return {key.replace("-", "_"): value for key, value in behaviour.items()}

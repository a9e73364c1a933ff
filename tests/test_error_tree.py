"""One error tree: every exception the core defines lives in errors.py, under SalesforceError,
and the tree drawn in that module's docstring names each of them."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import airflow_provider_sfjwt.salesforce as core
from airflow_provider_sfjwt.salesforce import errors
from airflow_provider_sfjwt.salesforce.retry import Retryable


def _core_exceptions() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(core.__path__, core.__name__ + "."):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
            ):
                found[f"{module.__name__}.{name}"] = value
    return found


def test_every_core_exception_is_a_salesforce_error_defined_in_errors() -> None:
    found = _core_exceptions()
    assert found, "no exception classes found: the walk is broken"
    outside = {name for name, cls in found.items() if cls.__module__ != errors.__name__} - {
        f"{Retryable.__module__}.Retryable"
    }
    assert outside == set()
    not_in_tree = {
        name for name, cls in found.items() if not issubclass(cls, errors.SalesforceError)
    } - {f"{Retryable.__module__}.Retryable"}
    assert not_in_tree == set()


def test_the_docstring_draws_every_error() -> None:
    doc = errors.__doc__ or ""
    names = {cls.__name__ for cls in _core_exceptions().values() if cls is not Retryable}
    assert len(names) > 20
    missing = {name for name in names if f" {name}" not in doc}
    assert missing == set()
    for cls in (errors.InvalidInputError, errors.UnexpectedResponseError):
        assert issubclass(cls, ValueError)  # bad values stay catchable as ValueError
    assert issubclass(errors.ResponseTooLargeError, errors.SalesforceError)

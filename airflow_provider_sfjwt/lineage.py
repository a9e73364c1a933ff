"""OpenLineage for the data-moving operators: which Salesforce object and which file a run read
and wrote, with the columns.

The operators record plain descriptions while they run (:class:`LineageMixin`); OpenLineage
objects are built only when ``apache-airflow-providers-openlineage`` asks for them through
``get_openlineage_facets_on_complete``, so nothing here costs anything without that provider.

Names follow the OpenLineage naming spec where it has an entry: a local file is namespace
``file`` and its absolute path, object storage is ``s3://bucket`` (``gs://``, ...) and the key.
The spec has no Salesforce entry; an object is namespace ``salesforce://<instance host>`` (the
org's My Domain host, from the token) and its API name (``Account``), so every run against the
same org names the same object the same way.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_sfjwt.salesforce.extract import from_object

if TYPE_CHECKING:
    from airflow.providers.common.compat.openlineage.facet import Dataset, RunFacet
    from airflow.providers.openlineage.extractors import OperatorLineage


@dataclass(frozen=True)
class DatasetRef:
    """One dataset as OpenLineage names it, with the columns when they are known.

    ``types`` and ``notes`` (column -> Salesforce type, column -> remark such as "added since
    the last run") go into the schema facet's ``type`` and ``description`` when given.
    """

    namespace: str
    name: str
    columns: tuple[str, ...] = ()
    types: tuple[tuple[str, str], ...] = ()
    notes: tuple[tuple[str, str], ...] = ()


def salesforce_object(instance_url: str, sobject: str, columns: Sequence[str] = ()) -> DatasetRef:
    """An sObject of the org behind ``instance_url`` (``https://acme.my.salesforce.com``)."""
    return DatasetRef(f"salesforce://{urlsplit(instance_url).netloc}", sobject, tuple(columns))


_SOBJECT_PATH = re.compile(r"^(?:/services/data/v[\d.]+/)?sobjects/([A-Za-z][\w]*)", re.IGNORECASE)
_QUERY_PATH = re.compile(r"^(?:/services/data/v[\d.]+/)?query(?:All)?/?$", re.IGNORECASE)


def salesforce_resource(
    instance_url: str, endpoint: str, params: Mapping[str, Any] | None = None
) -> DatasetRef:
    """What a REST call read: the sObject of ``sobjects/<Object>/...`` or of a ``query``
    (its FROM), else the resource path itself (``services/apexrest/Orders/v1``)."""
    path = endpoint.split("?", 1)[0]
    match = _SOBJECT_PATH.match(path)
    if match:
        return salesforce_object(instance_url, match.group(1))
    soql = (params or {}).get("q")
    if _QUERY_PATH.match(path) and isinstance(soql, str) and from_object(soql):
        return salesforce_object(instance_url, from_object(soql) or "")
    return salesforce_object(instance_url, path.strip("/"))


def file_dataset(
    path: Any,
    columns: Sequence[str] = (),
    types: Mapping[str, str] | None = None,
    notes: Mapping[str, str] | None = None,
) -> DatasetRef:
    """A local path, ``file://`` URI, object-storage URI or ``ObjectStoragePath``.

    An Airflow connection id in the URI (``s3://aws_default@bucket/key``) is not part of the
    dataset's identity and is dropped.
    """
    text = str(path)
    parts = urlsplit(text)
    extra = (tuple((types or {}).items()), tuple((notes or {}).items()))
    if not parts.scheme or len(parts.scheme) == 1 or parts.scheme == "file":
        local = parts.path if parts.scheme == "file" else text  # one letter: a Windows drive
        return DatasetRef("file", os.path.abspath(local), tuple(columns), *extra)
    bucket = parts.netloc.rpartition("@")[2]
    return DatasetRef(f"{parts.scheme}://{bucket}", parts.path.lstrip("/"), tuple(columns), *extra)


class LineageMixin:
    """Gives an operator ``get_openlineage_facets_on_complete`` from what its run recorded."""

    _sfjwt_lineage: tuple[tuple[DatasetRef, ...], tuple[DatasetRef, ...]] | None = None

    def record_lineage(self, inputs: Sequence[DatasetRef], outputs: Sequence[DatasetRef]) -> None:
        """Called by ``execute`` (or ``execute_complete``) once the data has moved."""
        self._sfjwt_lineage = (tuple(inputs), tuple(outputs))

    def record_extract(self, instance_url: str, soql: str, result: Mapping[str, Any]) -> None:
        """A query's object (from its FROM clause) into the file of ``result`` (path, columns)."""
        sobject = from_object(soql)
        self.record_lineage(
            [salesforce_object(instance_url, sobject)] if sobject else [],
            [file_dataset(result["path"], result.get("columns") or ())],
        )

    def record_load(self, instance_url: str, source: Any, sobject: str | None) -> None:
        """A load from ``source`` (a file, or ``None`` for records given inline) into ``sobject``."""
        self.record_lineage(
            [file_dataset(source)] if source is not None else [],
            [salesforce_object(instance_url, sobject)] if sobject else [],
        )

    def get_openlineage_facets_on_complete(
        self, task_instance: Any
    ) -> OperatorLineage[Dataset, RunFacet] | None:
        """The run's inputs and outputs for the OpenLineage provider (``None`` if none ran)."""
        if self._sfjwt_lineage is None:
            return None
        from airflow.providers.common.compat.openlineage.facet import (
            Dataset,
            DatasetFacet,
            SchemaDatasetFacet,
            SchemaDatasetFacetFields,
        )
        from airflow.providers.openlineage.extractors import OperatorLineage

        def dataset(ref: DatasetRef) -> Dataset:
            facets: dict[str, DatasetFacet] = {}
            if ref.columns:
                types, notes = dict(ref.types), dict(ref.notes)
                fields = [
                    SchemaDatasetFacetFields(
                        name=column, type=types.get(column), description=notes.get(column)
                    )
                    for column in ref.columns
                ]
                facets["schema"] = SchemaDatasetFacet(fields=fields)
            return Dataset(namespace=ref.namespace, name=ref.name, facets=facets)

        inputs, outputs = self._sfjwt_lineage
        return OperatorLineage(
            inputs=[dataset(ref) for ref in inputs], outputs=[dataset(ref) for ref in outputs]
        )

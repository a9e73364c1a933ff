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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_sfjwt.salesforce.extract import from_object

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage


@dataclass(frozen=True)
class DatasetRef:
    """One dataset as OpenLineage names it, with the columns when they are known."""

    namespace: str
    name: str
    columns: tuple[str, ...] = ()


def salesforce_object(instance_url: str, sobject: str, columns: Sequence[str] = ()) -> DatasetRef:
    """An sObject of the org behind ``instance_url`` (``https://acme.my.salesforce.com``)."""
    return DatasetRef(f"salesforce://{urlsplit(instance_url).netloc}", sobject, tuple(columns))


def file_dataset(path: Any, columns: Sequence[str] = ()) -> DatasetRef:
    """A local path, ``file://`` URI, object-storage URI or ``ObjectStoragePath``.

    An Airflow connection id in the URI (``s3://aws_default@bucket/key``) is not part of the
    dataset's identity and is dropped.
    """
    text = str(path)
    parts = urlsplit(text)
    if not parts.scheme or len(parts.scheme) == 1 or parts.scheme == "file":
        local = parts.path if parts.scheme == "file" else text  # one letter: a Windows drive
        return DatasetRef("file", os.path.abspath(local), tuple(columns))
    bucket = parts.netloc.rpartition("@")[2]
    return DatasetRef(f"{parts.scheme}://{bucket}", parts.path.lstrip("/"), tuple(columns))


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

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage | None:
        """The run's inputs and outputs for the OpenLineage provider (``None`` if none ran)."""
        if self._sfjwt_lineage is None:
            return None
        from airflow.providers.common.compat.openlineage.facet import (
            Dataset,
            SchemaDatasetFacet,
            SchemaDatasetFacetFields,
        )
        from airflow.providers.openlineage.extractors import OperatorLineage

        def dataset(ref: DatasetRef) -> Any:
            facets = {}
            if ref.columns:
                fields = [SchemaDatasetFacetFields(name=column) for column in ref.columns]
                facets["schema"] = SchemaDatasetFacet(fields=fields)
            return Dataset(namespace=ref.namespace, name=ref.name, facets=facets)

        inputs, outputs = self._sfjwt_lineage
        return OperatorLineage(
            inputs=[dataset(ref) for ref in inputs], outputs=[dataset(ref) for ref in outputs]
        )

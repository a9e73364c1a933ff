"""``SalesforceRestOperator``: any REST or Apex REST call; big answers go to a file, not XCom."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_sfjwt.hooks.salesforce_jwt import storage_path
from airflow_provider_sfjwt.lineage import file_dataset, salesforce_resource
from airflow_provider_sfjwt.operators.base import SalesforceTransferOperator
from airflow_provider_sfjwt.salesforce.rest_call import (
    DEFAULT_MAX_INLINE_BYTES,
    RestAnswer,
    check_max_inline_bytes,
)

if TYPE_CHECKING:
    from airflow.sdk import Context


class SalesforceRestOperator(SalesforceTransferOperator):
    """Call a Salesforce REST resource or an Apex REST endpoint.

    The call gets the provider's retry and re-authentication policy. A POST/PATCH/DELETE that
    may have reached Salesforce is not repeated on an ambiguous failure unless ``idempotent``
    says the endpoint is safe to repeat.

    :param endpoint: the resource, relative to the data API (``limits``,
        ``sobjects/Account/describe``) or from the instance root, e.g.
        ``/services/apexrest/Orders/v1`` for Apex REST (templated).
    :param method: HTTP method.
    :param idempotent: override whether the call may be repeated after an ambiguous failure.
    :param query_params: query string parameters (templated; ``params`` is Airflow's own).
    :param json: request body, sent as JSON (templated).
    :param output_path: file (local or object storage) that receives the body; XCom then
        holds only ``{"status", "path", "bytes"}`` (templated).
    :param max_inline_bytes: answers up to this size are returned in XCom as
        ``{"status", "body"}`` when no output_path is set; bigger ones fail the task with a
        request to set output_path.
    :param storage_conn_id: Airflow connection for an object-storage ``output_path`` URI.

    When the answer goes to ``output_path``, OpenLineage reports the Salesforce resource read
    (the sObject of ``sobjects/<Object>/...`` or of a ``query``, else the resource path) as
    input and the file as output.
    """

    template_fields: Sequence[str] = ("endpoint", "method", "query_params", "json", "output_path")
    template_fields_renderers = {"json": "json", "query_params": "json"}
    ui_color = "#d4e9fa"

    def __init__(
        self,
        *,
        endpoint: str,
        method: str = "GET",
        idempotent: bool | None = None,
        query_params: Mapping[str, Any] | None = None,
        json: Any = None,
        output_path: str | None = None,
        max_inline_bytes: int = DEFAULT_MAX_INLINE_BYTES,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.endpoint = endpoint
        self.max_inline_bytes = check_max_inline_bytes(max_inline_bytes)
        self.method = method
        self.idempotent = idempotent
        self.query_params = query_params
        self.json = json
        self.output_path = output_path

    def execute(self, context: Context) -> RestAnswer:
        result = self.hook.call(
            self.method,
            self.endpoint,
            params=self.query_params,
            json=self.json,
            output_path=storage_path(self.output_path or None, self.storage_conn_id),
            max_inline_bytes=self.max_inline_bytes,
            idempotent=self.idempotent,
        )
        if "path" in result:
            instance_url = self.hook.get_conn().instance_url
            source = salesforce_resource(instance_url, self.endpoint, self.query_params)
            self.record_lineage([source], [file_dataset(result["path"])])
        return result

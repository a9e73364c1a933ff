"""The provider's Airflow plugin (entry point group ``airflow.plugins``).

It exists for one reason: on Airflow 3.3.1 and 3.3.2 the connection list's Test button answers
``Bad Request`` for every ``salesforce_jwt`` connection (see :mod:`.connection_test`). Plugins are
loaded by every Airflow component, so this module imports nothing heavy; the middleware decides
when the API server builds its app whether the running Airflow needs the fix at all.
"""

from __future__ import annotations

try:
    from airflow.sdk.plugins_manager import AirflowPlugin
except ImportError:  # Airflow releases before the Task SDK had its own plugins manager
    from airflow.plugins_manager import AirflowPlugin

from airflow_provider_sfjwt.plugins.connection_test import PortlessConnectionTestFix


class SalesforceJWTPlugin(AirflowPlugin):
    name = "salesforce_jwt"
    fastapi_root_middlewares = [
        {"middleware": PortlessConnectionTestFix, "name": "salesforce_jwt portless Test button"}
    ]

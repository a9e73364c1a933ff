"""The provider's Airflow plugin (entry point group ``airflow.plugins``).

It does two things:

* the SOQL literal macros, ``{{ macros.salesforce_jwt.soql_quote(params.name) }}`` and friends
  (:mod:`airflow_provider_sfjwt.salesforce.soql_literals`), so templated queries are safe;
* on Airflow 3.3.1 and 3.3.2 the connection list's Test button answers ``Bad Request`` for every
  ``salesforce_jwt`` connection (see :mod:`.connection_test`); the middleware decides when the
  API server builds its app whether the running Airflow needs the fix at all.

Plugins are loaded by every Airflow component, so this module imports nothing heavy.
"""

from __future__ import annotations

from airflow_provider_sfjwt.compat import AirflowPlugin
from airflow_provider_sfjwt.plugins.connection_test import PortlessConnectionTestFix
from airflow_provider_sfjwt.salesforce.soql_literals import (
    soql_date,
    soql_datetime,
    soql_like,
    soql_quote,
)


class SalesforceJWTPlugin(AirflowPlugin):
    name = "salesforce_jwt"
    macros = [soql_quote, soql_datetime, soql_date, soql_like]
    fastapi_root_middlewares = [
        {"middleware": PortlessConnectionTestFix, "name": "salesforce_jwt portless Test button"}
    ]

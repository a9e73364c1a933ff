"""sqlite settings for the real-scheduler run (``[database] sql_alchemy_connect_args``).

Every component of ``airflow standalone`` writes the one sqlite file. sqlite's default wait for a
lock is 5 s; on two busy cores a writer can hold it longer, and Airflow 3.0's scheduler exits on
the first "database is locked". A longer wait keeps the run going; nothing else changes. It stays
well under the test's HTTP timeout, so an API request that still finds the lock answers 500 and is
sent again (``Standalone.write``).
"""

CONNECT_ARGS = {"timeout": 30}

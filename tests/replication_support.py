"""What the replication tests share: the emulator's clock moved to a simulated moment, the
README's DuckDB merge, and the comparison of a merged lake copy with the org's live rows.

The merge is read from README.md itself (the ```sql block under "Replicating objects" that
starts with ``-- merge``), so the test proves the text a data engineer copies.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from airflow_provider_sfjwt.salesforce.client import SalesforceClient
from airflow_provider_sfjwt.testing import SalesforceEmulator

REPO = Path(__file__).resolve().parent.parent
UTC = dt.timezone.utc


def at(emu: SalesforceEmulator, moment: dt.datetime) -> None:
    """Set the emulator's clock (every stamp it writes, its Date header, TODAY()) to ``moment``."""
    emu.clock_skew = moment.timestamp() - time.time()


def readme_sql(name: str) -> str:
    """The README's SQL block whose first line is ``-- <name>``."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    for block in re.findall(r"```sql\n(.*?)```", text, re.DOTALL):
        if block.startswith(f"-- {name}"):
            return block
    raise AssertionError(f"README.md has no ```sql block starting with '-- {name}'")


def merged_lake(folder: Path, formulas: bool = False) -> dict[str, dict[str, Any]]:
    """The README's DuckDB merge run on ``folder``: Id -> row (formula columns joined when
    ``formulas``)."""
    import duckdb

    sql = readme_sql("merge with formulas" if formulas else "merge")
    sql = sql.replace("s3://lake/salesforce/Account", str(folder))
    con = duckdb.connect()
    try:
        cursor = con.execute(sql)
        names = [d[0] for d in cursor.description]
        return {
            row[names.index("Id")]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()
        }
    finally:
        con.close()


def _canonical(value: Any, sf_type: str) -> Any:
    """One form for a value from REST JSON and the same value read back from Parquet."""
    if value is None or value == "":
        return None
    if sf_type == "datetime":
        moment = (
            value
            if isinstance(value, dt.datetime)
            else dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("+0000", "+00:00"))
        )
        return moment.astimezone(UTC).isoformat(timespec="milliseconds")
    if sf_type == "date":
        return value.isoformat() if isinstance(value, dt.date) else str(value)
    if sf_type in ("double", "currency", "percent", "int", "long"):
        return float(value)
    if sf_type == "boolean":
        return bool(value) if not isinstance(value, str) else value.lower() == "true"
    return value


def live_rows(
    client: SalesforceClient, sobject: str, types: Mapping[str, str]
) -> dict[str, dict[str, Any]]:
    """Every live row of ``sobject`` as the org answers now, read by REST."""
    soql = f"SELECT {', '.join(types)} FROM {sobject}"
    return {r["Id"]: {k: r.get(k) for k in types} for r in client.query(soql)}


def compare(
    lake: Mapping[str, Mapping[str, Any]],
    org: Mapping[str, Mapping[str, Any]],
    types: Mapping[str, str],
) -> dict[str, Any]:
    """``{"missing", "stale", "resurrected"}`` counts, with a few examples of each."""
    missing = sorted(set(org) - set(lake))
    resurrected = sorted(set(lake) - set(org))
    stale = []
    for rid in sorted(set(org) & set(lake)):
        for name, sf_type in types.items():
            want = _canonical(org[rid].get(name), sf_type)
            got = _canonical(lake[rid].get(name), sf_type)
            if want != got:
                stale.append((rid, name, want, got))
                break
    return {
        "missing": len(missing),
        "stale": len(stale),
        "resurrected": len(resurrected),
        "examples": {"missing": missing[:3], "stale": stale[:3], "resurrected": resurrected[:3]},
    }


def ids(records: Iterable[Mapping[str, Any]]) -> list[str]:
    return [r["Id"] for r in records]

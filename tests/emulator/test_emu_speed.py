"""Serving speed guard rails: the emulator must not be the bottleneck of client benchmarks.

Thresholds are far below what the emulator does on a quiet 2-core machine (about 250k records/s
for Bulk CSV and 100k+ for REST pages) so a busy CI runner does not make them flaky; a regression
by an order of magnitude still fails.
"""

from __future__ import annotations

import time

from emu_helpers import api


def test_bulk_csv_and_rest_pages_are_fast(emu, sf):
    emu.generate_accounts(100_000)
    cols = "Id, Name, Industry, AnnualRevenue, NumberOfEmployees, CreatedDate, Active__c, Description, Owner.Name"
    job = sf.post(
        api(emu, "jobs/query"), json={"operation": "query", "query": f"SELECT {cols} FROM Account"}
    ).json()
    for _ in range(2):
        sf.get(api(emu, f"jobs/query/{job['id']}"))
    t0 = time.perf_counter()
    resp = sf.get(
        api(emu, f"jobs/query/{job['id']}/results"), params={"maxRecords": 100_000}, stream=True
    )
    size = sum(len(c) for c in resp.iter_content(1 << 20))
    bulk_rate = 100_000 / (time.perf_counter() - t0)
    assert resp.headers["Sforce-NumberOfRecords"] == "100000" and size > 5_000_000

    body = sf.get(api(emu, "query"), params={"q": f"SELECT {cols} FROM Account"}).json()
    t0 = time.perf_counter()
    served = 0
    while not body["done"] and served < 40_000:
        body = sf.get(emu.url + body["nextRecordsUrl"]).json()
        served += len(body["records"])
    rest_rate = served / (time.perf_counter() - t0)
    print(
        f"bulk CSV {bulk_rate:,.0f} records/s, REST pages {rest_rate:,.0f} records/s (client parse incl.)"
    )
    assert bulk_rate > 30_000
    assert rest_rate > 5_000

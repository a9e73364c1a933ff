"""Streaming writers and readers: format fidelity, atomic output, bounded memory, Bulk CSV helpers.

Real files under tmp_path, parsed back with the standard library (csv, json) and pyarrow, so
the assertions are about what a downstream consumer actually reads.
"""

from __future__ import annotations

import csv
import io
import json
import os
import pathlib
import sys
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_sfjwt.salesforce.bulk_csv import CsvJoiner, csv_chunks_to_records
from airflow_provider_sfjwt.salesforce.errors import SalesforceError
from airflow_provider_sfjwt.salesforce.parquet import PARQUET_INSTALL_HINT
from airflow_provider_sfjwt.salesforce.readers import read_records, split_csv
from airflow_provider_sfjwt.salesforce.records import flatten_record
from airflow_provider_sfjwt.salesforce.soql import select_columns
from airflow_provider_sfjwt.salesforce.storage import atomic_output
from airflow_provider_sfjwt.salesforce.writers import open_writer

SOQL = """SELECT Id,  Name,
    Owner.Name, IsActive__c, NumberOfEmployees, AnnualRevenue,
    BillingAddress
  FROM Account WHERE Name != 'x, FROM y' ORDER BY Name"""
COLUMNS = [
    "Id",
    "Name",
    "Owner.Name",
    "IsActive__c",
    "NumberOfEmployees",
    "AnnualRevenue",
    "BillingAddress",
]
TRICKY_NAMES = [
    "Comma, Inc.",
    'He said "hi"',
    "line one\nline two",
    "crlf\r\ninside",
    "Zoë — 東京 🚀",
    "",
    " leading and trailing ",
]


def _record(i: int, name: str | None, owner: str | None, active: bool | None) -> dict[str, Any]:
    return {
        "attributes": {"type": "Account", "url": f"/services/data/v66.0/sobjects/Account/{i}"},
        "Id": f"001{i:015d}",
        "Name": name,
        "Owner": None
        if owner is None
        else {"attributes": {"type": "User", "url": "/x"}, "Name": owner},
        "IsActive__c": active,
        "NumberOfEmployees": i,
        "AnnualRevenue": 1234.5 + i if i % 2 else None,
        "BillingAddress": {"city": "Paris", "country": "FR", "street": '1 rue "A"'}
        if i % 3 == 0
        else None,
    }


def _records() -> list[dict[str, Any]]:
    out = [_record(i, name, 'Ann, "Boss"', i % 2 == 0) for i, name in enumerate(TRICKY_NAMES)]
    out.append(_record(len(out), None, None, None))  # null relationship, null everything
    return out


def _expected_cell(value: Any) -> str:
    """What a Salesforce-style CSV cell holds for a JSON value."""
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def _expected_rows(records: list[dict[str, Any]]) -> list[list[Any]]:
    rows = []
    for r in records:
        owner = r["Owner"]["Name"] if r["Owner"] else None
        rows.append(
            [
                r["Id"],
                r["Name"],
                owner,
                r["IsActive__c"],
                r["NumberOfEmployees"],
                r["AnnualRevenue"],
                r["BillingAddress"],
            ]
        )
    return rows


# --- SOQL select list --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("soql", "expected"),
    [
        (SOQL, COLUMNS),
        (
            "SELECT Id, Name, Owner.Name, Account.Owner.Email FROM Contact WHERE Name = 'a'",
            ["Id", "Name", "Owner.Name", "Account.Owner.Email"],
        ),
        ("select id,name from account", ["id", "name"]),
        ("SELECT COUNT() FROM Account", []),
        ("SELECT FIELDS(STANDARD) FROM Account LIMIT 200", []),
        ("SELECT Id, FIELDS(CUSTOM) FROM Account LIMIT 200", []),
        (
            "SELECT StageName, COUNT(Id), MAX(Amount) top, SUM(Amount) FROM Opportunity "
            "GROUP BY StageName",
            ["StageName", "expr0", "top", "expr1"],
        ),
        ("SELECT Owner.Name, COUNT(Id) FROM Opportunity GROUP BY Owner.Name", ["Name", "expr0"]),
        (
            "SELECT Id, toLabel(Status), FORMAT(convertCurrency(Amount)) amt, "
            "(SELECT Id, Name FROM Contacts WHERE Email != null) FROM Account",
            ["Id", "Status", "amt", "Contacts"],
        ),
        (
            "SELECT TYPEOF What WHEN Account THEN Phone, Name WHEN Opportunity THEN Amount "
            "ELSE Name END, Id FROM Event",
            ["What.Phone", "What.Name", "What.Amount", "Id"],
        ),
    ],
)
def test_select_columns(soql: str, expected: list[str]) -> None:
    assert select_columns(soql) == expected


def test_select_columns_refuses_non_select() -> None:
    with pytest.raises(ValueError, match="SELECT"):
        select_columns("UPDATE Account SET Name = 'x'")


# --- flattening --------------------------------------------------------------------------------


def test_flatten_record_follows_relationships_case_insensitively() -> None:
    record = {
        "attributes": {"type": "Contact"},
        "Id": "003",
        "Account": {
            "attributes": {"type": "Account"},
            "Name": "Acme",
            "Owner": {"attributes": {"type": "User"}, "Email": "o@x.io"},
        },
        "Owner": None,
        "MailingAddress": {"city": "Lyon", "postalCode": "69001"},
    }
    columns = ["id", "ACCOUNT.name", "Account.Owner.Email", "Owner.Name", "MailingAddress", "Nope"]
    assert flatten_record(record, columns) == [
        "003",
        "Acme",
        "o@x.io",
        None,
        '{"city":"Lyon","postalCode":"69001"}',
        None,
    ]
    # Flat dotted keys (records parsed from Bulk CSV) are found too.
    assert flatten_record({"Owner.Name": "Bob", "Id": "1"}, ["Id", "owner.name"]) == ["1", "Bob"]


def test_flatten_record_subquery_becomes_json_records() -> None:
    record = {
        "Id": "001",
        "Contacts": {
            "totalSize": 1,
            "done": True,
            "records": [{"attributes": {"type": "Contact"}, "LastName": "Lee"}],
        },
    }
    assert flatten_record(record, ["Id", "Contacts"]) == ["001", '[{"LastName":"Lee"}]']


# --- CSV / JSONL -------------------------------------------------------------------------------


def test_csv_round_trips_through_the_csv_module(tmp_path: pathlib.Path) -> None:
    records = _records()
    target = tmp_path / "out" / "nested" / "accounts.csv"  # parents do not exist yet
    with open_writer(target, "csv", select_columns(SOQL)) as writer:
        # Records arrive page by page.
        assert writer.write_records(iter(records[:3])) == 3
        assert writer.write_records(iter(records[3:])) == len(records) - 3
    assert writer.rows == len(records)
    assert writer.path == str(target)

    raw = target.read_bytes()
    assert b"\r\n" not in raw.replace(b"crlf\r\ninside", b"")  # \n line endings
    with target.open(newline="", encoding="utf-8") as f:
        parsed = list(csv.reader(f))
    assert parsed[0] == COLUMNS
    assert parsed[1:] == [[_expected_cell(v) for v in row] for row in _expected_rows(records)]
    # Same values as the JSON records, via the reader the load path uses (empty -> None).
    back = list(read_records(target))
    assert [r["Name"] for r in back] == [r["Name"] or None for r in records]
    assert back[-1]["Owner.Name"] is None and back[0]["Owner.Name"] == 'Ann, "Boss"'
    assert back[0]["IsActive__c"] == "true" and back[1]["IsActive__c"] == "false"
    assert back[1]["AnnualRevenue"] == "1235.5" and back[0]["NumberOfEmployees"] == "0"


def test_jsonl_round_trip_keeps_json_types(tmp_path: pathlib.Path) -> None:
    records = _records()
    target = tmp_path / "accounts.jsonl"
    with open_writer(str(target), "jsonl", COLUMNS) as writer:
        writer.write_records(records)
    lines = target.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(records)
    assert "Zoë — 東京 🚀" in lines[4]  # ensure_ascii=False
    parsed = [json.loads(line) for line in lines]
    for got, row in zip(parsed, _expected_rows(records), strict=True):
        assert list(got) == COLUMNS
        assert list(got.values()) == row
    assert list(read_records(target)) == parsed


def test_columns_inferred_from_first_record_when_unknown(tmp_path: pathlib.Path) -> None:
    records = _records()
    with open_writer(tmp_path / "a.csv", "csv", select_columns("SELECT FIELDS(ALL) FROM A")) as w:
        w.write_records(records)
        assert w.columns == [
            "Id",
            "Name",
            "Owner.Name",
            "IsActive__c",
            "NumberOfEmployees",
            "AnnualRevenue",
            "BillingAddress",
        ]
    header = (tmp_path / "a.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header == "Id,Name,Owner.Name,IsActive__c,NumberOfEmployees,AnnualRevenue,BillingAddress"


def test_write_rows_and_empty_results(tmp_path: pathlib.Path) -> None:
    with open_writer(tmp_path / "rows.csv", "csv", ["a", "b"]) as w:
        assert w.write_rows([[1, True], [None, "x,y"]]) == 2
    assert (tmp_path / "rows.csv").read_text() == 'a,b\n1,true\n,"x,y"\n'
    with open_writer(tmp_path / "empty.csv", "csv", ["Id"]) as w:
        pass
    assert (tmp_path / "empty.csv").read_text() == "Id\n"
    with open_writer(tmp_path / "count.jsonl", "jsonl", select_columns("SELECT COUNT() FROM A")):
        pass
    assert (tmp_path / "count.jsonl").read_text() == ""
    with pytest.raises(ValueError, match="format"):
        open_writer(tmp_path / "x.xml", "xml", ["Id"])


# --- Parquet -----------------------------------------------------------------------------------


def test_parquet_typed_schema_values_and_row_groups(tmp_path: pathlib.Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    import datetime as dt

    columns = ["Id", "Owner.Name", "Employees", "Revenue", "Active", "Since", "Stamp", "Geo"]
    types = {
        "id": "id",  # keys match ignoring case
        "Owner.Name": "string",
        "Employees": "int",
        "Revenue": "currency",
        "Active": "boolean",
        "Since": "date",
        "Stamp": "datetime",
    }

    def rows() -> Iterator[dict[str, Any]]:
        for i in range(25):
            yield {
                "attributes": {"type": "Account"},
                "Id": f"001{i}",
                "Owner": None if i == 3 else {"attributes": {}, "Name": f"Owner {i}"},
                "Employees": None if i == 4 else i,
                "Revenue": float(i) + 0.25,
                "Active": i % 2 == 0,
                "Since": "2026-01-31",
                "Stamp": "2026-01-31T12:00:00.000+0000",
                "Geo": {"latitude": 1.5, "longitude": 2.5},
            }

    target = tmp_path / "a.parquet"
    with open_writer(target, "parquet", columns, field_types=types, row_group_size=10) as w:
        assert w.write_records(rows()) == 25
    meta = pq.ParquetFile(target).metadata
    assert meta.num_row_groups == 3 and meta.num_rows == 25
    table = pq.read_table(target)
    assert table.schema.names == columns
    assert [str(t) for t in table.schema.types] == [
        "string",
        "string",
        "int64",
        "double",
        "bool",
        "date32[day]",
        "timestamp[ms, tz=UTC]",
        "string",
    ]
    got = table.to_pylist()
    assert got[3]["Owner.Name"] is None and got[5]["Owner.Name"] == "Owner 5"
    assert got[4]["Employees"] is None and got[7]["Employees"] == 7
    assert got[2]["Revenue"] == 2.25 and got[1]["Active"] is False
    assert got[0]["Since"] == dt.date(2026, 1, 31)
    assert got[0]["Stamp"] == dt.datetime(2026, 1, 31, 12, 0, tzinfo=dt.timezone.utc)
    assert json.loads(got[0]["Geo"]) == {"latitude": 1.5, "longitude": 2.5}
    assert pa is not None


def test_parquet_from_bulk_csv_strings(tmp_path: pathlib.Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    chunk = b'"Id","Amount__c","Done__c","Owner.Name"\n"1","12","true",""\n"2","","false","Bo"\n'
    types = {"Amount__c": "double", "Done__c": "boolean"}
    target = tmp_path / "bulk.parquet"
    with open_writer(target, "parquet", ["Id", "Amount__c", "Done__c", "Owner.Name"], types) as w:
        w.write_records(csv_chunks_to_records([chunk]))
    assert pq.read_table(target).to_pylist() == [
        {"Id": "1", "Amount__c": 12.0, "Done__c": True, "Owner.Name": None},
        {"Id": "2", "Amount__c": None, "Done__c": False, "Owner.Name": "Bo"},
    ]


def test_parquet_without_types_guesses_from_json(tmp_path: pathlib.Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    target = tmp_path / "g.parquet"
    with open_writer(target, "parquet", ["a", "b", "c", "d"]) as w:
        w.write_rows([[1, 1.5, True, "x"], [None, 2, False, None]])
    schema = pq.read_table(target).schema
    assert [str(t) for t in schema.types] == ["int64", "double", "bool", "string"]


def test_parquet_missing_pyarrow_names_the_extra(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [m for m in sys.modules if m == "pyarrow" or m.startswith("pyarrow.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # makes `import pyarrow` fail
    with pytest.raises(ImportError) as info:
        open_writer(tmp_path / "x.parquet", "parquet", ["Id"])
    assert PARQUET_INSTALL_HINT in str(info.value)
    assert "pip install 'airflow-provider-sfjwt[parquet]'" in str(info.value)
    assert not (tmp_path / "x.parquet").exists()


# --- atomic output -----------------------------------------------------------------------------


class Boom(Exception):
    pass


def _failing_records() -> Iterator[dict[str, Any]]:
    for i in range(5000):
        yield _record(i, "n", "o", True)
    raise Boom("connection lost mid-extract")


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_failure_mid_write_leaves_no_file(tmp_path: pathlib.Path, fmt: str) -> None:
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    target = tmp_path / f"out.{fmt}"
    with pytest.raises(Boom), open_writer(target, fmt, COLUMNS, row_group_size=1000) as w:
        w.write_records(_failing_records())
    assert list(tmp_path.iterdir()) == []  # neither the final name nor a .part file


def test_failure_keeps_existing_file_and_success_replaces_it(tmp_path: pathlib.Path) -> None:
    target = tmp_path / "daily.csv"
    target.write_text("yesterday's good file\n")
    with pytest.raises(Boom), open_writer(target, "csv", COLUMNS) as w:
        w.write_records(_failing_records())
    assert target.read_text() == "yesterday's good file\n"
    assert os.listdir(tmp_path) == ["daily.csv"]

    with open_writer(target, "csv", ["Id"]) as w:
        w.write_records([{"Id": "1"}])
        # While writing, the old file is still what readers see; the new one is hidden.
        assert target.read_text() == "yesterday's good file\n"
        hidden = [p.name for p in tmp_path.iterdir() if p.name != "daily.csv"]
        assert len(hidden) == 1 and hidden[0].startswith(".daily.csv.part-")
    assert target.read_text() == "Id\n1\n"
    assert os.listdir(tmp_path) == ["daily.csv"]


def test_atomic_output_binary_and_kill_signal(tmp_path: pathlib.Path) -> None:
    target = tmp_path / "dir" / "result.bin"
    with atomic_output(target) as f:
        f.write(b"abc")
    assert target.read_bytes() == b"abc"
    with pytest.raises(KeyboardInterrupt), atomic_output(target) as f:
        f.write(b"partial")
        raise KeyboardInterrupt
    assert target.read_bytes() == b"abc"
    assert os.listdir(target.parent) == ["result.bin"]


def test_url_string_other_than_file_is_refused(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValueError, match="ObjectStoragePath"):
        open_writer("s3://bucket/key.csv", "csv", ["Id"])
    url = (tmp_path / "u.csv").as_uri()
    with open_writer(url, "csv", ["Id"]) as w:
        w.write_records([{"Id": "1"}])
    assert (tmp_path / "u.csv").read_text() == "Id\n1\n"


# --- duck-typed destinations -------------------------------------------------------------------


class RemotePath:
    """A minimal pathlib-like remote path: only what ObjectStoragePath offers, nothing local."""

    def __init__(self, root: pathlib.Path, key: str) -> None:
        self._root = root
        self.key = key.strip("/")

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    @property
    def parent(self) -> RemotePath:
        return RemotePath(self._root, self.key.rsplit("/", 1)[0] if "/" in self.key else "")

    def joinpath(self, name: str) -> RemotePath:
        return RemotePath(self._root, f"{self.key}/{name}" if self.key else name)

    def __truediv__(self, name: str) -> RemotePath:
        return self.joinpath(name)

    def _local(self) -> pathlib.Path:
        return self._root / self.key.replace("/", "__")  # flat "bucket", no directories

    def open(self, mode: str = "rb") -> Any:
        assert mode in ("rb", "wb"), mode  # binary only, like many object stores
        return self._local().open(mode)

    def rename(self, target: RemotePath) -> RemotePath:
        self._local().replace(target._local())
        return target

    def unlink(self) -> None:
        self._local().unlink()

    def __str__(self) -> str:
        return f"mem://bucket/{self.key}"


def test_duck_typed_destination(tmp_path: pathlib.Path) -> None:
    target = RemotePath(tmp_path, "exports/2026/accounts.csv")
    with open_writer(target, "csv", COLUMNS) as w:
        w.write_records(_records())
    assert w.path == "mem://bucket/exports/2026/accounts.csv"
    assert sorted(os.listdir(tmp_path)) == ["exports__2026__accounts.csv"]
    assert len(list(read_records(target, "csv"))) == len(_records())

    failing = RemotePath(tmp_path, "exports/2026/failed.jsonl")
    with pytest.raises(Boom), open_writer(failing, "jsonl", COLUMNS) as w:
        w.write_records(_failing_records())
    assert sorted(os.listdir(tmp_path)) == ["exports__2026__accounts.csv"]


def test_airflow_object_storage_path(tmp_path: pathlib.Path) -> None:
    """Airflow's ObjectStoragePath (file://) as a destination; tests may import Airflow."""
    sdk = pytest.importorskip("airflow.sdk")
    target = sdk.ObjectStoragePath(f"file://{tmp_path}/osp/sub/accounts.jsonl")
    with open_writer(target, "jsonl", COLUMNS) as w:
        w.write_records(_records())
    assert w.path == str(target)  # file:///... (file:/... with universal-pathlib < 0.3)
    assert w.path.startswith("file:/") and w.path.endswith("/osp/sub/accounts.jsonl")
    assert os.listdir(tmp_path / "osp" / "sub") == ["accounts.jsonl"]
    assert len(list(read_records(target))) == len(_records())


# --- Bulk CSV passthrough and conversion -------------------------------------------------------

BULK_HEADER = b'"Id","Name","Owner.Name"\n'
BULK_CHUNKS = [
    BULK_HEADER + b'"1","plain",""\n"2","multi\nline ""quoted""\nname","Bo"\n',
    BULK_HEADER + b'"3","a,b",""\n',
    BULK_HEADER,  # a chunk with no records
    BULK_HEADER + b'"4","\xc3\xa9t\xc3\xa9","Zo\xc3\xab"\n"5","","x"\n"6","last","y"\n',
]
BULK_EXPECTED = [
    {"Id": "1", "Name": "plain", "Owner.Name": None},
    {"Id": "2", "Name": 'multi\nline "quoted"\nname', "Owner.Name": "Bo"},
    {"Id": "3", "Name": "a,b", "Owner.Name": None},
    {"Id": "4", "Name": "été", "Owner.Name": "Zoë"},
    {"Id": "5", "Name": None, "Owner.Name": "x"},
    {"Id": "6", "Name": "last", "Owner.Name": "y"},
]


def _join(target: pathlib.Path, bodies: list[bytes], block: int = 0) -> CsvJoiner:
    """Join CSV bodies into ``target`` the way Bulk results are saved (optionally in small blocks)."""
    joiner = CsvJoiner()
    with atomic_output(target, "wb") as out:
        for n, body in enumerate(bodies):
            step = block or max(1, len(body))
            blocks = [body[i : i + step] for i in range(0, len(body), step)]
            for piece in joiner.body(blocks, f"body {n}"):
                out.write(piece)
    return joiner


def test_passthrough_concatenates_chunks_with_one_header(tmp_path: pathlib.Path) -> None:
    target = tmp_path / "bulk.csv"
    joiner = _join(target, BULK_CHUNKS)
    assert joiner.columns == ["Id", "Name", "Owner.Name"]
    assert [len(list(csv_chunks_to_records([c]))) for c in BULK_CHUNKS] == [2, 1, 0, 3]
    data = target.read_bytes()
    assert data.count(BULK_HEADER) == 1 and data.startswith(BULK_HEADER)
    assert data == BULK_HEADER + b"".join(c[len(BULK_HEADER) :] for c in BULK_CHUNKS)
    assert list(read_records(target)) == BULK_EXPECTED
    # Blocks cut anywhere (inside the header, a quoted newline, a UTF-8 character) join alike.
    for size in (1, 5, 64):
        _join(tmp_path / f"blocks-{size}.csv", BULK_CHUNKS, size)
        assert (tmp_path / f"blocks-{size}.csv").read_bytes() == data, size

    # A body without a final newline gets one, so the next body's first record stays apart.
    other = tmp_path / "plain.csv"
    _join(other, [b"Id,Name\n1,a\n2,b\n", b"Id,Name\n3,c", b"Id,Name\n4,d\n"])
    assert other.read_bytes() == b"Id,Name\n1,a\n2,b\n3,c\n4,d\n"
    assert len(list(read_records(other))) == 4
    header_only = tmp_path / "header-only.csv"
    assert _join(header_only, [b"Id", b"Id", b""]).columns == ["Id"]
    assert header_only.read_bytes() == b"Id\n" and list(read_records(header_only)) == []


def test_passthrough_refuses_mismatched_or_cut_chunks(tmp_path: pathlib.Path) -> None:
    with pytest.raises(SalesforceError, match="header"):
        _join(tmp_path / "a.csv", [b"Id,Name\n1,a\n", b"Id,Email\n2,b\n"])
    with pytest.raises(SalesforceError, match="header"):
        _join(tmp_path / "c.csv", [b"Id,Name\n1,a\n", b"Id,Email"])
    with pytest.raises(SalesforceError, match="quoted"):
        _join(tmp_path / "b.csv", [b'Id,Name\n1,"unterminated\n'])
    assert list(tmp_path.iterdir()) == []


def test_csv_chunks_to_records_pages_and_arbitrary_blocks() -> None:
    assert list(csv_chunks_to_records(BULK_CHUNKS)) == BULK_EXPECTED
    # Byte blocks cut anywhere (mid quoted newline, mid UTF-8 character) give the same records.
    whole = BULK_HEADER + b"".join(c[len(BULK_HEADER) :] for c in BULK_CHUNKS)
    for size in (1, 3, 7, 16, 64):
        blocks = [whole[i : i + size] for i in range(0, len(whole), size)]
        assert list(csv_chunks_to_records(blocks)) == BULK_EXPECTED, size
    # A trailing partial line (no final newline) is still a record.
    assert list(csv_chunks_to_records([b"A,B\n1,2\n3,4"])) == [
        {"A": "1", "B": "2"},
        {"A": "3", "B": "4"},
    ]
    typed = csv_chunks_to_records(
        [b"N,X,F,D\n1,1.5,true,2026-01-01\n,,false,\n"],
        {"n": "int", "X": "double", "F": "boolean", "D": "date"},
    )
    assert list(typed) == [
        {"N": 1, "X": 1.5, "F": True, "D": "2026-01-01"},
        {"N": None, "X": None, "F": False, "D": None},
    ]
    assert list(csv_chunks_to_records([])) == []


def test_bulk_chunks_to_jsonl_while_streaming(tmp_path: pathlib.Path) -> None:
    target = tmp_path / "bulk.jsonl"
    with open_writer(target, "jsonl", ["Id", "Name", "Owner.Name"]) as w:
        w.write_records(csv_chunks_to_records(iter(BULK_CHUNKS)))
    assert list(read_records(target)) == BULK_EXPECTED


# --- split_csv for ingest ----------------------------------------------------------------------


def _ingest_file(path: pathlib.Path, n: int, crlf: bool = False, bom: bool = False) -> list[dict]:
    records = [
        {
            "Name": f"Account {i}" + ("\nsecond line, with comma" if i % 7 == 0 else ""),
            "Note__c": f'say "{i}"' if i % 5 == 0 else "",
            "Ext__c": f"E-{i:06d}",
        }
        for i in range(n)
    ]
    buf = io.StringIO(newline="")
    writer = csv.DictWriter(
        buf, ["Name", "Note__c", "Ext__c"], lineterminator="\r\n" if crlf else "\n"
    )
    writer.writeheader()
    writer.writerows(records)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + buf.getvalue().encode("utf-8"))
    return [{k: (v or None) for k, v in r.items()} for r in records]


def test_split_csv_parts_at_record_boundaries(tmp_path: pathlib.Path) -> None:
    source = tmp_path / "load.csv"
    expected = _ingest_file(source, 2000, bom=True)
    max_bytes = 4096
    header = b"Name,Note__c,Ext__c\n"
    seen: list[dict] = []
    parts = 0
    for part in split_csv(source, max_bytes=max_bytes):
        data = pathlib.Path(part.path).read_bytes()
        assert data.startswith(header) and data.count(header) == 1  # BOM removed
        assert part.size == len(data) <= max_bytes
        assert part.line_ending == "LF" and part.index == parts
        assert b"".join(part.iter_bytes(block=100)) == data
        with part.open() as f:
            assert f.read() == data
        rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))
        assert len(rows) == part.rows  # every part parses on its own: cut between records
        seen.extend({k: (v or None) for k, v in r.items()} for r in rows)
        previous = part.path
        parts += 1
    assert parts > 5
    assert seen == expected
    assert not os.path.exists(previous)  # temp parts are removed as the iteration moves on


def test_split_csv_crlf_single_part_and_oversized_record(tmp_path: pathlib.Path) -> None:
    source = tmp_path / "crlf.csv"
    expected = _ingest_file(source, 50, crlf=True)
    (part,) = list(split_csv(source))
    assert part.rows == 50 and part.line_ending == "CRLF"
    assert pathlib.Path(part.path).exists() is False  # cleaned up once the iterator finished
    # Content is compared on a fresh split, while the part exists.
    for part in split_csv(source):
        text = pathlib.Path(part.path).read_bytes().decode()
        assert [dict(r) for r in csv.DictReader(io.StringIO(text, newline=""))] == [
            {k: (v or "") for k, v in r.items()} for r in expected
        ]
    big = tmp_path / "big.csv"
    big.write_text("Name\n" + "x" * 200 + "\n")
    with pytest.raises(ValueError, match="max_bytes"):
        list(split_csv(big, max_bytes=100))
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert list(split_csv(empty)) == []


def test_split_csv_from_duck_typed_source(tmp_path: pathlib.Path) -> None:
    local = tmp_path / "src.csv"
    _ingest_file(local, 300)
    remote = RemotePath(tmp_path, "src.csv")
    parts = [(p.rows, p.size) for p in split_csv(remote, max_bytes=2048)]
    assert sum(r for r, _ in parts) == 300 and all(s <= 2048 for _, s in parts)


# --- bounded memory ----------------------------------------------------------------------------


def _many(n: int) -> Iterator[dict[str, Any]]:
    """REST-shaped records made lazily; shared sub-dicts keep the generator itself cheap."""
    attributes = {"type": "Account", "url": "/services/data/v66.0/sobjects/Account/001"}
    owner = {"attributes": {"type": "User"}, "Name": 'Owner, "Big"'}
    address = {"city": "Paris", "country": "FR"}
    for i in range(n):
        yield {
            "attributes": attributes,
            "Id": "001000000000000AAA",
            "Name": 'Name\nwith, "quotes" é',
            "Owner": owner if i % 5 else None,
            "IsActive__c": i % 2 == 0,
            "NumberOfEmployees": i,
            "AnnualRevenue": 1234.5,
            "BillingAddress": address if i % 7 == 0 else None,
        }


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_memory_stays_flat(tmp_path: pathlib.Path, fmt: str) -> None:
    """Records through a writer from a generator: traced peak stays at a few MB.

    A writer that kept rows would need well over 100 MB for this many; the bound is about
    behaviour (nothing accumulates), not speed.
    """
    n = 300_000 if fmt == "csv" else 50_000  # JSON encoding is slow under tracemalloc
    tracemalloc.start()
    try:
        with open_writer(tmp_path / f"big.{fmt}", fmt, COLUMNS) as w:
            w.write_records(_many(n))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert w.rows == n
    assert peak < 4 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"
    assert (tmp_path / f"big.{fmt}").stat().st_size > 40 * n  # really written


def test_core_module_imports_neither_airflow_nor_pyarrow() -> None:
    """pyarrow is an optional extra and Airflow stays out of the core: both load lazily."""
    import subprocess

    code = (
        "import sys\n"
        "import airflow_provider_sfjwt.salesforce.writers, airflow_provider_sfjwt.salesforce.parquet\n"
        "import airflow_provider_sfjwt.salesforce.readers, airflow_provider_sfjwt.salesforce.bulk\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'airflow', 'pyarrow', 'pandas'}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_read_records_json_array_and_jsonl_edge_cases(tmp_path: pathlib.Path) -> None:
    array = tmp_path / "small.json"
    array.write_text(' \n[{"Name": "a"}, {"Name": null}]\n', encoding="utf-8")
    assert list(read_records(array)) == [{"Name": "a"}, {"Name": None}]
    lines = tmp_path / "in.ndjson"
    lines.write_bytes(b'\xef\xbb\xbf\n{"A": 1}\n\n{"A": "\xc3\xa9"}')
    assert list(read_records(lines)) == [{"A": 1}, {"A": "é"}]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"A": 1}\nnot json\n')
    with pytest.raises(ValueError, match="line 2"):
        list(read_records(bad))
    with pytest.raises(ValueError, match="suffix"):
        read_records(tmp_path / "data.xlsx")

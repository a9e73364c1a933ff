"""What another user of the machine, or a link or FIFO planted on the way, can do to our files.

The token store and every writer of key material are attacked the way a local user would: a
directory above the token store that someone else owns or may write, a directory of someone
else's, a symlink or a FIFO planted where a token or key file goes, a lock held forever. The
multi-user cases run as a real second local user (``other_user``, created with ``useradd``);
they are skipped, saying so, when the suite does not run as root.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from airflow_provider_sfjwt.cli import main
from airflow_provider_sfjwt.salesforce import token_store
from airflow_provider_sfjwt.salesforce.auth import TokenCache
from airflow_provider_sfjwt.salesforce.client import SalesforceClient
from airflow_provider_sfjwt.salesforce.settings import parse_connection
from airflow_provider_sfjwt.salesforce.token_store import DIR_ENV, LOCK_TIMEOUT, TokenStore
from airflow_provider_sfjwt.testing.cli import build_parser, start_from_args

from .conftest import as_user

PLANT_LINK = "import os, sys; os.symlink(sys.argv[1], sys.argv[2])"


@pytest.fixture
def shared_dir():
    """A directory under /tmp that another user can enter (pytest's own tmp is root-only)."""
    path = Path(tempfile.mkdtemp(prefix="sfjwt-shared-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def settings_of(handle):
    conn = handle.conn
    return parse_connection(
        host=conn["host"], login=conn["login"], password=None, extra=conn["extra"]
    )


def use_store(monkeypatch, directory: Path) -> None:
    monkeypatch.setenv(DIR_ENV, str(directory))


def exchange(emu) -> None:
    """One "task": a token through a cache of its own and the machine's token store."""
    SalesforceClient(settings_of(emu), cache=TokenCache(shared=True)).auth.token()


def stored_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("*.token"))


# --- the directories above the store -----------------------------------------------------------


def test_a_parent_another_user_owns_is_refused_and_cannot_steer_deletes(
    salesforce_emulator, other_user, shared_dir, monkeypatch, caplog
):
    parent = shared_dir / "theirs"
    parent.mkdir()
    os.chown(parent, *other_user)
    store = parent / "tokens"
    use_store(monkeypatch, store)
    with caplog.at_level(logging.WARNING):
        exchange(salesforce_emulator)
        exchange(salesforce_emulator)
    assert salesforce_emulator.emulator.stats.token_exchanges == 2  # no sharing, but work goes on
    assert f"{parent} belongs to user id {other_user[0]}" in caplog.text
    assert caplog.text.count("not shared between tasks") == 1  # one warning per process
    assert not store.exists()  # nothing created under their directory
    # They point "tokens" at a directory of ours: clearing the cache must not delete there.
    ours = shared_dir / "ours"
    ours.mkdir(mode=0o700)
    (ours / "precious.token").write_text("keep me")
    as_user(other_user, PLANT_LINK, str(ours), str(store))
    TokenStore(store).clear()
    assert (ours / "precious.token").read_text() == "keep me"


def test_a_store_directory_of_another_user_is_named_as_such(
    salesforce_emulator, other_user, shared_dir, monkeypatch, caplog
):
    store = shared_dir / "tokens"
    store.mkdir(mode=0o700)
    os.chown(store, *other_user)
    use_store(monkeypatch, store)
    with caplog.at_level(logging.WARNING):
        exchange(salesforce_emulator)
    assert f"belongs to user id {other_user[0]}, not to this user" in caplog.text
    assert "open to other users" not in caplog.text and "chmod" not in caplog.text


def test_a_parent_others_may_write_is_refused_unless_sticky(
    salesforce_emulator, tmp_path, monkeypatch, caplog
):
    parent = tmp_path / "open"
    parent.mkdir()
    parent.chmod(0o777)
    use_store(monkeypatch, parent / "tokens")
    with caplog.at_level(logging.WARNING):
        exchange(salesforce_emulator)
    assert f"{parent} is writable by other users (mode 0777)" in caplog.text
    assert not (parent / "tokens").exists()
    # Sticky, like /tmp: nobody else may rename what is ours in it, so it is fine.
    parent.chmod(0o1777)
    exchange(salesforce_emulator)
    exchange(salesforce_emulator)
    assert len(stored_files(parent / "tokens")) == 1
    assert salesforce_emulator.emulator.stats.token_exchanges == 2  # the third reused the second's


def test_a_link_we_made_in_a_safe_directory_is_followed(salesforce_emulator, tmp_path, monkeypatch):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to("real")
    use_store(monkeypatch, tmp_path / "link")
    exchange(salesforce_emulator)
    exchange(salesforce_emulator)
    assert salesforce_emulator.emulator.stats.token_exchanges == 1
    assert len(stored_files(real)) == 1


def test_a_store_open_to_others_gets_the_chmod_hint(
    salesforce_emulator, tmp_path, monkeypatch, caplog
):
    store = tmp_path / "tokens"
    store.mkdir(mode=0o700)
    store.chmod(0o755)
    use_store(monkeypatch, store)
    with caplog.at_level(logging.WARNING):
        exchange(salesforce_emulator)
    assert f"is open to other users (mode 0755); run `chmod 700 {store}`" in caplog.text


# --- files planted in the store ----------------------------------------------------------------


def test_a_link_at_the_token_name_is_never_read_nor_written_through(
    salesforce_emulator, tmp_path, monkeypatch
):
    store = tmp_path / "tokens"
    store.mkdir(mode=0o700)
    use_store(monkeypatch, store)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    name = store / token_store._file_name(settings_of(salesforce_emulator))
    name.symlink_to(victim)
    exchange(salesforce_emulator)
    assert victim.read_text() == "precious"
    assert stat.S_ISREG(name.lstat().st_mode)  # the link was replaced by our own file
    exchange(salesforce_emulator)
    assert salesforce_emulator.emulator.stats.token_exchanges == 1


@pytest.mark.timeout(60)
def test_a_fifo_at_the_token_name_does_not_hang(salesforce_emulator, tmp_path, monkeypatch):
    store = tmp_path / "tokens"
    store.mkdir(mode=0o700)
    use_store(monkeypatch, store)
    name = store / token_store._file_name(settings_of(salesforce_emulator))
    os.mkfifo(name, 0o600)
    exchange(salesforce_emulator)  # a blocking open would wait here forever for a writer
    assert stat.S_ISREG(name.lstat().st_mode)


@pytest.mark.timeout(120)
def test_a_lock_held_forever_costs_a_private_exchange_not_a_hang(
    salesforce_emulator, tmp_path, monkeypatch, caplog
):
    store = tmp_path / "tokens"
    store.mkdir(mode=0o700)
    use_store(monkeypatch, store)
    settings = settings_of(salesforce_emulator)
    lock = store / (token_store._file_name(settings)[: -len(".token")] + ".token.lock")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('held', flush=True)\n"
            "time.sleep(600)\n",
            str(lock),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        with caplog.at_level(logging.WARNING):
            exchange(salesforce_emulator)
        waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    assert waited >= LOCK_TIMEOUT * 0.9, waited
    assert salesforce_emulator.emulator.stats.token_exchanges == 1
    assert "held the Salesforce token lock" in caplog.text and str(lock) in caplog.text
    assert stored_files(store) == []  # the private exchange does not write the store


def test_a_stuck_lock_is_reported_once_per_process(tmp_path, salesforce_emulator, caplog):
    import fcntl

    store_dir = tmp_path / "tokens"
    store_dir.mkdir(mode=0o700)
    settings = settings_of(salesforce_emulator)
    store = TokenStore(store_dir, lock_timeout=0.1)
    fd = os.open(
        store_dir / (token_store._file_name(settings)[:-6] + ".token.lock"), os.O_RDWR | os.O_CREAT
    )
    with caplog.at_level(logging.WARNING):
        fcntl.flock(fd, fcntl.LOCK_EX)  # flock is per open file: the store's own open waits
        try:
            for _ in range(3):
                with store.session(settings) as shared:
                    assert shared is None
        finally:
            os.close(fd)
    assert caplog.text.count("held the Salesforce token lock") == 1
    with store.session(settings) as shared:
        assert shared is not None  # released: the store works again


# --- writers of key material -------------------------------------------------------------------


def test_emulator_key_dir_replaces_a_planted_link_instead_of_writing_through(
    other_user, shared_dir
):
    key_dir = shared_dir / "keys"  # a directory the team shares (group-writable, not sticky)
    key_dir.mkdir()
    key_dir.chmod(0o777)
    loot_dir = shared_dir / "loot"
    loot_dir.mkdir()
    os.chown(loot_dir, *other_user)
    loot = loot_dir / "key.pem"
    as_user(other_user, "import sys; open(sys.argv[1], 'w').close()", str(loot))
    as_user(other_user, PLANT_LINK, str(loot), str(key_dir / "emulator_private_key.pem"))
    args = build_parser().parse_args(
        ["--key-dir", str(key_dir), "--port", "0", "--accounts", "0", "--contacts", "0"]
    )
    emu, _ = start_from_args(args)
    emu.stop()
    assert loot.read_text() == ""  # nothing written to the file the link pointed at
    key = key_dir / "emulator_private_key.pem"
    info = key.lstat()
    assert stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600
    assert info.st_uid == os.getuid() and "PRIVATE KEY" in key.read_text()


def test_keygen_never_writes_through_a_planted_link(tmp_path, capsys):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    key, cert = tmp_path / "sf.key", tmp_path / "sf.crt"
    key.symlink_to(victim)
    assert main(["keygen", "--key", str(key), "--cert", str(cert)]) == 2
    assert "already exists" in capsys.readouterr().err  # a link counts as an existing file
    assert main(["keygen", "--key", str(key), "--cert", str(cert), "--force"]) == 0
    assert victim.read_text() == "precious"
    assert stat.S_ISREG(key.lstat().st_mode) and stat.S_IMODE(key.stat().st_mode) == 0o600


def test_an_oversized_token_file_is_not_read(salesforce_emulator, tmp_path, monkeypatch):
    store = tmp_path / "tokens"
    store.mkdir(mode=0o700)
    use_store(monkeypatch, store)
    name = store / token_store._file_name(settings_of(salesforce_emulator))
    name.write_bytes(b"\0" * (token_store.MAX_FILE_BYTES + 1))
    exchange(salesforce_emulator)  # a miss: exchanged, and a real token file replaces it
    assert name.stat().st_size < 4096
    exchange(salesforce_emulator)
    assert salesforce_emulator.emulator.stats.token_exchanges == 1


def test_an_output_that_is_a_hard_link_to_the_input_is_refused(salesforce_emulator, tmp_path):
    from airflow_provider_sfjwt.salesforce.load import load_file

    source = tmp_path / "in.csv"
    source.write_text("LastName\nA\nB\n")
    report = tmp_path / "report.csv"
    os.link(source, report)
    client = SalesforceClient(settings_of(salesforce_emulator), cache=TokenCache())
    with pytest.raises(ValueError, match="is the input file"):
        load_file(client, "insert", source, sobject="Contact", failed_records_path=report)
    assert source.read_text() == "LastName\nA\nB\n"
    assert salesforce_emulator.emulator.stats.token_requests == 0


# --- the mode of extracts ----------------------------------------------------------------------


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_extracts_get_file_mode_and_otherwise_the_umask(emu, tmp_path, umask_022):
    from airflow_provider_sfjwt.operators import (
        SalesforceBulkQueryOperator,
        SalesforceQueryOperator,
    )

    from .reliability.columns import run_task

    emu.generate_accounts(5)
    soql = "SELECT Id, Name FROM Account"
    plain = tmp_path / "plain.csv"
    run_task(SalesforceQueryOperator(task_id="q", soql=soql, output_path=str(plain)))
    assert stat.S_IMODE(plain.stat().st_mode) == 0o644  # 0o666 minus the umask, documented
    private = tmp_path / "private.jsonl"
    run_task(
        SalesforceQueryOperator(
            task_id="p", soql=soql, output_path=str(private), format="jsonl", file_mode=0o600
        )
    )
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    for deferrable in (False, True):
        bulk = tmp_path / f"bulk-{deferrable}.csv"
        op = SalesforceBulkQueryOperator(
            task_id="b", soql=soql, output_path=str(bulk), file_mode=0o640, poll_interval=0.01,
            deferrable=deferrable,
        )  # fmt: skip
        assert run_task(op)["rows"] == 5
        assert stat.S_IMODE(bulk.stat().st_mode) == 0o640


def test_file_mode_is_refused_where_it_cannot_apply(emu, tmp_path):
    from airflow_provider_sfjwt.compat import ObjectStoragePath
    from airflow_provider_sfjwt.operators import SalesforceQueryOperator
    from airflow_provider_sfjwt.salesforce.storage import Destination

    for bad in (0o1777, "600", -1, True):
        with pytest.raises(ValueError, match="file_mode must be a permission mode"):
            SalesforceQueryOperator(task_id="q", soql="SELECT Id FROM Account", output_path="x.csv",
                                    file_mode=bad)  # fmt: skip
    with pytest.raises(ValueError, match="file_mode applies to local files"):
        Destination(ObjectStoragePath(f"file://{tmp_path}/x.csv"), 0o600)
    assert emu.stats.token_requests == 0

"""`make demo`: the main job end to end against the bundled emulator, and what it did.

1. makes a throwaway RSA key and certificate (never reused, never committed),
2. starts the Salesforce emulator with a few thousand Account rows and registers the certificate
   with a Connected App there, as a platform engineer would in a real org,
3. points the default connection at it (key by reference, as in production),
4. runs the example extract DAG with `airflow dags test` in a fresh AIRFLOW_HOME,
5. prints rows written, the output files and their first lines, and the emulator's counters.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from airflow_provider_sfjwt.compat import DAG_TEST_REGISTERS_THE_DAG
from airflow_provider_sfjwt.salesforce import keys
from airflow_provider_sfjwt.salesforce.safe_write import write_file
from airflow_provider_sfjwt.testing import SalesforceEmulator

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / ".demo"
DAG_ID = os.environ.get("SFJWT_DEMO_DAG", "salesforce_extract_accounts")
ACCOUNTS = 5000
CONSUMER_KEY = "3MVG9DEMOCONSUMERKEY.emulator"
USERNAME = "integration.user@demo.example.com"


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def make_keys(key_dir: Path) -> tuple[Path, str]:
    key_dir.mkdir(parents=True, exist_ok=True)
    key = keys.generate_private_key(2048)
    cert = keys.self_signed_certificate(key, "sfjwt-demo", days=30)
    key_path = key_dir / "demo.key"
    write_file(key_path, keys.private_key_to_pem(key), 0o600, replace=True)
    info = keys.certificate_info(cert)
    print(f"    key         {key_path} (RSA 2048, PKCS#8, mode 0600)")
    print(
        f"    certificate {info.subject}, SHA-256 {info.fingerprint_sha256[:23]}..., "
        f"expires {info.not_after:%Y-%m-%d}"
    )
    return key_path, keys.certificate_to_pem(cert).decode()


def airflow(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "airflow", *args], env=env, cwd=REPO, capture_output=True, text=True
    )


def main() -> int:
    started = time.monotonic()
    shutil.rmtree(WORK, ignore_errors=True)
    output_dir = WORK / "output"
    step("Generating a throwaway key and certificate")
    key_path, cert_pem = make_keys(WORK / "keys")

    step(f"Starting the Salesforce emulator with {ACCOUNTS:,} Accounts")
    with SalesforceEmulator() as emu:
        emu.add_app(consumer_key=CONSUMER_KEY, certificate_pem=cert_pem, usernames=[USERNAME])
        emu.generate_accounts(ACCOUNTS)
        print(f"    {emu.url}  (Connected App {CONSUMER_KEY}, user {USERNAME})")

        connection = {
            "conn_type": "salesforce_jwt",
            "host": emu.url,
            "login": USERNAME,
            "extra": {"consumer_key": CONSUMER_KEY, "private_key_ref": f"file:{key_path}"},
        }
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update(
            AIRFLOW_HOME=str(WORK / "airflow"),
            AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "example_dags"),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW_CONN_SALESFORCE_JWT_DEFAULT=json.dumps(connection),
            SFJWT_OUTPUT_DIR=str(output_dir),
            SFJWT_TOKEN_CACHE_DIR=str(WORK / "tokens"),  # the demo's token store, not ~/.cache
        )
        step("Creating a fresh Airflow metadata database (sqlite)")
        out = airflow(["db", "migrate"], env)
        if out.returncode:
            print(out.stdout[-3000:], out.stderr[-3000:])
            return 1

        if not DAG_TEST_REGISTERS_THE_DAG:  # Airflow 3.0: its Asset outlet must be registered
            out = airflow(["dags", "reserialize"], env)
            if out.returncode:
                print(out.stdout[-3000:], out.stderr[-3000:])
                return 1

        step(f"Running DAG {DAG_ID} with `airflow dags test`")
        out = airflow(["dags", "test", DAG_ID], env)
        log_path = WORK / "dags-test.log"
        log_path.write_text(out.stdout + out.stderr)
        if out.returncode:
            print(out.stdout[-4000:], out.stderr[-4000:])
            print(f"\nThe DAG failed; full log in {log_path}")
            return 1
        stats = emu.stats

    step("What it did")
    files = sorted(p for p in output_dir.rglob("*") if p.is_file()) if output_dir.exists() else []
    for path in files:
        size = path.stat().st_size
        if path.suffix == ".csv":
            with path.open(encoding="utf-8") as fh:
                head = [next(fh, "") for _ in range(4)]
            import csv

            with path.open(encoding="utf-8", newline="") as fh:
                rows = sum(1 for _ in csv.reader(fh)) - 1
            print(f"    {path}  {rows:,} rows, {size:,} bytes; first lines:")
            for line in head:
                print("      " + line.rstrip("\n")[:140])
        else:
            print(f"    {path}  {size:,} bytes")
    print(f"    token exchanges: {stats.token_exchanges}, API calls: {stats.api_calls}")
    print(f"    full `airflow dags test` log: {log_path}")
    print(f"\nDone in {time.monotonic() - started:.1f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

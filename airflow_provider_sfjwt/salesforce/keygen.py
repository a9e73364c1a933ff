"""Making a key pair for the JWT Bearer flow: an RSA private key and the certificate for the app.

What Salesforce's setup guide does by hand with ``openssl genrsa`` and ``openssl req -x509``,
with the mistakes designed out: the key is written with mode 0600 and never over an existing
file unless asked (nor through a symlink planted at its name: :mod:`.safe_write`), it is PKCS#8
(optionally encrypted), and the user is told when the key sits in a git work tree where it is
not ignored, because a committed key has to be rotated at once.

Plain Python, no Airflow: ``sfjwt keygen`` is a thin wrapper around :func:`write_key_pair`.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from .errors import ConfigurationError, shown
from .keys import (
    CertificateInfo,
    certificate_info,
    certificate_to_pem,
    file_reference,
    generate_private_key,
    load_private_key,
    private_key_to_pem,
    resolve_reference,
    self_signed_certificate,
)
from .safe_write import write_file

ALLOWED_BITS = (2048, 3072, 4096)
DEFAULT_COMMON_NAME = "airflow-salesforce-jwt"
DEFAULT_DAYS = 365
MAX_DAYS = 3650

# openssl-style short names, so a subject written for openssl ("/C=US/O=Acme/CN=airflow") works.
_NAME_OIDS = {
    "CN": NameOID.COMMON_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "C": NameOID.COUNTRY_NAME,
    "ST": NameOID.STATE_OR_PROVINCE_NAME,
    "L": NameOID.LOCALITY_NAME,
    "EMAILADDRESS": NameOID.EMAIL_ADDRESS,
}


@dataclass(frozen=True)
class KeyPairFiles:
    """What was written; nothing secret, so it can be printed as is."""

    key_path: Path
    cert_path: Path
    bits: int
    encrypted: bool
    certificate: CertificateInfo


def parse_subject(subject: str) -> x509.Name:
    """``/C=US/O=Acme/CN=airflow`` (openssl) or ``CN=airflow,O=Acme`` (RFC 4514) as an X.509 name."""
    text = subject.strip()
    parts = text.strip("/").split("/") if text.startswith("/") else text.split(",")
    attributes = []
    for part in parts:
        name, sep, value = part.partition("=")
        oid = _NAME_OIDS.get(name.strip().upper())
        if not sep or oid is None or not value.strip():
            raise ConfigurationError(
                "subject",
                f"has a part {shown(part.strip())} that is not NAME=value with NAME one of "
                f"{', '.join(_NAME_OIDS)}",
                "write it like /C=US/O=Acme/CN=airflow-salesforce or CN=airflow-salesforce,O=Acme",
            )
        if oid == NameOID.COUNTRY_NAME and len(value.strip()) != 2:
            raise ConfigurationError("subject", "has a country (C=) that is not two letters", "")
        attributes.append(x509.NameAttribute(oid, value.strip()))
    return x509.Name(attributes)


def write_key_pair(
    key_path: str | os.PathLike[str],
    cert_path: str | os.PathLike[str],
    *,
    bits: int = 2048,
    subject: x509.Name | None = None,
    days: int = DEFAULT_DAYS,
    passphrase: str | None = None,
    force: bool = False,
) -> KeyPairFiles:
    """Generate an RSA key and a self-signed certificate and write both files.

    The key is PKCS#8 with mode 0600 (encrypted when ``passphrase`` is given); the certificate is
    public (0644). Existing files are refused unless ``force``.
    """
    if bits not in ALLOWED_BITS:
        raise ConfigurationError(
            "bits", f"is {bits}", f"use one of {', '.join(map(str, ALLOWED_BITS))}"
        )
    if not 1 <= days <= MAX_DAYS:
        raise ConfigurationError("days", f"is {days}", f"use 1 to {MAX_DAYS} days")
    key_file, cert_file = Path(key_path).expanduser(), Path(cert_path).expanduser()
    if key_file.resolve() == cert_file.resolve():
        raise ConfigurationError("cert", "is the same file as the key", "give them different names")
    for path, what in ((key_file, "key"), (cert_file, "cert")):
        if not path.parent.is_dir():
            raise ConfigurationError(
                what, f"goes to {str(path.parent)!r}, which is not a directory", "create it first"
            )
        if os.path.lexists(path) and not force:
            raise ConfigurationError(
                what,
                f"file {str(path)!r} already exists",
                "choose another path, or pass --force to replace it (the old key stops working "
                "once the app's certificate is replaced)",
            )
    key = generate_private_key(bits)
    cert = self_signed_certificate(key, subject or default_subject(), days)
    write_file(key_file, private_key_to_pem(key, passphrase), 0o600, replace=force)
    write_file(cert_file, certificate_to_pem(cert), 0o644, replace=force)
    return KeyPairFiles(
        key_path=key_file,
        cert_path=cert_file,
        bits=bits,
        encrypted=bool(passphrase),
        certificate=certificate_info(cert),
    )


def renew_certificate(
    key_path: str | os.PathLike[str],
    cert_path: str | os.PathLike[str],
    *,
    subject: x509.Name | None = None,
    days: int = DEFAULT_DAYS,
    passphrase: str | None = None,
    force: bool = False,
) -> KeyPairFiles:
    """A new certificate for an existing key: rotation without touching the key in Airflow.

    Salesforce verifies the assertion with the public key in the uploaded certificate, so
    replacing the certificate with one for the same key keeps every running task working.
    """
    if not 1 <= days <= MAX_DAYS:
        raise ConfigurationError("days", f"is {days}", f"use 1 to {MAX_DAYS} days")
    key_file, cert_file = Path(key_path).expanduser(), Path(cert_path).expanduser()
    if os.path.lexists(cert_file) and not force:
        raise ConfigurationError(
            "cert",
            f"file {str(cert_file)!r} already exists",
            "choose another path, or pass --force to replace it",
        )
    if not cert_file.parent.is_dir():
        raise ConfigurationError(
            "cert",
            f"goes to {str(cert_file.parent)!r}, which is not a directory",
            "create it first",
        )
    pem = resolve_reference(file_reference(key_file), "reuse-key")
    key = load_private_key(pem, passphrase, "reuse-key")
    cert = self_signed_certificate(key, subject or default_subject(), days)
    write_file(cert_file, certificate_to_pem(cert), 0o644, replace=force)
    return KeyPairFiles(
        key_path=key_file,
        cert_path=cert_file,
        bits=key.key_size,
        encrypted="ENCRYPTED" in pem,
        certificate=certificate_info(cert),
    )


def default_subject(common_name: str = DEFAULT_COMMON_NAME) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def git_exposure(path: str | os.PathLike[str]) -> str | None:
    """A warning when ``path`` is inside a git work tree and not ignored there, else None.

    Uses the ``git`` command itself (``git check-ignore``), so every .gitignore, the global
    excludes file and ``.git/info/exclude`` count exactly as git will count them.
    """
    target = Path(path).expanduser().resolve()
    try:
        inside = subprocess.run(
            ["git", "-C", str(target.parent), "rev-parse", "--is-inside-work-tree"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if inside.returncode != 0 or inside.stdout.strip() != "true":
            return None
        ignored = subprocess.run(
            ["git", "-C", str(target.parent), "check-ignore", "-q", "--", str(target)],
            capture_output=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None  # no git here: nothing can be committed by accident
    if ignored.returncode == 0:
        return None
    return (
        f"{target} is inside a git work tree and not ignored: one 'git add .' would commit the "
        f"private key. Add '{target.name}' to .gitignore, or keep the key outside the repository"
    )


EXAMPLE_LOGIN_URL = "https://MYDOMAIN.my.salesforce.com"
EXAMPLE_USERNAME = "integration.user@example.com"
EXAMPLE_CONSUMER_KEY = "YOUR_CONSUMER_KEY"


def next_steps(files: KeyPairFiles) -> list[str]:
    """What to do in Salesforce and Airflow after keygen, in order.

    The commands run as printed from the directory keygen was run in (the example values are
    well-formed), so a reader only replaces the values that are theirs.
    """
    cert, key = shlex.quote(str(files.cert_path)), shlex.quote(str(files.key_path))
    return [
        f"Upload {files.cert_path} to the app in Salesforce:",
        "  External Client App (new integrations since Spring '26): Setup > External Client App "
        "Manager > New External Client App > OAuth Settings: scope 'Manage user data via APIs "
        "(api)' (refresh_token and offline_access are not needed for the JWT flow); Flow "
        "Enablement: 'Enable JWT Bearer Flow', upload the certificate.",
        "  Connected App (existing ones; creating a new one needs Salesforce Support): Setup > "
        "App Manager > the app > Edit > 'Use digital signatures' > upload the certificate.",
        "Pre-authorise the integration user: the app's Edit Policies > OAuth Policies > Permitted "
        "Users = 'Admin approved users are pre-authorized', then add the user's profile or a "
        "permission set assigned to the user.",
        "Copy the app's Consumer Key, then create the Airflow connection (replace the example "
        "values):",
        f"  sfjwt connection --login-url {EXAMPLE_LOGIN_URL} --username {EXAMPLE_USERNAME} "
        f"--consumer-key {EXAMPLE_CONSUMER_KEY} --key-file {key} --cert {cert}",
        "Store it (one of the three forms printed), then check everything end to end (community "
        "reports say a new app can take 2 to 10 minutes to become active):",
        "  sfjwt doctor --conn-id salesforce_jwt_default",
        f"Before {files.certificate.not_after.date()}, renew the certificate for the same key, "
        "upload it in place of the old one and update the connection's certificate field "
        "(docs/setup.md, 'Certificate expiry and rotation'):",
        f"  sfjwt keygen --reuse-key {key} --cert {_renewed_name(files.cert_path)}",
    ]


def _renewed_name(cert: Path) -> str:
    """``salesforce_jwt.crt`` -> ``salesforce_jwt-renewed.crt``, next to it."""
    return shlex.quote(str(cert.with_name(f"{cert.stem}-renewed{cert.suffix}")))

"""Private keys and certificates: where they come from, how they are parsed, and how they are checked.

Keys reach us in many shapes: a PEM pasted into a password input (newlines stripped), a JSON
value with literal ``\\n``, a file on the worker, an environment variable or a secrets backend.
Everything is normalised here and checked *before* any network call, because a key problem
reported by Salesforce only ever says ``invalid assertion``.

Nothing in this module puts key material into an exception message or a repr.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import NameOID

from .errors import NAME_SHAPE, PATH_SHAPE, ConfigurationError, shown

MIN_RSA_BITS = 2048
REF_SCHEMES = ("file", "env", "variable")
MAX_REFERENCED_BYTES = 64 * 1024
"""A key or certificate file is a few KB; anything bigger is the wrong file, so it is not read."""

_PEM_BLOCK = re.compile(
    r"-----BEGIN (?P<label>[A-Z0-9 ]+)-----(?P<body>.*?)-----END (?P=label)-----", re.DOTALL
)
# Encrypted PKCS#1 headers. The IV length is fixed by the cipher (AES: 16 bytes, DES: 8), which
# lets us find where the header ends even when a paste removed the newline after it.
_PEM_HEADER_LINE = re.compile(
    r"(Proc-Type:\s*4,ENCRYPTED|DEK-Info:\s*AES-[0-9]+-CBC,[0-9A-Fa-f]{32}"
    r"|DEK-Info:\s*[A-Z0-9-]+,[0-9A-Fa-f]{16})"
)

VariableGetter = Callable[[str], "str | None"]


def normalize_pem(text: str | bytes, field: str) -> bytes:
    """Return a well-formed PEM whatever the transport did to its newlines.

    Accepts real newlines (LF or CRLF), literal ``\\n`` escapes (JSON, env files) and a PEM pasted
    into a single-line input where the newlines became spaces or vanished. Only the first PEM block
    is kept, so a file with a key and a certificate also works.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            raise ConfigurationError(
                field, "is not a PEM: it contains binary data (a DER file?)", _PEM_FIX
            ) from None
    text = text.replace("\\r", "").replace("\\n", "\n").replace("\r", "").strip()
    match = _PEM_BLOCK.search(text)
    if not match:
        raise ConfigurationError(
            field, "is not a PEM: no '-----BEGIN ...-----' block found", _PEM_FIX
        )
    label, body = match.group("label"), match.group("body")
    headers = _PEM_HEADER_LINE.findall(body)
    for header in headers:
        body = body.replace(header, "")
    b64 = "".join(body.split())
    if not b64 or not re.fullmatch(r"[A-Za-z0-9+/=]+", b64):
        raise ConfigurationError(
            field, f"is not a PEM: the {label} block body is not base64", _PEM_FIX
        )
    lines = [f"-----BEGIN {label}-----"]
    lines += [re.sub(r":\s*", ": ", h, count=1) for h in headers]
    if headers:
        lines.append("")
    lines += [b64[i : i + 64] for i in range(0, len(b64), 64)]
    lines.append(f"-----END {label}-----")
    return ("\n".join(lines) + "\n").encode("ascii")


_PEM_FIX = (
    "paste the whole key including the '-----BEGIN PRIVATE KEY-----' and '-----END PRIVATE KEY-----' "
    "lines, or point private_key_ref at the .pem/.key file"
)


def file_reference(path: str | os.PathLike[str]) -> str:
    """``file:`` + the absolute form of a path typed on a command line.

    A path given as a flag means "this file, here": it is resolved against the current directory
    now, so the stored reference works from any directory. Inside a stored connection a relative
    path stays an error (see :func:`resolve_reference`), because there is no "here".
    """
    return "file:" + str(Path(path).expanduser().resolve())


def command_line_reference(ref: str) -> str:
    """A reference typed on a command line: a relative ``file:`` path made absolute, others as is."""
    scheme, sep, target = ref.strip().partition(":")
    if sep and scheme.lower() == "file" and target and not Path(target).expanduser().is_absolute():
        return file_reference(target)
    return ref.strip()


def resolve_reference(ref: str, field: str, get_variable: VariableGetter | None = None) -> str:
    """Read the text a ``file:``, ``env:`` or ``variable:`` reference points to."""
    scheme, sep, target = ref.strip().partition(":")
    scheme = scheme.lower()
    if not sep or scheme not in REF_SCHEMES or not target:
        raise ConfigurationError(
            field,
            "must look like file:/path/key.pem, env:VARIABLE or variable:NAME, not "
            f"{shown(ref.strip())}"
            if not ref.lstrip().startswith("-----")
            else "holds a PEM, not a reference",
            "put an inline key in private_key, or a reference such as file:/opt/airflow/key.pem in "
            "private_key_ref",
        )
    if scheme == "file":
        path = Path(target).expanduser()
        if not path.is_absolute():
            raise ConfigurationError(
                field,
                f"points to the relative path {shown(target, PATH_SHAPE)} (from this "
                f"process's directory: {shown(str(path.resolve()), PATH_SHAPE)}); workers, the "
                "triggerer and the API server each start "
                "in a different directory",
                "use an absolute path such as file:/opt/airflow/keys/salesforce.pem",
            )
        path = path.resolve()  # every message below names the real file ('..' and links resolved)
        if not path.is_file():
            raise ConfigurationError(
                field,
                f"points to file {shown(str(path), PATH_SHAPE)}, which does not exist on this "
                "machine",
                "copy the key to that path on every worker (and on the API server for the Test "
                "button), or use env: or variable:",
            )
        if path.stat().st_size > MAX_REFERENCED_BYTES:
            raise ConfigurationError(
                field,
                f"points to {shown(str(path), PATH_SHAPE)}, far too large to be a PEM",
                _PEM_FIX,
            )
        try:
            return path.read_text(encoding="ascii", errors="strict")
        except UnicodeDecodeError:
            raise ConfigurationError(
                field,
                f"points to {shown(str(path), PATH_SHAPE)}, which is binary, not a PEM",
                _PEM_FIX,
            ) from None
        except OSError as exc:
            raise ConfigurationError(
                field,
                f"points to {shown(str(path), PATH_SHAPE)}, which cannot be read ({exc.strerror})",
                "give the Airflow user read permission on the file",
            ) from None
    if scheme == "env":
        value = os.environ.get(target)
        if not value:
            raise ConfigurationError(
                field,
                f"points to environment variable {shown(target, NAME_SHAPE)}, which is not set "
                "in this process",
                "set it on every worker (and the API server for the Test button)",
            )
        return value
    if get_variable is None:
        raise ConfigurationError(
            field, "uses variable:, which needs Airflow", "use file: or env: outside Airflow"
        )
    value = get_variable(target)
    if not value:
        name = target if NAME_SHAPE.fullmatch(target) else "NAME"
        raise ConfigurationError(
            field,
            f"points to Airflow Variable {shown(target, NAME_SHAPE)}, which does not exist",
            f'create it (airflow variables set {name} "$(cat key.pem)") or in your secrets '
            "backend under the variables prefix",
        )
    return value


def load_private_key(
    pem: str | bytes, passphrase: str | None, field: str = "private_key"
) -> rsa.RSAPrivateKey:
    """Parse and check an RSA private key; PKCS#8 or PKCS#1, encrypted or not."""
    data = normalize_pem(pem, field)
    label = data.split(b"\n", 1)[0]
    if b"PRIVATE KEY" not in label:
        raise ConfigurationError(
            field,
            f"holds a {label.decode().strip('-').replace('BEGIN ', '')}, not a private key",
            "use the private key file (BEGIN PRIVATE KEY / BEGIN RSA PRIVATE KEY); the certificate "
            "goes to Salesforce and optionally into the certificate field",
        )
    encrypted = b"ENCRYPTED" in data.split(b"\n-----END", 1)[0]
    if encrypted and not passphrase:
        raise ConfigurationError(
            "password",
            "is empty, but the private key is encrypted",
            "put the key passphrase in the connection's Key passphrase (password) field",
        )
    password = passphrase.encode() if (passphrase and encrypted) else None
    try:
        key = serialization.load_pem_private_key(data, password=password)
    except (ValueError, TypeError):
        if encrypted:
            raise ConfigurationError(
                "password",
                "does not decrypt the private key (wrong passphrase)",
                "check the Key passphrase (password) field",
            ) from None
        raise ConfigurationError(
            field, "could not be parsed as a private key (damaged or truncated PEM)", _PEM_FIX
        ) from None
    except Exception:  # cryptography raises UnsupportedAlgorithm for exotic keys
        raise ConfigurationError(field, "uses an unsupported key format", _RSA_FIX) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigurationError(
            field, f"is a {_key_kind(key)} key; Salesforce's JWT Bearer flow needs RSA", _RSA_FIX
        )
    if key.key_size < MIN_RSA_BITS:
        raise ConfigurationError(
            field,
            f"is an RSA key of {key.key_size} bits; at least {MIN_RSA_BITS} are required",
            _RSA_FIX,
        )
    return key


_RSA_FIX = (
    "create a new RSA key of 2048 bits or more (sfjwt keygen), upload its certificate to the app "
    "and put the key in the connection"
)


def _key_kind(key: object) -> str:
    for kind, cls in (
        ("EC", ec.EllipticCurvePrivateKey),
        ("DSA", dsa.DSAPrivateKey),
        ("Ed25519", ed25519.Ed25519PrivateKey),
        ("Ed448", ed448.Ed448PrivateKey),
    ):
        if isinstance(key, cls):
            return kind
    return type(key).__name__


def load_certificate(pem: str | bytes, field: str = "certificate") -> x509.Certificate:
    data = normalize_pem(pem, field)
    if not data.startswith(b"-----BEGIN CERTIFICATE-----"):
        raise ConfigurationError(
            field,
            "holds no certificate (expected -----BEGIN CERTIFICATE-----)",
            "use the .crt file that was uploaded to the Connected App / External Client App",
        )
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError:
        raise ConfigurationError(field, "could not be parsed as an X.509 certificate", "") from None


def public_key_fingerprint(key: rsa.RSAPrivateKey | CertificatePublicKeyTypes) -> str:
    """SHA-256 of the public key, to compare a key with a certificate without showing either."""
    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def certificate_matches_key(cert: x509.Certificate, key: rsa.RSAPrivateKey) -> bool:
    return public_key_fingerprint(cert.public_key()) == public_key_fingerprint(key)


@dataclass(frozen=True)
class CertificateInfo:
    """What a platform engineer needs to know about the uploaded certificate."""

    subject: str
    fingerprint_sha256: str
    not_before: dt.datetime
    not_after: dt.datetime

    def days_left(self, now: dt.datetime | None = None) -> float:
        now = now or dt.datetime.now(dt.timezone.utc)
        return (self.not_after - now).total_seconds() / 86400


def certificate_info(cert: x509.Certificate) -> CertificateInfo:
    return CertificateInfo(
        subject=cert.subject.rfc4514_string(),
        fingerprint_sha256=cert.fingerprint(hashes.SHA256()).hex(":").upper(),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
    )


# --- generation (sfjwt keygen, tests, the emulator) -------------------------------------------


def generate_private_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    if bits < MIN_RSA_BITS:
        raise ConfigurationError("bits", f"is {bits}; at least {MIN_RSA_BITS} are required", "")
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def private_key_to_pem(key: rsa.RSAPrivateKey, passphrase: str | None = None) -> bytes:
    """PKCS#8 PEM, encrypted with the best available scheme when a passphrase is given."""
    encryption = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def self_signed_certificate(
    key: rsa.RSAPrivateKey,
    subject: str | x509.Name,
    days: int = 365,
    not_before: dt.datetime | None = None,
) -> x509.Certificate:
    """A self-signed certificate as Salesforce expects for the app's digital signature.

    ``subject`` is a common name, or a full X.509 name (``sfjwt keygen --subject``).
    """
    start = not_before or (dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5))
    if isinstance(subject, str):
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    name = subject
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


def certificate_to_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def pem_lines(pem: str | bytes) -> list[str]:
    """Every line of a PEM that is secret enough to mask (base64 body lines)."""
    text = pem.decode("ascii", "replace") if isinstance(pem, bytes) else pem
    text = text.replace("\\n", "\n")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if len(line) >= 16 and not line.startswith("-----"):
            out.append(line)
    return out

"""The connection's fields, validated: one place that turns what a user typed into settings.

Used by the Airflow hook (from a Connection), by ``sfjwt`` (from flags or a connection) and by
tests. Every check runs before any network call and names the field to fix.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from .. import DEFAULT_API_VERSION, NUMBER_FIELDS
from .errors import PATH_SHAPE, ConfigurationError, shown
from .keys import VariableGetter, load_certificate, load_private_key, pem_lines, resolve_reference

DEFAULT_LOGIN_URL = "https://login.salesforce.com"
PRODUCTION_AUDIENCE = "https://login.salesforce.com"
SANDBOX_AUDIENCE = "https://test.salesforce.com"


def _default(name: str) -> int:
    default = NUMBER_FIELDS[name][0]
    if default is None:
        raise KeyError(f"{name} has no default")
    return default


DEFAULT_TIMEOUT = float(_default("request_timeout"))
DEFAULT_MAX_RETRIES = _default("max_retries")
DEFAULT_CERT_WARNING_DAYS = _default("cert_expiry_warning_days")
TOKEN_CACHE_MODES = ("file", "process")
"""``file``: tasks on one machine share a token through an encrypted file; ``process``: no sharing."""
MAX_FIELD_LENGTH = 1024
MAX_PEM_LENGTH = 64 * 1024


class SecretSink(Protocol):
    """Where secrets go the moment they are in hand (in Airflow, the hook's registration with
    the log masker). Several may come in one call, so they can be registered as one batch."""

    def __call__(self, *secrets: str) -> None: ...


_UI_HOSTS = (
    (".lightning.force.com", ".my.salesforce.com"),
    (".my.salesforce-setup.com", ".my.salesforce.com"),
    (".visualforce.com", None),
    (".force.com", None),
)


_DNS_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")

SALESFORCE_DOMAINS = (
    "salesforce.com",
    "force.com",
    "salesforce.mil",
    "cloudforce.com",
    "site.com",
    "salesforce-setup.com",
)
"""Domains an ``instance_url`` may be on without ``instance_domains``: Salesforce's own, as its
documentation lists them for allow-lists (My Domain ``*.my.salesforce.com``, Government Cloud
Plus ``*.salesforce.mil``, Experience Cloud ``*.site.com`` and ``*.force.com``, Setup
``*.salesforce-setup.com``, older ``*.cloudforce.com``)."""


def _valid_host(host: str) -> bool:
    """A DNS name or an IP address (lower case, no port)."""
    if _DNS_NAME.fullmatch(host):
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_login_url(value: str | None) -> str:
    """The token host as ``scheme://host[:port][/site-path]`` without a trailing slash."""
    typed = (value or "").strip()
    url = typed or DEFAULT_LOGIN_URL
    if "://" not in url:
        url = "https://" + url
    if len(url) > MAX_FIELD_LENGTH:
        raise ConfigurationError("host", "(Login URL) is too long to be a URL", "")
    if any(c.isspace() or not c.isprintable() for c in url):  # urlsplit would drop CR/LF/tab
        raise ConfigurationError(
            "host",
            "(Login URL) contains spaces or control characters",
            f"use a bare URL such as {DEFAULT_LOGIN_URL}",
        )
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    field_name = "host"
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
        valid_host = _valid_host(host)
    except ValueError:
        valid_host = False
    if host and not valid_host:
        raise ConfigurationError(
            field_name,
            f"(Login URL) {shown(typed)} does not name a valid host and port",
            f"use {DEFAULT_LOGIN_URL}, {SANDBOX_AUDIENCE} or your My Domain URL",
        )
    if parts.scheme not in ("https", "http") or not host:
        raise ConfigurationError(
            field_name,
            f"(Login URL) {shown(typed)} is not an http(s) URL",
            f"use {DEFAULT_LOGIN_URL}, {SANDBOX_AUDIENCE} or your My Domain URL",
        )
    if parts.username or parts.password:
        raise ConfigurationError(
            field_name,
            "(Login URL) contains a user name or password",
            "remove the credentials from the URL; the username goes in the Username field",
        )
    if parts.query or parts.fragment:
        raise ConfigurationError(
            field_name, "(Login URL) has a query or fragment", "use the bare URL"
        )
    if parts.scheme == "http" and not is_loopback(host):
        raise ConfigurationError(
            field_name,
            f"(Login URL) uses http:// for {host}; Salesforce needs https",
            f"use https://{host}",
        )
    for suffix, replacement in _UI_HOSTS:
        if host.endswith(suffix):
            if replacement:
                fixed = "https://" + host[: -len(suffix)] + replacement
                fix = f"use the My Domain URL {fixed} (Setup > My Domain)"
            else:
                fix = "use your My Domain URL (https://NAME.my.salesforce.com, Setup > My Domain)"
            raise ConfigurationError(
                field_name, f"(Login URL) {host} is a Salesforce UI host, not a token endpoint", fix
            )
    path = parts.path.rstrip("/")
    if path.startswith("/services"):
        raise ConfigurationError(
            field_name, "(Login URL) includes an API path", f"use {parts.scheme}://{parts.netloc}"
        )
    return f"{parts.scheme}://{parts.netloc.lower()}{path}"


def instance_url_problem(value: object, settings: ConnectionSettings) -> str | None:
    """Why ``value`` (a token answer's ``instance_url``) must not receive the bearer token, or None.

    Every API call carries the token to this URL, so it is checked like the Login URL and more:
    https (http only when the Login URL is http, so loopback: the emulator), a valid host, no user
    info, query or fragment, and a host on Salesforce's domains, the Login URL's own host or a
    domain the connection names in ``instance_domains``.
    """
    if not isinstance(value, str) or not value or len(value) > MAX_FIELD_LENGTH:
        return "is not a URL"
    if any(c.isspace() or not c.isprintable() for c in value):
        return "contains spaces or control characters"
    parts = urlsplit(value)
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
        host = (parts.hostname or "").lower()
    except ValueError:
        return "does not name a valid host and port"
    login = urlsplit(settings.login_url)
    # http only after an http Login URL, which is loopback (the emulator): never a downgrade.
    if parts.scheme != "https" and not (parts.scheme == login.scheme == "http"):
        return "is not https"
    if not host or not _valid_host(host):
        return "does not name a valid host"
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return "carries a user name or password"
    if parts.query or parts.fragment or value.endswith(("?", "#")):
        return "has a query or fragment"
    allowed = (*SALESFORCE_DOMAINS, *settings.instance_domains)
    if host != (login.hostname or "").lower() and not any(
        host == d or host.endswith("." + d) for d in allowed
    ):
        return (
            f"is on {host}, which is neither a Salesforce domain nor the Login URL's host; for a "
            "private deployment, name its domain in the connection's instance_domains"
        )
    return None


def audience_candidates(login_url: str, explicit: str | None) -> tuple[str, ...]:
    """The audiences to try, in order (see design.md, 'audience')."""
    if explicit:
        return (explicit.rstrip("/"),)
    host = urlsplit(login_url).hostname or ""
    if host == "login.salesforce.com":
        return (PRODUCTION_AUDIENCE,)
    if host == "test.salesforce.com":
        return (SANDBOX_AUDIENCE,)
    if host.endswith(".sandbox.my.salesforce.com"):
        return (login_url, SANDBOX_AUDIENCE)
    if host.endswith(".my.salesforce.com"):
        return (login_url, PRODUCTION_AUDIENCE)
    return (login_url,)


def _text(value: Any, name: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigurationError(name, f"must be text, not {type(value).__name__}", "")
    value = value.strip()
    return value or None


def _number(ext: Mapping[str, Any], name: str) -> float | None:
    """The number in extra ``name`` within its limits, or ``None`` when it is not set.

    Limits come from :data:`NUMBER_FIELDS`, which the connection form also shows.
    """
    value = ext.get(name)
    if value is None or value == "":
        return None
    _, lo, hi = NUMBER_FIELDS[name]
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigurationError(name, f"must be a number, not {shown(value)}", "") from None
    if not lo <= number <= hi:
        raise ConfigurationError(name, f"must be between {lo:g} and {hi:g} (got {number:g})", "")
    return number


def _bounded_number(ext: Mapping[str, Any], name: str) -> float:
    """:func:`_number`, with the field's default from :data:`NUMBER_FIELDS` when not set."""
    number = _number(ext, name)
    return float(_default(name)) if number is None else number


def _domains(value: Any) -> tuple[str, ...]:
    """``instance_domains``: a list, or one comma-separated string, of domains (``*.`` optional)."""
    if value in (None, "", []):
        return ()
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise ConfigurationError("instance_domains", "must be a list of domains", "")
    domains = []
    for item in items:
        domain = str(item).strip().lower().removeprefix("*.").strip(".")
        if not domain or not _valid_host(domain):
            raise ConfigurationError(
                "instance_domains",
                f"has {shown(item)}, which is not a domain",
                'list domains such as ["sfdc.example.gov"]: each allows itself and its subdomains',
            )
        domains.append(domain)
    return tuple(domains)


@dataclass(frozen=True, repr=False)
class ConnectionSettings:
    """Validated connection values. Holds the key text, so its repr shows none of it."""

    login_url: str
    username: str
    consumer_key: str
    audience: str | None
    private_key_pem: str = field(repr=False)
    passphrase: str | None = field(repr=False, default=None)
    certificate_pem: str | None = None
    api_version: str = DEFAULT_API_VERSION
    request_timeout: float = DEFAULT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    max_api_usage_percent: float | None = None
    ca_bundle: str | None = None
    cert_expiry_warning_days: int = DEFAULT_CERT_WARNING_DAYS
    token_cache: str = "file"
    instance_domains: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return (
            f"ConnectionSettings(login_url={self.login_url!r}, username={self.username!r}, "
            f"consumer_key={self.consumer_key[:6]!r}..., audience={self.audience!r}, "
            f"api_version={self.api_version!r})"
        )

    @property
    def audiences(self) -> tuple[str, ...]:
        return audience_candidates(self.login_url, self.audience)

    @property
    def verify(self) -> bool | str:
        return self.ca_bundle or True

    key_field: str = "private_key"

    def load_private_key(self) -> rsa.RSAPrivateKey:
        """The parsed key, parsed once per process (see :func:`parsed_private_key`)."""
        return parsed_private_key(self.private_key_pem, self.passphrase, self.key_field)

    def load_certificate(self) -> x509.Certificate | None:
        return load_certificate(self.certificate_pem) if self.certificate_pem else None


_PARSED_KEYS: dict[bytes, rsa.RSAPrivateKey] = {}
_PARSED_KEYS_LOCK = threading.Lock()
_PARSED_KEYS_MAX = 16


def parsed_private_key(
    pem: str, passphrase: str | None, field: str = "private_key"
) -> rsa.RSAPrivateKey:
    """The key parsed from ``pem``, once per process for the same PEM and passphrase.

    Parsing checks the RSA key's numbers, and opening an encrypted key runs its key derivation:
    milliseconds to a tenth of a second that every hook, trigger and doctor run of the process
    would otherwise pay again for the same key. The cache is keyed by a digest, so it keeps no
    second copy of the key text, and holds a handful of keys at most.
    """
    digest = hashlib.sha256(
        pem.encode() + b"\0" + (passphrase or "").encode() + b"\0" + field.encode()
    ).digest()
    with _PARSED_KEYS_LOCK:
        key = _PARSED_KEYS.get(digest)
    if key is None:
        key = load_private_key(pem, passphrase, field)
        with _PARSED_KEYS_LOCK:
            if len(_PARSED_KEYS) >= _PARSED_KEYS_MAX:
                _PARSED_KEYS.pop(next(iter(_PARSED_KEYS)))
            _PARSED_KEYS[digest] = key
    return key


def parse_extra(extra: str | Mapping[str, Any] | None) -> dict[str, Any]:
    if not extra:
        return {}
    if isinstance(extra, Mapping):
        return dict(extra)
    try:
        value = json.loads(extra)
    except ValueError:
        raise ConfigurationError("extra", "is not valid JSON", "") from None
    if not isinstance(value, dict):
        raise ConfigurationError("extra", "must be a JSON object", "")
    return value


def parse_connection(
    *,
    host: str | None,
    login: str | None,
    password: str | None,
    extra: str | Mapping[str, Any] | None,
    get_variable: VariableGetter | None = None,
    on_secret: SecretSink | None = None,
) -> ConnectionSettings:
    """Validate the connection's fields and resolve the key reference. No network.

    Secrets go to ``on_secret`` as soon as they are in hand, before any check that could fail
    and quote a field: the passphrase first, the key once its reference is resolved.
    """
    passphrase = password or None
    if on_secret and passphrase:
        on_secret(passphrase)
    ext = parse_extra(extra)
    login_url = validate_login_url(_text(host, "host"))
    consumer_key = _text(ext.get("consumer_key"), "consumer_key")
    if not consumer_key:
        raise ConfigurationError(
            "consumer_key",
            "is empty",
            "copy the Consumer Key of the Connected App / External Client App into the connection's "
            "extra field consumer_key",
        )
    if len(consumer_key) > 256 or any(c.isspace() for c in consumer_key):
        raise ConfigurationError(
            "consumer_key",
            "does not look like a consumer key (too long or contains spaces)",
            "copy it again from the app's settings (Consumer Key and Secret > Consumer Key)",
        )
    username = _text(login, "login")
    if not username:
        raise ConfigurationError(
            "login", "(Username) is empty", "put the integration user's Salesforce username there"
        )
    if len(username) > 256 or any(c.isspace() for c in username) or "@" not in username:
        raise ConfigurationError(
            "login",
            "(Username) does not look like a Salesforce username (user@example.com)",
            "use the username shown on the user's detail page in Setup > Users",
        )
    inline = _text(ext.get("private_key"), "private_key")
    ref = _text(ext.get("private_key_ref"), "private_key_ref")
    if inline and ref:
        raise ConfigurationError(
            "private_key",
            "and private_key_ref are both set",
            "keep exactly one: the inline PEM or the reference",
        )
    if not inline and not ref:
        raise ConfigurationError(
            "private_key",
            "and private_key_ref are both empty",
            "paste the PEM into private_key, or set private_key_ref to file:/path, env:VAR or "
            "variable:NAME",
        )
    key_field = "private_key" if inline else "private_key_ref"
    pem = inline if inline else resolve_reference(ref or "", "private_key_ref", get_variable)
    if len(pem) > MAX_PEM_LENGTH:
        raise ConfigurationError(key_field, "is far too large to be a private key", "")
    if on_secret:
        on_secret(*pem_lines(pem), pem)
    cert = _text(ext.get("certificate"), "certificate")
    if cert and not cert.lstrip().startswith("-----"):
        cert = resolve_reference(cert, "certificate", get_variable)
    audience = _text(ext.get("audience"), "audience")
    if audience:
        parts = urlsplit(audience)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ConfigurationError(
                "audience",
                f"{shown(audience)} is not a URL",
                f"leave it empty to derive it, or use {PRODUCTION_AUDIENCE} / {SANDBOX_AUDIENCE}",
            )
    api_version = str(ext.get("api_version") or DEFAULT_API_VERSION).strip().lstrip("vV")
    if not api_version.replace(".", "", 1).isdigit():
        raise ConfigurationError(
            "api_version", f"{shown(api_version)} is not a version like 66.0", ""
        )
    if "." not in api_version:
        api_version += ".0"
    ca_bundle = _text(ext.get("ca_bundle"), "ca_bundle")
    if ca_bundle and not os.path.exists(ca_bundle):
        raise ConfigurationError(
            "ca_bundle",
            f"points to {shown(ca_bundle, PATH_SHAPE)}, which does not exist on this machine",
            "put the PEM bundle of your private CA or TLS-inspecting proxy there (on every worker), "
            "or remove ca_bundle to use the system store or REQUESTS_CA_BUNDLE",
        )
    raw_cache = str(ext.get("token_cache") or "file").strip()
    token_cache = raw_cache.lower()
    if token_cache not in TOKEN_CACHE_MODES:
        raise ConfigurationError(
            "token_cache",
            f"is {shown(raw_cache)}",
            "use 'file' (the default: processes on one machine share an encrypted token) or "
            "'process' (each process logs in for itself)",
        )
    instance_domains = _domains(ext.get("instance_domains"))
    settings = ConnectionSettings(
        login_url,
        username,
        consumer_key,
        audience,
        private_key_pem=pem,
        passphrase=passphrase,
        certificate_pem=cert,
        api_version=api_version,
        request_timeout=_bounded_number(ext, "request_timeout"),
        max_retries=int(_bounded_number(ext, "max_retries")),
        max_api_usage_percent=_number(ext, "max_api_usage_percent"),
        ca_bundle=ca_bundle,
        cert_expiry_warning_days=int(_bounded_number(ext, "cert_expiry_warning_days")),
        key_field=key_field,
        token_cache=token_cache,
        instance_domains=instance_domains,
    )
    # Parse the key now, so every key problem is reported before any network call.
    settings.load_private_key()
    settings.load_certificate()
    return settings

"""The checks ``sfjwt doctor`` runs without the network: key, key file, certificate, Login URL,
audience, consumer key and username, each against the mistakes the JWT flow's ``invalid_grant``
hides."""

from __future__ import annotations

import datetime as dt
import os
import re
from urllib.parse import urlsplit

from ..errors import (
    ConfigurationError,
    shown,
)
from ..keygen import git_exposure
from ..keys import (
    certificate_info,
    certificate_matches_key,
    load_certificate,
    load_private_key,
    public_key_fingerprint,
    resolve_reference,
)
from ..settings import (
    PRODUCTION_AUDIENCE,
    SANDBOX_AUDIENCE,
    audience_candidates,
    is_loopback,
    validate_login_url,
)
from .run import Outcome, Run, Status, int_setting, passed, skipped

CERT_WARNING_DAYS = 30

_LEGACY_INSTANCE = re.compile(r"^(na|eu|ap|cs|um|gs|usa)\d+\.salesforce\.com$")
_COMMON_TLD = re.compile(
    r"^(com|org|net|io|co|de|uk|fr|jp|au|ca|nl|ch|es|it|se|dk|no|fi|be|at|ie|nz|in|br|us|edu|gov)$"
)
_CONSUMER_KEY_CHARS = re.compile(r"^[A-Za-z0-9._]+$")

ROTATE_FIX = (
    "renew the certificate for the same key (sfjwt keygen --reuse-key KEY.pem --cert NEW.crt), "
    "upload NEW.crt to the app in place of the old one, and put it in the connection's "
    "certificate field (docs/setup.md, 'Certificate expiry and rotation')"
)


def check_key(run: Run) -> Outcome:
    inline, ref = run.text("private_key"), run.text("private_key_ref")
    if inline and ref:
        raise ConfigurationError(
            "private_key", "and private_key_ref are both set", "keep exactly one of them"
        )
    if not inline and not ref:
        raise ConfigurationError(
            "private_key",
            "and private_key_ref are both empty",
            "set private_key_ref to file:/path/key.pem, env:VAR or variable:NAME (or pass "
            "--key-file), or paste the PEM into private_key",
        )
    field_name = "private_key" if inline else "private_key_ref"
    pem = inline or resolve_reference(ref, field_name, run.inp.get_variable)
    run.key = load_private_key(pem, run.inp.password or None, field_name)
    run.key_source = "inline private_key" if inline else ref
    encrypted = "encrypted" if "ENCRYPTED" in pem else "not encrypted"
    return passed(
        f"RSA {run.key.key_size}-bit private key from {run.key_source} ({encrypted}); public key "
        f"SHA-256 {public_key_fingerprint(run.key)[:16]}..."
    )


def check_key_storage(run: Run) -> Outcome:
    if run.key is None:
        return skipped("no key loaded")
    ref = run.text("private_key_ref")
    if not ref:
        return passed(
            "inline in the connection (masked in logs; encrypted at rest when Airflow has a "
            "Fernet key); private_key_ref=variable:NAME keeps it in a secrets backend instead"
        )
    scheme, _, target = ref.partition(":")
    if scheme.lower() != "file":
        return passed(
            f"read from {scheme.lower()}:{target} at run time, not stored in the connection"
        )
    path = os.path.expanduser(target)
    problems, fixes = [], []
    mode = os.stat(path).st_mode & 0o777
    if mode & 0o077:
        problems.append(f"{path} has mode {mode:04o}: other users on this machine can read it")
        fixes.append(f"chmod 600 {path}")
    exposure = git_exposure(path)
    if exposure:
        problems.append(exposure)
        fixes.append(
            f"add {os.path.basename(path)} to .gitignore or move the key out of the repository"
        )
    if problems:
        return Status.WARN, "; ".join(problems), "; ".join(fixes)
    return passed(f"{path} is readable by its owner only and not exposed to git")


def _certificate_text(run: Run) -> str:
    cert = run.text("certificate")
    if cert and not cert.startswith("-----"):
        cert = resolve_reference(cert, "certificate", run.inp.get_variable)
    return cert


def check_certificate(run: Run) -> Outcome:
    text = _certificate_text(run)
    if not text:
        return (
            Status.WARN,
            "no certificate given, so the key cannot be compared with the one uploaded to the app "
            "(the usual cause of 'invalid assertion')",
            "pass --cert FILE with the certificate uploaded to the app (download it from the app's "
            "settings, or use the .crt from sfjwt keygen), or set the connection's certificate extra",
        )
    run.cert = load_certificate(text)
    info = certificate_info(run.cert)
    if run.key is None:
        return skipped(f"certificate {info.subject} loads, but there is no key to compare it with")
    if not certificate_matches_key(run.cert, run.key):
        return (
            Status.FAIL,
            f"the certificate ({info.subject}, SHA-256 {info.fingerprint_sha256[:23]}...) holds a "
            "different public key than the private key: Salesforce answers 'invalid assertion'",
            "upload the certificate made from this key to the app (sfjwt keygen --reuse-key "
            "KEY.pem --cert NEW.crt makes one), or put the key that belongs to the uploaded "
            "certificate into the connection",
        )
    return passed(
        f"certificate {info.subject} (SHA-256 {info.fingerprint_sha256[:23]}...) belongs to the key"
    )


def check_certificate_expiry(run: Run) -> Outcome:
    if run.cert is None:
        return skipped("no certificate to check")
    info = certificate_info(run.cert)
    days = info.days_left()
    warn_days = int_setting(run.extra.get("cert_expiry_warning_days"), CERT_WARNING_DAYS)
    if days < 0:
        # A rotation policy, not an outage: Salesforce is reported to keep accepting assertions
        # after the uploaded certificate has expired, so this warns and the exchange decides.
        return (
            Status.WARN,
            f"the certificate expired on {info.not_after.date()} ({int(-days)} days ago); "
            "Salesforce is reported to keep accepting its key, but it is past its rotation date",
            ROTATE_FIX,
        )
    if info.not_before > dt.datetime.now(dt.timezone.utc):
        return (
            Status.WARN,
            f"the certificate is not valid before {info.not_before.isoformat()}",
            "check this machine's clock, or make a new certificate",
        )
    if days < warn_days:
        return (
            Status.WARN,
            f"the certificate expires in {int(days)} days, on {info.not_after.date()}",
            ROTATE_FIX,
        )
    return passed(f"valid until {info.not_after.date()} ({int(days)} days)")


def org_kind(login_url: str) -> str:
    """'production', 'sandbox' or 'unknown' (loopback, Experience Cloud site, custom domain)."""
    host = urlsplit(login_url).hostname or ""
    if host == "test.salesforce.com" or host.endswith(".sandbox.my.salesforce.com"):
        return "sandbox"
    if host.endswith(".my.salesforce.com") and "--" in host.split(".", 1)[0]:
        return "sandbox"
    if host == "login.salesforce.com" or host.endswith(".my.salesforce.com"):
        return "production"
    return "unknown"


def check_login_url(run: Run) -> Outcome:
    url = validate_login_url(run.inp.host)
    host = urlsplit(url).hostname or ""
    token_url = f"token endpoint {url}/services/oauth2/token"
    if is_loopback(host):
        return passed(f"{url}: a loopback address (the emulator or a test server); {token_url}")
    if host == "login.salesforce.com":
        return passed(
            f"{url}: production and Developer Edition orgs; External Client Apps are reported to "
            "need the org's My Domain URL here instead"
        )
    if host == "test.salesforce.com":
        return passed(
            f"{url}: sandboxes; External Client Apps are reported to need the sandbox's My "
            "Domain URL"
        )
    if _LEGACY_INSTANCE.match(host):
        return (
            Status.WARN,
            f"{host} is an instance hostname; Salesforce stopped redirecting legacy hostnames in "
            "Spring '26",
            "use the org's My Domain URL (Setup > My Domain), e.g. https://NAME.my.salesforce.com",
        )
    if host.endswith(".my.salesforce.com"):
        label = host.split(".", 1)[0]
        if "--" in label and not host.endswith(".sandbox.my.salesforce.com"):
            return (
                Status.WARN,
                f"{host} looks like a sandbox hostname from before enhanced domains",
                "use the sandbox's current My Domain URL, "
                "https://NAME--SANDBOX.sandbox.my.salesforce.com (Setup > My Domain)",
            )
        kind = (
            "a sandbox"
            if host.endswith(".sandbox.my.salesforce.com")
            else "a Developer Edition org"
            if host.endswith(".develop.my.salesforce.com")
            else "a production org"
        )
        return passed(f"{url}: the My Domain URL of {kind}; {token_url}")
    if host.endswith(".my.site.com") or urlsplit(url).path:
        return passed(
            f"{url}: an Experience Cloud site; site users need audience set to this site URL"
        )
    return (
        Status.WARN,
        f"{host} is not a Salesforce token host this tool knows (login, test, My Domain, site)",
        "use https://login.salesforce.com, https://test.salesforce.com or the org's My Domain "
        "URL, unless this is an Experience Cloud site on a custom domain",
    )


_CROSSED_AUDIENCES = {
    "sandbox": (
        PRODUCTION_AUDIENCE,
        "production",
        "a sandbox",
        SANDBOX_AUDIENCE,
        "the sandbox's My Domain URL",
    ),
    "production": (
        SANDBOX_AUDIENCE,
        "sandbox",
        "production",
        PRODUCTION_AUDIENCE,
        "the org's My Domain URL",
    ),
}
"""An audience of the other kind of org than the Login URL's, by the Login URL's kind:
(that audience, its kind, the Login URL's kind as said, the right audience, the My Domain form)."""


def check_audience(run: Run) -> Outcome:
    url = validate_login_url(run.inp.host)
    explicit = run.text("audience").rstrip("/")
    kind = org_kind(url)
    if not explicit:
        candidates = audience_candidates(url, None)
        then = f", then {candidates[1]} if Salesforce rejects it" if len(candidates) > 1 else ""
        return passed(f"derived from the Login URL: {candidates[0]}{then}")
    parts = urlsplit(explicit)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("https", "http") or not host:
        raise ConfigurationError(
            "audience",
            f"{shown(explicit)} is not a URL",
            f"leave it empty to derive it, or use {PRODUCTION_AUDIENCE} / {SANDBOX_AUDIENCE}",
        )
    fix_empty = "leave audience empty so it is derived from the Login URL"
    crossed = _CROSSED_AUDIENCES.get(kind)
    if crossed is not None and explicit == crossed[0]:
        wrong, other, login, right, my_domain = crossed
        return (
            Status.FAIL,
            f"audience is {wrong} ({other}) but the Login URL {url} is {login}",
            f"set audience to {right} (Connected App) or {my_domain} (External Client App), "
            f"or {fix_empty}",
        )
    if host.endswith((".lightning.force.com", ".force.com")):
        return (
            Status.FAIL,
            f"audience {explicit} is a Salesforce UI host",
            f"use the My Domain URL (https://NAME.my.salesforce.com) or {fix_empty}",
        )
    login_host = urlsplit(url).hostname or ""
    if host.endswith(".my.salesforce.com") and host != login_host:
        return (
            Status.WARN,
            f"audience {explicit} is the My Domain of another org than the Login URL {url}",
            f"use the My Domain URL of the org the Login URL points to, or {fix_empty}",
        )
    return passed(f"{explicit} (set explicitly in the connection)")


def check_consumer_key(run: Run) -> Outcome:
    raw = run.extra.get("consumer_key")
    key = raw if isinstance(raw, str) else ""
    fix = "copy the Consumer Key again: Setup > App Manager (or External Client App Manager) > the app > Consumer Key and Secret"
    if not key.strip():
        raise ConfigurationError("consumer_key", "is empty", fix)
    if key != key.strip() or any(c.isspace() for c in key):
        return (
            Status.FAIL,
            "consumer_key contains spaces or line breaks (copied with extra characters)",
            fix,
        )
    shown = f"{key[:8]}... ({len(key)} characters)"
    if re.fullmatch(r"[0-9A-Fa-f]{64}", key) or re.fullmatch(r"[0-9]{15,20}", key):
        return Status.WARN, f"{shown} looks like a Consumer Secret, not a Consumer Key", fix
    if not _CONSUMER_KEY_CHARS.match(key) or len(key) > 256:
        return Status.FAIL, f"{shown} has characters a consumer key never has", fix
    if not key.startswith("3MVG"):
        return (
            Status.WARN,
            f"{shown} does not start with 3MVG like Salesforce consumer keys do (an app Id or a "
            "secret?)",
            fix,
        )
    return passed(f"{shown}, the JWT iss")


def check_username(run: Run) -> Outcome:
    user = (run.inp.login or "").strip()
    fix = (
        "use the exact username from Setup > Users (sandbox usernames carry a suffix such as .uat)"
    )
    if not user or any(c.isspace() for c in user) or "@" not in user or len(user) > 256:
        return Status.FAIL, f"Username {user[:60]!r} is not a Salesforce username", fix
    try:
        kind = org_kind(validate_login_url(run.inp.host))
    except ConfigurationError:
        kind = "unknown"
    suffix = user.rsplit(".", 1)[-1].lower()
    if kind == "sandbox" and _COMMON_TLD.match(suffix):
        return (
            Status.WARN,
            f"{user} has no sandbox suffix, but the Login URL is a sandbox: sandbox copies of a "
            "user are named user@example.com.SANDBOXNAME",
            fix,
        )
    return passed(f"{user}, the JWT sub")

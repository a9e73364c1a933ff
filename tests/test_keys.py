"""Private keys in every shape users paste them, and the checks made before any network call."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa

from airflow_provider_sfjwt.salesforce import keys
from airflow_provider_sfjwt.salesforce.errors import ConfigurationError


def _pkcs1(key, passphrase: str | None = None) -> str:
    enc = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, enc
    ).decode()


@pytest.mark.parametrize(
    "transform",
    [
        pytest.param(lambda p: p, id="real-newlines"),
        pytest.param(lambda p: p.replace("\n", "\r\n"), id="crlf"),
        pytest.param(lambda p: p.replace("\n", "\\n"), id="literal-backslash-n"),
        pytest.param(lambda p: p.replace("\n", " "), id="one-line-spaces"),
        pytest.param(lambda p: p.replace("\n", ""), id="one-line-newlines-stripped"),
        pytest.param(lambda p: "  \n" + p + "\n\n", id="surrounding-whitespace"),
    ],
)
@pytest.mark.parametrize("flavour", ["pkcs8", "pkcs8-encrypted", "pkcs1", "pkcs1-encrypted"])
def test_every_pem_shape_and_flavour_loads(keypair, transform, flavour):
    passphrase = "s3cret-pass" if flavour.endswith("encrypted") else None
    if flavour.startswith("pkcs8"):
        pem = keys.private_key_to_pem(keypair.key, passphrase).decode()
    else:
        pem = _pkcs1(keypair.key, passphrase)
    loaded = keys.load_private_key(transform(pem), passphrase)
    assert keys.public_key_fingerprint(loaded) == keys.public_key_fingerprint(keypair.key)


def _assert_config_error(exc: pytest.ExceptionInfo, field: str, *words: str) -> None:
    err = exc.value
    assert isinstance(err, ConfigurationError)
    assert err.field == field
    text = str(err)
    for word in words:
        assert word.lower() in text.lower(), text


def test_encrypted_key_without_passphrase_names_the_password_field(keypair):
    pem = keys.private_key_to_pem(keypair.key, "pw-123456").decode()
    with pytest.raises(ConfigurationError) as exc:
        keys.load_private_key(pem, None)
    _assert_config_error(exc, "password", "encrypted", "passphrase")


@pytest.mark.parametrize("flavour", ["pkcs8", "pkcs1"])
def test_wrong_passphrase(keypair, flavour):
    pem = (
        keys.private_key_to_pem(keypair.key, "right-one").decode()
        if flavour == "pkcs8"
        else _pkcs1(keypair.key, "right-one")
    )
    with pytest.raises(ConfigurationError) as exc:
        keys.load_private_key(pem, "wrong-one")
    _assert_config_error(exc, "password", "wrong passphrase")


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: ec.generate_private_key(ec.SECP256R1()), ["EC", "RSA"]),
        (lambda: dsa.generate_private_key(2048), ["DSA", "RSA"]),
        (lambda: rsa.generate_private_key(65537, 1024), ["1024 bits", "2048"]),
    ],
    ids=["ec", "dsa", "rsa-1024"],
)
def test_wrong_key_types_are_refused(make, words):
    pem = make().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ConfigurationError) as exc:
        keys.load_private_key(pem, None)
    _assert_config_error(exc, "private_key", *words)


@pytest.mark.parametrize(
    "value, words",
    [
        ("not a key at all", ["not a PEM", "BEGIN"]),
        ("-----BEGIN PRIVATE KEY-----\n%%%%\n-----END PRIVATE KEY-----", ["not base64"]),
        (b"\x30\x82\x04\xa4\x02\x01\x00\xff\xfe", ["binary"]),
        (
            "-----BEGIN PRIVATE KEY-----\nQUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=\n-----END PRIVATE KEY-----",
            ["could not be parsed"],
        ),
    ],
    ids=["text", "bad-base64", "der-binary", "truncated"],
)
def test_not_a_pem(value, words):
    with pytest.raises(ConfigurationError) as exc:
        keys.load_private_key(value, None)
    _assert_config_error(exc, "private_key", *words)


def test_certificate_instead_of_key_is_named(keypair):
    with pytest.raises(ConfigurationError) as exc:
        keys.load_private_key(keypair.cert_pem, None)
    _assert_config_error(exc, "private_key", "CERTIFICATE", "not a private key")


def test_errors_never_contain_key_material(keypair):
    body_lines = keys.pem_lines(keypair.pem)
    broken = keypair.pem.replace(body_lines[3], body_lines[3][:-8] + "!!!!!!!!")
    for value, passphrase in [
        (broken, None),
        (keys.private_key_to_pem(keypair.key, "pw-abcdef").decode(), "nope-nope"),
    ]:
        with pytest.raises(ConfigurationError) as exc:
            keys.load_private_key(value, passphrase)
        text = str(exc.value) + repr(exc.value)
        assert not any(line[:20] in text for line in body_lines)
        assert "nope-nope" not in text


def test_certificate_match_and_expiry(keypair, other_keypair):
    assert keys.certificate_matches_key(keypair.cert, keypair.key)
    assert not keys.certificate_matches_key(other_keypair.cert, keypair.key)
    info = keys.certificate_info(keys.load_certificate(keypair.cert_pem.replace("\n", " ")))
    assert 364 < info.days_left() <= 365
    assert len(info.fingerprint_sha256.split(":")) == 32


def test_references(tmp_path, keypair, monkeypatch):
    key_file = tmp_path / "sf.key"
    key_file.write_text(keypair.pem)
    assert keys.resolve_reference(f"file:{key_file}", "private_key_ref") == keypair.pem
    monkeypatch.setenv("SFJWT_TEST_KEY", keypair.pem)
    assert keys.resolve_reference("env:SFJWT_TEST_KEY", "private_key_ref") == keypair.pem
    assert keys.resolve_reference("variable:k", "private_key_ref", {"k": "PEM"}.get) == "PEM"


@pytest.mark.parametrize(
    "ref, words",
    [
        ("file:/nonexistent/dir/sf.key", ["does not exist", "/nonexistent/dir/sf.key"]),
        ("env:SFJWT_SURELY_UNSET_VAR", ["SFJWT_SURELY_UNSET_VAR", "not set"]),
        ("variable:missing_var", ["missing_var", "does not exist"]),
        ("s3://bucket/key.pem", ["file:/path", "env:", "variable:"]),
        ("file:", ["file:/path"]),
    ],
)
def test_reference_target_missing(ref, words):
    with pytest.raises(ConfigurationError) as exc:
        keys.resolve_reference(ref, "private_key_ref", lambda name: None)
    _assert_config_error(exc, "private_key_ref", *words)


def test_normalize_keeps_encrypted_pkcs1_headers(keypair):
    pem = _pkcs1(keypair.key, "pw-123456")
    assert "Proc-Type: 4,ENCRYPTED" in pem
    flattened = pem.replace("\n", " ")
    normalized = keys.normalize_pem(flattened, "private_key").decode()
    assert "Proc-Type: 4,ENCRYPTED\nDEK-Info: " in normalized

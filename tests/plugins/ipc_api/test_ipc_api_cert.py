"""The self-signed certificate: shape, file modes, reuse across restarts, regeneration."""

from __future__ import annotations

import datetime
import ipaddress
import stat

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from plugins.ipc_api.certificate import cert_paths, load_or_create

NOW = datetime.datetime.now(datetime.UTC)


def test_new_certificate_shape_and_modes(tmp_path):
    pair = load_or_create(str(tmp_path / "run"))
    cert = x509.load_pem_x509_certificate(pair.cert_pem)
    key = cert.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    assert key.key_size == 2048
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == (
        "Datadog, Inc."
    )
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku
    assert cert.not_valid_after_utc - NOW > datetime.timedelta(days=3600)
    assert pair.key_pem.startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    assert stat.S_IMODE(pair.key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "run").stat().st_mode) == 0o700
    assert pair.cert_path.read_bytes() == pair.cert_pem
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "ipc_api_cert.pem",
        "ipc_api_key.pem",
    ]


def test_certificate_reused_while_valid(tmp_path):
    first = load_or_create(str(tmp_path))
    second = load_or_create(str(tmp_path))
    assert second.cert_pem == first.cert_pem
    assert second.key_pem == first.key_pem


def test_certificate_replaced_when_expired(tmp_path):
    first = load_or_create(str(tmp_path))
    later = NOW + datetime.timedelta(days=3650)
    second = load_or_create(str(tmp_path), now=later)
    assert second.cert_pem != first.cert_pem
    assert x509.load_pem_x509_certificate(second.cert_pem).not_valid_after_utc > NOW


def test_certificate_replaced_when_unreadable_or_mismatched(tmp_path):
    first = load_or_create(str(tmp_path))
    cert_path, key_path = cert_paths(str(tmp_path))
    cert_path.write_bytes(b"not a certificate")
    second = load_or_create(str(tmp_path))
    assert second.cert_pem != first.cert_pem
    other = load_or_create(str(tmp_path / "other"))
    key_path.write_bytes(other.key_pem)  # a key that does not match the certificate
    third = load_or_create(str(tmp_path))
    assert third.cert_pem != second.cert_pem
    assert third.key_pem != other.key_pem

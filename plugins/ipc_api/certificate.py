"""The API's TLS certificate: self-signed, for ``127.0.0.1`` and ``localhost``, kept in the
run path and reused across restarts while it is valid.

Clients (our CLI) trust exactly this file, so regenerating it needlessly would break clients
that already read it; a certificate that expired, does not parse, or does not match its key
is replaced.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from twisted.logger import Logger

from plugins.ipc_client.files import cert_paths

log = Logger(namespace="ipc_api")

KEY_SIZE = 2048
VALIDITY = datetime.timedelta(days=3650)
RENEW_BEFORE = datetime.timedelta(days=1)
"""A certificate this close to expiring is replaced now rather than failing mid-run."""
HOSTS = ("127.0.0.1", "localhost")


@dataclass(frozen=True)
class CertificatePair:
    cert_path: Path
    key_path: Path
    cert_pem: bytes
    key_pem: bytes


def generate(hosts: tuple[str, ...] = HOSTS) -> tuple[bytes, bytes]:
    """A new self-signed CA certificate for ``hosts`` and its PKCS#1 key, both PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Datadog, Inc.")])
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    now = datetime.datetime.now(datetime.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(secrets.randbits(127) + 1)
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,  # "RSA PRIVATE KEY", as Datadog's
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def reusable_problem(  # noqa: PLR0911 - one return per reason is the clearest form
    cert_pem: bytes, key_pem: bytes, now: datetime.datetime
) -> str | None:
    """Why a stored pair cannot be reused, or None when it can."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        return f"unreadable: {exc}"
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < KEY_SIZE:
        return "the key is not RSA 2048"
    if cert.public_key() != key.public_key():
        return "the certificate does not match the key"
    if cert.not_valid_after_utc - RENEW_BEFORE <= now:
        return f"expired or expiring on {cert.not_valid_after_utc:%Y-%m-%d}"
    if cert.not_valid_before_utc > now:
        return "not valid yet"
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature):
        return "not self-signed"
    return None


def _write_private(path: Path, data: bytes, mode: int) -> None:
    # Written aside then renamed so a reader never sees half a key.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_or_create(run_path: str, now: datetime.datetime | None = None) -> CertificatePair:
    """The stored certificate when still good, else a new one written to the run path."""
    now = now or datetime.datetime.now(datetime.UTC)
    cert_path, key_path = cert_paths(run_path)
    try:
        cert_pem, key_pem = cert_path.read_bytes(), key_path.read_bytes()
    except FileNotFoundError:
        problem: str | None = "missing"
    except OSError as exc:
        problem = f"unreadable: {exc.strerror or exc}"
    else:
        problem = reusable_problem(cert_pem, key_pem, now)
        if problem is None:
            return CertificatePair(cert_path, key_path, cert_pem, key_pem)
    if problem != "missing":
        log.warn(
            "Replacing the API certificate {path}: {problem}", path=str(cert_path), problem=problem
        )
    cert_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    cert_pem, key_pem = generate()
    _write_private(key_path, key_pem, 0o600)
    _write_private(cert_path, cert_pem, 0o644)
    return CertificatePair(cert_path, key_path, cert_pem, key_pem)

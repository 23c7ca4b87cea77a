"""The server's TLS settings: TLS 1.2 at least, 1.3 offered, our self-signed certificate."""

from __future__ import annotations

from OpenSSL import crypto
from twisted.internet import ssl

from plugins.ipc_api.certificate import CertificatePair


def server_options(pair: CertificatePair) -> ssl.CertificateOptions:
    return ssl.CertificateOptions(
        privateKey=crypto.load_privatekey(crypto.FILETYPE_PEM, pair.key_pem),
        certificate=crypto.load_certificate(crypto.FILETYPE_PEM, pair.cert_pem),
        raiseMinimumTo=ssl.TLSVersion.TLSv1_2,
    )

"""Building X.509 certificates with ``cryptography``: keys, self-signed or CA-signed
certificates with subject alternative names, PEM encoding and writing.

Two users: :mod:`informer._http.tls` (the self-signed serving certificate of the secure
metrics endpoint) and ``informer.testing``'s control plane (its CA, the API server's
serving certificate, client certificates, service-account keys).

Certificates use ECDSA P-256 keys (fast to generate, accepted by Go's TLS stack and by
Python's ``ssl``), SHA-256 signatures, a random serial, and are valid from
:data:`BACKDATE` before now (clocks that disagree a little) for :data:`VALIDITY`. A CA
certificate may sign certificates (``keyCertSign``, ``cRLSign``); any other is a leaf
(``digitalSignature`` only) whose extended key usages say what it serves. Private keys
are written ``0600``, certificates and public keys ``0644``.

Needs the ``cryptography`` package (a runtime dependency); importing this module imports
it, so :mod:`informer._http.tls` imports this module only when it generates a
certificate.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeAlias

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

__all__ = [
    "BACKDATE",
    "VALIDITY",
    "Issuer",
    "KeyPair",
    "PrivateKey",
    "alt_names",
    "build_certificate",
    "certificate_pem",
    "new_key",
    "private_key_pem",
    "public_key_pem",
    "subject_name",
    "write_pem",
]

PrivateKey: TypeAlias = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
"""The private keys this module encodes: P-256 for certificates, RSA for the
service-account key pair a control plane signs tokens with."""

VALIDITY: Final = datetime.timedelta(days=365)
"""How long a certificate is valid, from now."""

BACKDATE: Final = datetime.timedelta(hours=1)
"""How long before now a certificate becomes valid: certificates are used the second
they exist, by processes whose clocks may disagree a little."""


@dataclass(frozen=True)
class Issuer:
    """A CA that signs certificates: its certificate and its private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key, both PEM-encoded."""

    cert_pem: bytes
    key_pem: bytes

    def write(self, cert_path: Path, key_path: Path) -> None:
        """Write the certificate (``0644``) and the key (``0600``), replacing existing
        files."""
        write_pem(cert_path, self.cert_pem, private=False)
        write_pem(key_path, self.key_pem, private=True)


def new_key() -> ec.EllipticCurvePrivateKey:
    """A fresh ECDSA P-256 private key."""
    return ec.generate_private_key(ec.SECP256R1())


def subject_name(common_name: str, *, organizations: Sequence[str] = ()) -> x509.Name:
    """A subject with one ``O`` per organization, then the ``CN``."""
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def alt_names(hosts: Iterable[str]) -> list[x509.GeneralName]:
    """Subject alternative names for ``hosts``: IP literals as IP addresses, anything else
    as a DNS name, in order."""
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def build_certificate(
    key: ec.EllipticCurvePrivateKey,
    *,
    subject: x509.Name,
    issuer: Issuer | None = None,
    ca: bool = False,
    usages: Sequence[x509.ObjectIdentifier] = (),
    hosts: Sequence[str] = (),
) -> x509.Certificate:
    """A certificate for ``key``'s public half, named ``subject``.

    Signed by ``issuer`` (then carrying its authority key identifier), or self-signed by
    ``key`` when ``issuer`` is ``None``. ``ca=True`` makes a CA (basic constraints,
    ``keyCertSign``, a subject key identifier); otherwise a leaf whose extended key
    usages are ``usages`` (e.g. ``ExtendedKeyUsageOID.SERVER_AUTH``). ``hosts`` become
    its subject alternative names (:func:`alt_names`), none when empty.
    """
    now = datetime.datetime.now(datetime.UTC)
    public = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject if issuer is None else issuer.cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
    if ca:
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(public), critical=False
        )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    if hosts:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(alt_names(hosts)), critical=False
        )
    signer = key if issuer is None else issuer.key
    return builder.sign(signer, hashes.SHA256())


def certificate_pem(cert: x509.Certificate) -> bytes:
    """``cert``, PEM-encoded."""
    return cert.public_bytes(serialization.Encoding.PEM)


def private_key_pem(key: PrivateKey) -> bytes:
    """``key``, PEM-encoded as unencrypted PKCS#8."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_key_pem(key: PrivateKey) -> bytes:
    """The public half of ``key``, PEM-encoded as SubjectPublicKeyInfo."""
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def write_pem(path: Path, data: bytes, *, private: bool) -> None:
    """Write ``data`` to ``path``, replacing an existing file; mode ``0600`` when
    ``private`` (a key), else ``0644``. A new private file is never readable by others,
    not even while it is written."""
    mode = 0o600 if private else 0o644
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, mode)

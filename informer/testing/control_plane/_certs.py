"""Certificates for the local control plane, generated with ``cryptography``.

Everything here is throw-away test material: a self-signed CA, a serving certificate for
kube-apiserver, client certificates whose subject carries the Kubernetes identity
(``CN`` = user name, ``O`` = groups, which is how kube-apiserver's x509 authenticator
reads them), and the RSA key pair that signs and verifies service-account tokens.

Certificates use ECDSA P-256 keys (fast to generate, accepted by Go's TLS stack and
by Python's ``ssl``); the service-account key pair is RSA 2048 because that is what
every token consumer expects. Files are written ``0600`` for private keys.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "DEFAULT_SERVING_HOSTS",
    "CertificateAuthority",
    "KeyPair",
    "write_service_account_keys",
]

#: Names and addresses the apiserver's serving certificate is valid for: the loopback
#: addresses the tests dial, plus the in-cluster names and the first address of the
#: default service range (``10.0.0.0/24``), as a real cluster's certificate would hold.
DEFAULT_SERVING_HOSTS: tuple[str, ...] = (
    "127.0.0.1",
    "::1",
    "localhost",
    "10.0.0.1",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster",
    "kubernetes.default.svc.cluster.local",
)

_VALIDITY = datetime.timedelta(days=365)
# Tolerate clocks that disagree a little (certificates are used the second they exist).
_BACKDATE = datetime.timedelta(hours=1)


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key, both PEM-encoded."""

    cert_pem: bytes
    key_pem: bytes

    def write(self, cert_path: Path, key_path: Path) -> None:
        """Write the certificate (``0644``) and the key (``0600``), replacing existing files."""
        _write(cert_path, self.cert_pem, 0o644)
        _write(key_path, self.key_pem, 0o600)


class CertificateAuthority:
    """A self-signed CA that issues serving and client certificates.

    Instances are immutable after creation; issuing is thread-safe.
    """

    def __init__(self, common_name: str = "kube-informer-test-ca") -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = _now()
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + _VALIDITY)
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
                x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )

    @property
    def cert_pem(self) -> bytes:
        """The CA certificate, PEM-encoded (what clients trust and ``--client-ca-file`` holds)."""
        return self._cert.public_bytes(serialization.Encoding.PEM)

    def issue_serving(self, hosts: Iterable[str] = DEFAULT_SERVING_HOSTS) -> KeyPair:
        """A server certificate whose SANs are ``hosts`` (IP literals become IP SANs)."""
        hosts = list(hosts)
        sans: list[x509.GeneralName] = []
        for host in hosts:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                sans.append(x509.DNSName(host))
        common_name = next((h for h in hosts if not _is_ip(h)), "kube-apiserver")
        return self._issue(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]),
            usages=[ExtendedKeyUsageOID.SERVER_AUTH],
            sans=sans,
        )

    def issue_client(self, user: str, groups: Sequence[str] = ()) -> KeyPair:
        """A client certificate for Kubernetes user ``user`` in ``groups``.

        kube-apiserver maps ``CN`` to the user name and each ``O`` to a group; a
        certificate with ``O=system:masters`` is a cluster admin that RBAC never denies.
        """
        attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups]
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, user))
        return self._issue(x509.Name(attributes), usages=[ExtendedKeyUsageOID.CLIENT_AUTH], sans=[])

    def _issue(
        self,
        subject: x509.Name,
        *,
        usages: list[x509.ObjectIdentifier],
        sans: list[x509.GeneralName],
    ) -> KeyPair:
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
        return KeyPair(cert_pem=cert.public_bytes(serialization.Encoding.PEM), key_pem=_pem(key))


def write_service_account_keys(private_path: Path, public_path: Path) -> None:
    """Write a fresh RSA 2048 key pair for service-account tokens.

    ``private_path`` feeds ``--service-account-signing-key-file`` (``0600``),
    ``public_path`` feeds ``--service-account-key-file``.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write(private_path, _pem(key), 0o600)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _write(public_path, public, 0o644)


def _pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)

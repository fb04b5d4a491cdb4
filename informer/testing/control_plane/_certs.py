"""Certificates for the local control plane, built by :mod:`informer._http.certs`.

Everything here is throw-away test material: a self-signed CA, a serving certificate for
kube-apiserver, client certificates whose subject carries the Kubernetes identity
(``CN`` = user name, ``O`` = groups, which is how kube-apiserver's x509 authenticator
reads them), and the RSA key pair that signs and verifies service-account tokens (RSA
2048 because that is what every token consumer expects). Private keys are written
``0600``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from ..._http.certs import (
    Issuer,
    KeyPair,
    build_certificate,
    certificate_pem,
    new_key,
    private_key_pem,
    public_key_pem,
    subject_name,
    write_pem,
)

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


class CertificateAuthority:
    """A self-signed CA that issues serving and client certificates.

    Instances are immutable after creation; issuing is thread-safe.
    """

    def __init__(self, common_name: str = "kube-informer-test-ca") -> None:
        key = new_key()
        cert = build_certificate(key, subject=subject_name(common_name), ca=True)
        self._issuer = Issuer(cert=cert, key=key)

    @property
    def cert_pem(self) -> bytes:
        """The CA certificate, PEM-encoded (what clients trust and ``--client-ca-file`` holds)."""
        return certificate_pem(self._issuer.cert)

    def issue_serving(self, hosts: Iterable[str] = DEFAULT_SERVING_HOSTS) -> KeyPair:
        """A server certificate whose SANs are ``hosts`` (IP literals become IP SANs)."""
        hosts = list(hosts)
        common_name = next((h for h in hosts if not _is_ip(h)), "kube-apiserver")
        return self._issue(
            subject_name(common_name), usage=ExtendedKeyUsageOID.SERVER_AUTH, hosts=hosts
        )

    def issue_client(self, user: str, groups: Sequence[str] = ()) -> KeyPair:
        """A client certificate for Kubernetes user ``user`` in ``groups``.

        kube-apiserver maps ``CN`` to the user name and each ``O`` to a group; a
        certificate with ``O=system:masters`` is a cluster admin that RBAC never denies.
        """
        return self._issue(
            subject_name(user, organizations=groups), usage=ExtendedKeyUsageOID.CLIENT_AUTH
        )

    def _issue(
        self, subject: x509.Name, *, usage: x509.ObjectIdentifier, hosts: Sequence[str] = ()
    ) -> KeyPair:
        key = new_key()
        cert = build_certificate(
            key, subject=subject, issuer=self._issuer, usages=[usage], hosts=hosts
        )
        return KeyPair(cert_pem=certificate_pem(cert), key_pem=private_key_pem(key))


def write_service_account_keys(private_path: Path, public_path: Path) -> None:
    """Write a fresh RSA 2048 key pair for service-account tokens.

    ``private_path`` feeds ``--service-account-signing-key-file`` (``0600``),
    ``public_path`` feeds ``--service-account-key-file``.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    write_pem(private_path, private_key_pem(key), private=True)
    write_pem(public_path, public_key_pem(key), private=False)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True

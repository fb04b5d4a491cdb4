"""``informer._http.certs``: the certificates it builds verify as a TLS client checks
them (a CA's leaves, for the names they carry), the self-signed serving certificate of
``--metrics-secure`` is a leaf for its hosts, and PEM files get their modes."""

from __future__ import annotations

import datetime
import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from informer._http import certs
from informer._http.tls import _self_signed

pytestmark = pytest.mark.timeout(30)


def ca(name: str) -> certs.Issuer:
    key = certs.new_key()
    return certs.Issuer(
        cert=certs.build_certificate(key, subject=certs.subject_name(name), ca=True), key=key
    )


def leaf(issuer: certs.Issuer, hosts: list[str]) -> x509.Certificate:
    return certs.build_certificate(
        certs.new_key(),
        subject=certs.subject_name("server"),
        issuer=issuer,
        usages=[ExtendedKeyUsageOID.SERVER_AUTH],
        hosts=hosts,
    )


def verify(
    trusted: certs.Issuer, cert: x509.Certificate, name: x509.DNSName | x509.IPAddress
) -> None:
    verifier = PolicyBuilder().store(Store([trusted.cert])).build_server_verifier(name)
    verifier.verify(cert, [])


@pytest.mark.parametrize(
    "name",
    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("::1"))],
    ids=["dns", "ip"],
)
def test_a_leaf_of_a_ca_verifies_for_its_hosts(name: x509.DNSName | x509.IPAddress) -> None:
    issuer = ca("test-ca")
    verify(issuer, leaf(issuer, ["localhost", "127.0.0.1", "::1"]), name)


def test_a_leaf_does_not_verify_for_another_ca_or_another_name() -> None:
    issuer, stranger = ca("test-ca"), ca("other-ca")
    cert = leaf(issuer, ["localhost"])
    with pytest.raises(VerificationError):
        verify(stranger, cert, x509.DNSName("localhost"))
    with pytest.raises(VerificationError):
        verify(issuer, cert, x509.DNSName("example.com"))


def test_the_self_signed_serving_certificate() -> None:
    pair = _self_signed(["localhost", "127.0.0.1"])
    cert = x509.load_pem_x509_certificate(pair.cert_pem)
    assert cert.issuer == cert.subject
    common_name = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert str(common_name).startswith("localhost@")
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.SERVER_AUTH]
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    now = datetime.datetime.now(datetime.UTC)
    assert cert.not_valid_before_utc < now < cert.not_valid_after_utc
    assert cert.not_valid_after_utc - now > datetime.timedelta(days=364)


@pytest.mark.parametrize(("private", "mode"), [(True, 0o600), (False, 0o644)], ids=["key", "cert"])
def test_write_pem_replaces_the_file_with_its_mode(
    tmp_path: Path, private: bool, mode: int
) -> None:
    path = tmp_path / "file.pem"
    path.write_bytes(b"old and longer")
    path.chmod(0o666)
    certs.write_pem(path, b"new", private=private)
    assert path.read_bytes() == b"new"
    assert stat.S_IMODE(path.stat().st_mode) == mode

"""``informer._rest.credentials``: token and certificate files re-read as client-go does, and
the AuthStatus of a client's answers (the real-server side is in test_transport_real.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from informer._exceptions import ConfigError
from informer._rest.credentials import (
    TOKEN_FILE_LEEWAY,
    TOKEN_FILE_PERIOD,
    AuthStatus,
    CertFiles,
    ClientCredentials,
    FileToken,
    TokenFileHook,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_token_is_reread_after_period_minus_leeway(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "token"
    path.write_text("one\n")
    token = FileToken(str(path), clock=clock)
    path.write_text("two")
    clock.now += TOKEN_FILE_PERIOD - TOKEN_FILE_LEEWAY - 0.1
    assert token.token() == "one"
    clock.now += 0.1
    assert token.token() == "two"
    assert token.reloads == 1


def test_reset_forces_one_reread(tmp_path: Path, clock: Clock) -> None:
    """After a 401 to a request sent after the token was read, the next token() reads the
    file; a token read after that request was sent is kept (no read per 401)."""
    path = tmp_path / "token"
    path.write_text("one")
    token = FileToken(str(path), clock=clock)
    path.write_text("two")
    clock.now += 1
    sent_at = clock.now
    token.reset_older_than(sent_at)
    assert token.token() == "two"
    path.write_text("three")
    token.reset_older_than(sent_at)  # the same (older) request's 401: the new token stays
    assert token.token() == "two"
    assert token.reloads == 1


def test_unreadable_file_keeps_the_last_token(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "token"
    path.write_text("one")
    token = FileToken(str(path), clock=clock)
    with capture_logs() as logs:
        for content in (None, "", None):
            if content is None:
                path.unlink(missing_ok=True)
            else:
                path.write_text(content)
            clock.now += TOKEN_FILE_PERIOD
            assert token.token() == "one"
        path.write_text("two")
        clock.now += TOKEN_FILE_PERIOD
        assert token.token() == "two"
    events = [e["event"] for e in logs]
    assert events == ["token_file.unreadable", "token_file.readable", "token_file.rotated"]
    assert all("one" not in str(e) and "two" not in str(e) for e in logs)


@pytest.mark.parametrize("content", [None, "  \n"], ids=["missing", "empty"])
def test_unusable_file_at_start_is_config_error(tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "token"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=f"token file {str(path)!r} cannot be used"):
        FileToken(str(path))


def test_hook_sets_the_bearer_token(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("abc\n")

    class Cfg:
        def __init__(self) -> None:
            self.api_key: dict[str, str] = {}

    cfg = Cfg()
    TokenFileHook(FileToken(str(path)))(cfg)
    assert cfg.api_key == {"BearerToken": "Bearer abc"}


def test_cert_files_change_when_due_or_forced(tmp_path: Path, clock: Clock) -> None:
    cert, key = tmp_path / "c.crt", tmp_path / "c.key"
    cert.write_bytes(b"cert-1")
    key.write_bytes(b"key-1")
    files = CertFiles(str(cert), str(key), period=300, clock=clock)
    assert not files.changed(force=True)
    key.write_bytes(b"key-2")
    clock.now += 299
    assert not files.changed()  # not due
    clock.now += 1
    assert files.changed()
    assert files.changed(force=True)  # offered again until accepted
    files.accept()
    assert not files.changed(force=True)
    os.unlink(cert)
    assert not files.changed(force=True)  # unreadable: keep what is in use


def test_client_credentials_reload_certificate_on_401(tmp_path: Path) -> None:
    """A 401 has the certificate files checked at once; a pair that does not load is
    kept out (and offered again at the next check)."""
    from informer.testing.control_plane._certs import CertificateAuthority

    ca = CertificateAuthority()
    cert, key = tmp_path / "c.crt", tmp_path / "c.key"
    ca.issue_client("one").write(cert, key)

    class Cfg:
        ssl_ca_cert = None
        cert_file = str(cert)
        key_file = str(key)
        verify_ssl = True
        refresh_api_key_hook = None

    credentials = ClientCredentials(Cfg())
    first = credentials.ssl_context()
    credentials.answered(401, 0.0)
    assert credentials.ssl_context() is first  # unchanged files
    cert.write_bytes(ca.issue_client("two").cert_pem)  # the key does not match yet
    credentials.answered(401, 0.0)
    assert credentials.ssl_context() is first
    ca.issue_client("two").write(cert, key)
    credentials.answered(401, 0.0)
    second = credentials.ssl_context()
    assert second is not first
    assert credentials.auth.certificate_reloads == 1
    credentials.answered(200, 0.0)
    assert credentials.ssl_context() is second


def test_auth_status_streaks() -> None:
    status = AuthStatus()
    assert status.failing_for() == 0.0
    status.record(200)
    assert status.last_success_at is not None and status.consecutive_failures == 0
    status.record(401)
    since = status.failing_since
    assert since is not None
    status.record(403)
    status.record(503)  # says nothing about the credentials
    assert (status.consecutive_failures, status.failing_since) == (2, since)
    assert (status.unauthorized_total, status.forbidden_total) == (1, 1)
    assert status.last_failure_status == 403
    assert status.failing_for(since + 5) == 5
    status.record(404)  # authenticated and authorized: the object is just missing
    assert (status.consecutive_failures, status.failing_since) == (0, None)
    assert status.failing_for() == 0.0
    assert (status.unauthorized_total, status.forbidden_total) == (1, 1)

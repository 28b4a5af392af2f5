"""The e-mail digest over STARTTLS and implicit TLS, with real certificates.

A throwaway CA (trustme) signs the loopback server's certificate; the client
trusts it through ``SSL_CERT_FILE`` exactly as it would trust a system CA, so
certificate and host-name checks stay on.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from tests.conftest import assert_one_line_error
from tests.publish.conftest import ENV, add_post, write_config
from tests.publish.test_webhook_email import email_dest
from tests.servers.smtp_server import SmtpServer


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


def _server(ca: trustme.CA, tls: str) -> SmtpServer:
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return SmtpServer(user="digest", password="smtp-pw", tls=tls, server_context=context)


@pytest.fixture(params=["starttls", "ssl"])
def secure_smtp(request: pytest.FixtureRequest, ca: trustme.CA) -> Iterator[SmtpServer]:
    with _server(ca, request.param) as server:
        server.security = request.param  # type: ignore[attr-defined]
        yield server


def test_digest_over_tls(
    waikan, home: Path, open_ws, secure_smtp: SmtpServer, ca_file: Path
) -> None:  # type: ignore[no-untyped-def]
    security = secure_smtp.security  # type: ignore[attr-defined]
    write_config(home, {"mail": email_dest(secure_smtp, security=security)})
    add_post(open_ws(), 1)
    env = {**ENV, "WAIKAN_SMTP_PASSWORD": "smtp-pw", "SSL_CERT_FILE": str(ca_file)}
    result = waikan("publish", env=env)
    assert result.code == 0, result.err
    assert len(secure_smtp.messages) == 1
    assert secure_smtp.logins == [("digest", True)]


def test_untrusted_certificate_is_refused(
    waikan, home: Path, open_ws, secure_smtp: SmtpServer
) -> None:  # type: ignore[no-untyped-def]
    security = secure_smtp.security  # type: ignore[attr-defined]
    write_config(home, {"mail": email_dest(secure_smtp, security=security)})
    add_post(open_ws(), 1)
    result = waikan("publish", env={**ENV, "WAIKAN_SMTP_PASSWORD": "smtp-pw"})
    assert_one_line_error(result)
    assert "CERTIFICATE_VERIFY_FAILED" in result.err or "certificate" in result.err.lower()
    assert secure_smtp.messages == [] and secure_smtp.logins == []

"""A real SMTP server on loopback (aiosmtpd) with AUTH, keeping what it receives."""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SmtpServer:
    """``SmtpServer(user="digest", password="pw")``; ``messages`` are parsed e-mails."""

    def __init__(
        self,
        *,
        user: str | None = None,
        password: str | None = None,
        tls: str | None = None,
        server_context: ssl.SSLContext | None = None,
    ) -> None:
        """``tls``: ``"starttls"`` (required before AUTH) or ``"ssl"`` (implicit TLS)."""
        self.user, self.password = user, password
        self.messages: list[EmailMessage] = []
        self.envelopes: list[dict[str, Any]] = []
        self.logins: list[tuple[str, bool]] = []
        server = self

        class Handler:
            async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
                server.envelopes.append(
                    {
                        "from": envelope.mail_from,
                        "to": list(envelope.rcpt_tos),
                        "data": envelope.content,
                    }
                )
                parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
                assert isinstance(parsed, EmailMessage)
                server.messages.append(parsed)
                return "250 Message accepted for delivery"

        def authenticator(
            _server: Any, _session: Any, _envelope: Any, mechanism: str, data: Any
        ) -> AuthResult:
            if not isinstance(data, LoginPassword):
                return AuthResult(success=False, handled=False)
            ok = data.login.decode() == self.user and data.password.decode() == self.password
            self.logins.append((data.login.decode(), ok))
            return AuthResult(success=ok, handled=False)  # False: aiosmtpd answers 535

        kwargs: dict[str, Any] = {}
        if user is not None:
            kwargs = {
                "authenticator": authenticator,
                # aiosmtpd only counts STARTTLS as TLS; an implicit-TLS socket is TLS already.
                "auth_require_tls": tls == "starttls",
                "auth_required": True,
            }
        if tls == "starttls":
            kwargs.update(tls_context=server_context, require_starttls=True)
        elif tls == "ssl":
            kwargs.update(ssl_context=server_context)
        self.port = _free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, **kwargs)

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

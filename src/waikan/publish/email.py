"""E-mail digest destination: new posts gathered into one HTML + plain-text message.

``schedule`` says when a digest goes out: ``daily`` (at ``at``, local time of
the destination's ``timezone``), ``hourly`` (at minute ``at``), or ``now``
(every run mails what is new). SMTP with ``starttls`` (default), ``ssl`` or
``none``; the password only from ``WAIKAN_SMTP_PASSWORD``. A digest is one
send for the outbox: its rows share a batch id, and a crash during the SMTP
dialogue leaves that one digest ``uncertain``.
"""

from __future__ import annotations

import contextlib
import html
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from waikan.errors import ConfigError, PublishError
from waikan.models import Post
from waikan.plugins import Registry
from waikan.publish.base import DeliveryUncertain, Option, Publisher
from waikan.publish.cadence import last_slot
from waikan.publish.config import parse_hhmm
from waikan.publish.outbox import Journal
from waikan.render.post import meta_line, title_line

_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


class EmailPublisher(Publisher):
    kind = "email"
    secret_env = "WAIKAN_SMTP_PASSWORD"
    secret_key = "password"
    batch = True
    options = (
        Option("smtp_host", "str", "", "SMTP server host name.", required=True),
        Option(
            "smtp_port", "int", 0, "SMTP port; 0: 587 (starttls), 465 (ssl), 25 (none).", minimum=0
        ),
        Option(
            "security",
            "str",
            "starttls",
            "Transport security.",
            choices=("starttls", "ssl", "none"),
        ),
        Option("username", "str", "", "SMTP login name; empty: no login."),
        Option("from", "str", "", "Sender address.", required=True),
        Option("to", "list", [], "Recipient addresses.", required=True),
        Option(
            "schedule", "str", "daily", "When digests go out.", choices=("daily", "hourly", "now")
        ),
        Option("at", "str", "07:00", "Local time of the daily digest (HH:MM; hourly: the minute)."),
        Option(
            "subject", "str", "{channel} 每日摘要 {date}", "Subject; {channel}, {date}, {count}."
        ),
        Option("timeout", "float", 30.0, "Seconds for the SMTP dialogue.", minimum=0.1),
    )

    @classmethod
    def validate(cls, options: Mapping[str, Any], prefix: str) -> None:
        parse_hhmm(str(options["at"]), f"{prefix}.at")
        for addr in [options["from"], *options["to"]]:
            if "@" not in str(addr) or any(c in str(addr) for c in "\r\n"):
                raise ConfigError(f"invalid address in {prefix}: {addr!r}")

    def check(self) -> None:
        if self.dest.options["username"] and not self.dest.secret:
            raise PublishError(f"{self.secret_env} is not set (needed to log in)")

    def due(self, last_sent: datetime | None, now: datetime) -> bool:
        schedule = str(self.dest.options["schedule"])
        if schedule == "now" or last_sent is None:
            return True
        at = parse_hhmm(str(self.dest.options["at"]), "at")
        return last_sent < last_slot(schedule, at, self.dest, now)

    # -- the message -------------------------------------------------------------------
    def message(self, posts: Sequence[Post]) -> EmailMessage:
        o = self.dest.options
        local = self.ctx.now().astimezone(self.dest.zone)
        subject = str(o["subject"]).format(
            channel=self.ctx.channel, date=local.strftime("%Y-%m-%d"), count=len(posts)
        )
        msg = EmailMessage()
        msg["Subject"] = subject
        msg["From"] = str(o["from"])
        msg["To"] = ", ".join(o["to"])
        msg["Date"] = formatdate(local.timestamp(), localtime=False)
        msg["Message-ID"] = make_msgid(domain="waikan.digest")
        msg.set_content(self.text(posts, subject))
        msg.add_alternative(self.html(posts, subject), subtype="html")
        return msg

    def text(self, posts: Sequence[Post], subject: str) -> str:
        parts = [subject, ""]
        for post in posts:
            parts += [title_line(post), meta_line(post), ""]
            parts += [p for p in post.summary]
            links = [u for u in (self.ctx.page_url(post), post.url) if u]
            parts += [*links, "", "—" * 20, ""]
        return "\n".join(parts).rstrip() + "\n"

    def html(self, posts: Sequence[Post], subject: str) -> str:
        e = html.escape
        items = []
        for post in posts:
            link = self.ctx.page_url(post) or post.url
            title = e(title_line(post))
            head = f'<a href="{e(link)}">{title}</a>' if link else title
            summary = "".join(f"<p>{e(p)}</p>" for p in post.summary)
            original = f'<p><a href="{e(post.url)}">原文</a></p>' if post.url else ""
            items.append(
                f"<article><h2>{head}</h2><p><small>{e(meta_line(post))}</small></p>"
                f"{summary}{original}</article><hr>"
            )
        return (
            '<!doctype html><html lang="zh"><head><meta charset="utf-8">'
            f"<title>{e(subject)}</title></head><body><h1>{e(subject)}</h1>"
            + "".join(items)
            + "</body></html>\n"
        )

    # -- SMTP --------------------------------------------------------------------------
    def _connect(self) -> smtplib.SMTP:
        o = self.dest.options
        security = str(o["security"])
        port = int(o["smtp_port"]) or _PORTS[security]
        timeout = float(o["timeout"])
        host = str(o["smtp_host"])
        context = ssl.create_default_context()
        try:
            smtp: smtplib.SMTP
            if security == "ssl":
                smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
            else:
                smtp = smtplib.SMTP(host, port, timeout=timeout)
                if security == "starttls":
                    smtp.starttls(context=context)
            if o["username"]:
                smtp.login(str(o["username"]), self.dest.secret)
        except smtplib.SMTPAuthenticationError as exc:
            raise PublishError(
                f"SMTP server {host}:{port} refused login for {o['username']!r}: "
                f"{exc.smtp_code} {_text(exc.smtp_error)}"
            ) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise PublishError(f"SMTP server {host}:{port}: {exc}") from None
        except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
            raise PublishError(f"SMTP server {host}:{port} unreachable: {_why(exc)}") from None
        return smtp

    def send_batch(self, posts: Sequence[Post], journal: Journal) -> None:
        msg = self.message(posts)
        smtp = self._connect()
        try:
            journal.begin("send", 0, kind="digest", message_id=str(msg["Message-ID"]))
            try:
                refused = smtp.send_message(msg)
            except smtplib.SMTPRecipientsRefused as exc:
                raise PublishError(f"every recipient refused: {_why(exc)}") from None
            except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
                raise PublishError(f"SMTP server refused the digest: {_why(exc)}") from None
            except (TimeoutError, smtplib.SMTPServerDisconnected, OSError) as exc:
                raise DeliveryUncertain(f"SMTP dialogue broke off: {_why(exc)}") from None
            journal.done(
                {"kind": "digest", "id": str(msg["Message-ID"]), "refused": sorted(refused)}
            )
        finally:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                smtp.quit()

    def send(self, post: Post, journal: Journal) -> None:
        self.send_batch([post], journal)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {_text(exc)}".splitlines()[0]


def register(registry: Registry) -> None:
    registry.add_publisher("email", EmailPublisher)

"""Webhook and e-mail digest destinations, and one destination down among three."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.conftest import assert_one_line_error
from tests.publish.conftest import (
    CHAT,
    ENV,
    SECRET,
    add_post,
    telegram_dest,
    webhook_dest,
    write_config,
)
from tests.servers.smtp_server import SmtpServer
from tests.servers.telegram_server import TelegramServer
from tests.servers.webhook_server import WebhookReceiver

from waikan.publish import outbox

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer(user="digest", password="smtp-pw") as server:
        yield server


def email_dest(smtp: SmtpServer, **extra: object) -> dict[str, object]:
    return {
        "type": "email",
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp.port,
        "security": "none",
        "username": "digest",
        "from": "waikan@example.org",
        "to": ["a@example.org", "b@example.org"],
        "schedule": "now",
        **extra,
    }


SMTP_ENV = {**ENV, "WAIKAN_SMTP_PASSWORD": "smtp-pw"}


def test_webhook_body_is_signed_and_complete(
    waikan, home: Path, hook: WebhookReceiver, open_ws
) -> None:  # type: ignore[no-untyped-def]
    write_config(home, {"hook": webhook_dest(hook)})
    ws = open_ws()
    aid = add_post(ws, 1, title='Title with <tags> & "quotes"')
    hook.fail(500, times=1)
    result = waikan("publish", env=ENV)
    assert result.code == 0, result.err
    assert [r["status"] for r in hook.requests] == [500, 204]
    # the same delivery id on the retry: receivers can drop repeats
    assert len({r["headers"]["x-waikan-delivery"] for r in hook.requests}) == 1
    req = hook.requests[-1]
    mac = hmac.new(
        SECRET.encode(),
        req["headers"]["x-waikan-timestamp"].encode() + b"." + req["body"],
        hashlib.sha256,
    ).hexdigest()
    assert req["headers"]["x-waikan-signature"] == f"sha256={mac}"
    body = json.loads(req["body"])
    assert body["event"] == "post.published" and body["revision"] == 1
    post = body["post"]
    assert post["id"] == aid and post["title"] == 'Title with <tags> & "quotes"'
    assert post["summary"][0].startswith("这篇报道描述了") and len(post["paragraphs"]) == 3
    assert {"channel", "meta", "published", "url", "caption", "word_count"} <= set(post)
    assert waikan("publish", env=ENV).code == 0 and len(hook.verified()) == 1


def test_webhook_wrong_secret_is_refused_by_receiver(
    waikan, home: Path, hook: WebhookReceiver, open_ws
) -> None:  # type: ignore[no-untyped-def]
    write_config(home, {"hook": webhook_dest(hook)})
    add_post(open_ws(), 1)
    result = waikan("publish", env={**ENV, "WAIKAN_WEBHOOK_SECRET": "wrong"})
    assert_one_line_error(result)
    assert "HTTP 401" in result.err and hook.verified() == []


def test_webhook_to_private_address_refused(
    waikan, home: Path, hook: WebhookReceiver, open_ws
) -> None:  # type: ignore[no-untyped-def]
    write_config(home, {"hook": webhook_dest(hook)})
    (home / "waikan.toml").write_text(
        (home / "waikan.toml")
        .read_text()
        .replace("allow_private_networks = true", "allow_private_networks = false")
    )
    ws = open_ws()
    aid = add_post(ws, 1)
    result = waikan("publish", env=ENV)
    assert_one_line_error(result)
    assert "webhook target refused" in result.err and "private address" in result.err
    assert hook.requests == []
    assert [d.status for d in outbox.deliveries(ws.store, article_id=aid)] == ["pending"]


def test_digest_html_and_text(waikan, home: Path, smtp: SmtpServer, open_ws) -> None:  # type: ignore[no-untyped-def]
    write_config(home, {"mail": email_dest(smtp)})
    ws = open_ws()
    ids = [add_post(ws, n, title=f"Story {n} <&> test") for n in (1, 2, 3)]
    result = waikan("publish", env=SMTP_ENV)
    assert result.code == 0, result.err
    [msg] = smtp.messages
    assert smtp.envelopes[0]["to"] == ["a@example.org", "b@example.org"]
    assert msg["Subject"].startswith("真相集中营 每日摘要")
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    for n in (1, 2, 3):
        assert f"Reuters-Story {n} <&> test" in text
        assert f"Reuters-Story {n} &lt;&amp;&gt; test" in html
    assert "这篇报道描述了" in text and "<script" not in html
    assert all(ws.store.article(i).status == "published" for i in ids)  # type: ignore[union-attr]
    add_post(ws, 4)
    assert waikan("publish", env=SMTP_ENV).code == 0
    assert len(smtp.messages) == 2
    second = smtp.messages[1].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Story number 4" in second and "Story 1" not in second  # each post mailed once


def test_daily_digest_waits_for_its_slot(home: Path, smtp: SmtpServer, open_ws) -> None:  # type: ignore[no-untyped-def]
    from waikan.publish.run import publish

    write_config(
        home, {"mail": email_dest(smtp, schedule="daily", at="07:00", timezone="Asia/Shanghai")}
    )
    ws = open_ws()
    add_post(ws, 1)
    env = SMTP_ENV
    # first digest ever: goes at once
    publish(ws, env=env, now=datetime(2024, 5, 1, 0, 30, tzinfo=UTC))  # 08:30 in Shanghai
    assert len(smtp.messages) == 1
    add_post(ws, 2)
    later = publish(ws, env=env, now=datetime(2024, 5, 1, 22, 0, tzinfo=UTC))  # 06:00 next day
    assert [o.status for o in later.outcomes] == ["deferred"] and len(smtp.messages) == 1
    publish(ws, env=env, now=datetime(2024, 5, 1, 23, 1, tzinfo=UTC))  # 07:01: the slot
    assert len(smtp.messages) == 2
    publish(ws, env=env, now=datetime(2024, 5, 1, 23, 30, tzinfo=UTC))
    assert len(smtp.messages) == 2


def test_smtp_login_refused(waikan, home: Path, smtp: SmtpServer, open_ws) -> None:  # type: ignore[no-untyped-def]
    write_config(home, {"mail": email_dest(smtp)})
    add_post(open_ws(), 1)
    result = waikan("publish", env={**ENV, "WAIKAN_SMTP_PASSWORD": "wrong"})
    assert_one_line_error(result)
    assert "refused login for 'digest': 535" in result.err
    assert "wrong" not in result.err and smtp.messages == []


def test_one_destination_down_does_not_stop_the_others(
    waikan,
    home: Path,
    tg: TelegramServer,
    hook: WebhookReceiver,
    smtp: SmtpServer,
    open_ws,  # type: ignore[no-untyped-def]
) -> None:
    write_config(
        home, {"tg": telegram_dest(tg), "hook": webhook_dest(hook), "mail": email_dest(smtp)}
    )
    ws = open_ws()
    ids = [add_post(ws, n) for n in (1, 2)]
    tg.fail("500", times=50)
    result = waikan("publish", env=SMTP_ENV)
    assert result.code == 1
    assert_one_line_error(result)
    assert "publish.tg (telegram)" in result.err and "500" in result.err
    assert len(hook.verified()) == 2 and len(smtp.messages) == 1
    assert all(ws.store.article(i).status == "approved" for i in ids)  # type: ignore[union-attr]

    tg._faults.clear()
    assert waikan("publish", env=SMTP_ENV).code == 0
    assert len(tg.live(CHAT)) == 2 and len(hook.verified()) == 2 and len(smtp.messages) == 1
    assert all(ws.store.article(i).status == "published" for i in ids)  # type: ignore[union-attr]

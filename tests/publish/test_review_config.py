"""Review actions with their audit trail, destination config validation, cadence."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.conftest import assert_one_line_error
from tests.publish.conftest import EDITED, ENV, add_post, telegram_dest, webhook_dest, write_config
from tests.servers.telegram_server import TelegramServer
from tests.servers.webhook_server import WebhookReceiver

from waikan.publish.cadence import in_quiet_hours
from waikan.publish.config import Destination, parse_hhmm
from waikan.store import schema


def audit_rows(ws, article_id: int) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    t = schema.audit_log
    with ws.store.engine.connect() as c:
        rows = c.execute(
            select(t.c.actor, t.c.action).where(t.c.article_id == article_id).order_by(t.c.id)
        )
        return [(r[0], r[1]) for r in rows]


def test_review_mode_waits_for_an_editor(
    waikan, home: Path, hook: WebhookReceiver, open_ws
) -> None:  # type: ignore[no-untyped-def]
    write_config(home, {"hook": webhook_dest(hook, review="review")})
    ws = open_ws()
    a, b = add_post(ws, 1), add_post(ws, 2)
    assert waikan("publish", env=ENV).code == 0
    assert hook.requests == [] and ws.store.article(a).status == "summarized"  # type: ignore[union-attr]

    env = {**ENV, "WAIKAN_ACTOR": "editor-li"}
    assert waikan("approve", str(a), env=env).out.strip() == f"{a}\tapproved"
    rejected = waikan("reject", str(b), "--reason", "off topic", env=env)
    assert rejected.code == 0, rejected.err
    assert waikan("publish", env=ENV).code == 0
    assert [r["post"]["id"] for r in hook.verified()] == [a]
    assert ws.store.article(a).status == "published"  # type: ignore[union-attr]
    rb = ws.store.article(b)
    assert rb.status == "rejected" and rb.reason == "rejected by editor: off topic"  # type: ignore[union-attr]
    assert audit_rows(ws, a)[0] == ("editor-li", "approve")
    assert audit_rows(ws, b) == [("editor-li", "reject")]


def test_bad_actions_are_one_line_errors(
    waikan, home: Path, hook: WebhookReceiver, open_ws, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    write_config(home, {"hook": webhook_dest(hook)})
    ws = open_ws()
    a = add_post(ws, 1)
    assert waikan("publish", env=ENV).code == 0
    assert_one_line_error(waikan("reject", str(a), env=ENV))  # published: unpublish instead
    assert_one_line_error(waikan("approve", "999", env=ENV))
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    assert_one_line_error(waikan("edit", str(a), "--file", str(empty), env=ENV))
    assert_one_line_error(waikan("edit", str(a), "--file", str(tmp_path / "nope"), env=ENV))
    assert_one_line_error(waikan("publish", "--delivered", "1", env=ENV))
    assert_one_line_error(waikan("publish", "--resolve", "--delivered", "1", env=ENV))


def test_edit_reruns_the_guard_and_is_audited(
    waikan, home: Path, hook: WebhookReceiver, open_ws, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    write_config(home, {"hook": webhook_dest(hook)})
    ws = open_ws()
    a = add_post(ws, 1)
    assert waikan("publish", env=ENV).code == 0
    bad = tmp_path / "bad.txt"
    wrong = (
        *EDITED[:3],
        "这一报道强调了共有999人参加会谈, 也表明双方仍然重视通过外交途径解决问题。",
    )
    bad.write_text("\n\n".join(wrong), encoding="utf-8")
    result = waikan("edit", str(a), "--file", str(bad), env={"WAIKAN_ACTOR": "ed"})
    assert result.code == 3 and "figure 999 is not in the article" in result.err
    assert ws.store.article(a).status == "needs_review"  # type: ignore[union-attr]
    assert waikan("publish", env=ENV).code == 0 and len(hook.verified()) == 1

    good = tmp_path / "good.txt"
    text = "\n\n".join(EDITED).replace("交谈，", "交谈, ")  # ASCII comma: made full-width
    good.write_text(text, encoding="utf-8")
    assert waikan("edit", str(a), "--file", str(good), env={"WAIKAN_ACTOR": "ed"}).code == 0
    assert waikan("publish", env=ENV).code == 0
    updates = hook.verified()
    assert [u["event"] for u in updates] == ["post.published", "post.updated"]
    assert updates[1]["revision"] == 3
    assert updates[1]["post"]["summary"] == list(EDITED)
    actions = [x for x in audit_rows(ws, a) if x[0] == "ed"]
    assert [x[1] for x in actions] == ["edit", "edit-text", "edit", "edit-text"]


def test_unpublish_tells_the_webhook(waikan, home: Path, hook: WebhookReceiver, open_ws) -> None:  # type: ignore[no-untyped-def]
    write_config(home, {"hook": webhook_dest(hook)})
    ws = open_ws()
    a = add_post(ws, 1)
    assert waikan("publish", env=ENV).code == 0
    assert waikan("unpublish", str(a), env=ENV).code == 0
    assert [u["event"] for u in hook.verified()] == ["post.published", "post.deleted"]
    assert ws.store.article(a).reason == "unpublished"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"type": "carrier-pigeon"}, "invalid value for publish.x.type: 'carrier-pigeon'"),
        ({"type": "telegram"}, "publish.x.chat_id is missing"),
        ({"type": "telegram", "chat_id": "not a chat"}, "invalid value for publish.x.chat_id"),
        (
            {"type": "telegram", "chat_id": "@chan", "token": "123:abc"},
            "publish.x.token: secrets are never read from the file; set WAIKAN_TELEGRAM_BOT_TOKEN",
        ),
        ({"type": "webhook", "url": "ftp://x"}, "invalid value for publish.x.url"),
        (
            {"type": "webhook", "url": "http://x", "colour": "red"},
            "unknown setting publish.x.colour",
        ),
        (
            {"type": "webhook", "url": "http://x", "timezone": "Mars/Base"},
            "invalid value for publish.x.timezone: 'Mars/Base'",
        ),
        (
            {"type": "webhook", "url": "http://x", "quiet_hours": "late"},
            "invalid value for publish.x.quiet_hours",
        ),
        (
            {"type": "webhook", "url": "http://x", "max_per_hour": -1},
            "invalid value for publish.x.max_per_hour: -1 (minimum 0)",
        ),
        (
            {"type": "email", "smtp_host": "h", "from": "a@b", "to": ["c@d"], "password": "pw"},
            "secrets are never read from the file; set WAIKAN_SMTP_PASSWORD",
        ),
        (
            {"type": "email", "smtp_host": "h", "from": "a@b", "to": ["c@d"], "security": "tls"},
            "invalid value for publish.x.security: 'tls' (one of starttls, ssl, none)",
        ),
    ],
)
def test_bad_destination_config(waikan, home: Path, body: dict[str, object], message: str) -> None:  # type: ignore[no-untyped-def]
    write_config(home, {"x": body})
    result = waikan("publish", env=ENV)
    assert_one_line_error(result)
    assert message in result.err, result.err
    assert "123:abc" not in result.err and "pw" not in result.err.replace("publish", "")


def test_quiet_hours_in_the_destination_time_zone() -> None:
    dest = Destination(
        id="d",
        type="webhook",
        timezone="Asia/Shanghai",
        quiet_hours=(parse_hhmm("23:00", "q"), parse_hhmm("07:00", "q")),
    )
    assert in_quiet_hours(dest, datetime(2024, 5, 1, 16, 30, tzinfo=UTC))  # 00:30 Shanghai
    assert in_quiet_hours(dest, datetime(2024, 5, 1, 22, 59, tzinfo=UTC))  # 06:59
    assert not in_quiet_hours(dest, datetime(2024, 5, 1, 23, 0, tzinfo=UTC))  # 07:00
    assert not in_quiet_hours(dest, datetime(2024, 5, 1, 14, 59, tzinfo=UTC))  # 22:59


def test_cadence_defers_and_never_drops(home: Path, tg: TelegramServer, open_ws) -> None:  # type: ignore[no-untyped-def]
    from waikan.publish.run import publish

    write_config(
        home,
        {
            "tg": telegram_dest(
                tg, max_per_hour=2, quiet_hours="23:00-07:00", timezone="Asia/Shanghai"
            )
        },
    )
    ws = open_ws()
    ids = [add_post(ws, n) for n in range(1, 6)]
    night = publish(ws, env=ENV, now=datetime(2024, 5, 1, 16, 30, tzinfo=UTC))
    assert {o.status for o in night.outcomes} == {"deferred"} and tg.requests == []
    day = publish(ws, env=ENV, now=datetime.now(UTC).replace(hour=4))  # noon in Shanghai
    assert [o.status for o in day.outcomes].count("sent") == 2
    assert [o.status for o in day.outcomes].count("deferred") == 3
    assert len(tg.live()) == 2
    assert [ws.store.article(i).status for i in ids].count("published") == 2  # type: ignore[union-attr]


def test_every_destination_key_is_documented() -> None:
    from tests.conftest import ROOT

    from waikan.plugins import registry
    from waikan.publish.config import COMMON_OPTIONS

    doc = (ROOT / "docs" / "channels.md").read_text(encoding="utf-8")
    for option in COMMON_OPTIONS:
        assert f"| `{option.key}` |" in doc
    for kind, cls in registry().publishers.items():
        assert f'(`type = "{kind}"`)' in doc
        for option in cls.options:
            assert f"| `{option.key}` |" in doc, (kind, option.key)
        if cls.secret_env:
            assert cls.secret_env in doc

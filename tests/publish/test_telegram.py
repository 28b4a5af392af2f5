"""Telegram destination against the loopback Bot API server (real HTTP, real SQLite)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from tests.conftest import assert_one_line_error
from tests.publish.conftest import CHAT, EDITED, ENV, TOKEN, add_post, telegram_dest, write_config
from tests.servers.telegram_server import TelegramServer, utf16_len

from waikan.publish import outbox
from waikan.render.telegram import post_blocks

LONG = tuple(
    [
        f'Paragraph {i}: officials & aides met <again> to talk about "ties" 😀 — {"x" * 20}. '
        f"Then they left, saying little. " * 6
        for i in range(20)
    ]
    + ["中文长段落没有任何空格或者标点符号" * 300]
)


def plain_of(ws, article_id: int) -> str:  # type: ignore[no-untyped-def]
    from waikan.pipeline import build_post

    post = build_post(ws, article_id)
    return "\n\n".join("".join(s.text for s in b) for b in post_blocks(post))


def test_long_post_arrives_complete_and_in_order(
    waikan, home: Path, tg: TelegramServer, open_ws
) -> None:  # type: ignore[no-untyped-def]
    write_config(home, {"tg": telegram_dest(tg)})
    ws = open_ws()
    aid = add_post(ws, 1, paragraphs=LONG, image_url="https://example.com/lead.jpg")
    expected = plain_of(ws, aid)
    assert len(expected) > 12_000

    result = waikan("publish", env=ENV)
    assert result.code == 0, result.err
    live = tg.live(CHAT)
    assert live[0].kind == "photo" and live[0].photo == "https://example.com/lead.jpg"
    assert live[0].text.startswith("Reuters-Story number 1") and live[0].text.endswith("words")
    texts = [m.text for m in live[1:]]
    assert len(texts) >= 4
    assert all(utf16_len(t) <= 4096 for t in texts)
    # nothing lost, nothing reordered (whitespace at a cut is the only difference)
    assert "".join("".join(texts).split()) == "".join(expected.split())
    assert texts[0].startswith(
        "真相集中营\n\nReuters-Story number 1 about talks\n\nOctober 27, 2023"
    )
    assert 'officials & aides met <again> to talk about "ties" 😀' in texts[1]
    assert ws.store.article(aid).status == "published"  # type: ignore[union-attr]

    again = waikan("publish", env=ENV)
    assert again.code == 0 and len(tg.live(CHAT)) == len(live)  # exactly once


def test_flood_wait_is_honoured(waikan, home: Path, tg: TelegramServer, open_ws) -> None:  # type: ignore[no-untyped-def]
    write_config(home, {"tg": telegram_dest(tg)})
    add_post(open_ws(), 1)
    tg.fail("429", retry_after=1, method="sendMessage")
    result = waikan("publish", env=ENV)
    assert result.code == 0, result.err
    sends = tg.calls("sendMessage")
    assert [r["status"] for r in sends] == [429, 200]
    assert sends[1]["at"] - sends[0]["at"] >= 1.0
    assert len(tg.live(CHAT)) == 1


def test_missing_token_is_one_line_error(waikan, home: Path, tg: TelegramServer, open_ws) -> None:  # type: ignore[no-untyped-def]
    write_config(home, {"tg": telegram_dest(tg)})
    add_post(open_ws(), 1)
    result = waikan("publish", env={})
    assert_one_line_error(result)
    assert "WAIKAN_TELEGRAM_BOT_TOKEN is not set" in result.err
    assert tg.requests == []


def test_wrong_token_and_rejected_chat(waikan, home: Path, tg: TelegramServer, open_ws) -> None:  # type: ignore[no-untyped-def]
    write_config(home, {"tg": telegram_dest(tg, chat_id="@no_such_chat")})
    ws = open_ws()
    aid = add_post(ws, 1)
    result = waikan("publish", env=ENV)
    assert_one_line_error(result)
    assert "chat_id '@no_such_chat' rejected: Bad Request: chat not found" in result.err
    [row] = outbox.deliveries(ws.store, article_id=aid)
    assert row.status == "pending"  # fix the config and run again: nothing is lost

    bad = waikan("publish", env={"WAIKAN_TELEGRAM_BOT_TOKEN": "1:wrong"})
    assert_one_line_error(bad)
    assert "refused the bot token" in bad.err and "1:wrong" not in bad.err


def test_server_error_retried_then_reported(
    waikan, home: Path, tg: TelegramServer, open_ws
) -> None:  # type: ignore[no-untyped-def]
    write_config(home, {"tg": telegram_dest(tg)})
    ws = open_ws()
    aid = add_post(ws, 1)
    tg.fail("500", times=5)
    result = waikan("publish", env=ENV)
    assert_one_line_error(result)
    assert "Bot API error 500" in result.err
    assert tg.live(CHAT) == []
    tg._faults.clear()
    assert waikan("publish", env=ENV).code == 0
    assert len(tg.live(CHAT)) == 1 and ws.store.article(aid).status == "published"  # type: ignore[union-attr]


def test_hang_after_send_is_uncertain_and_resolved_by_a_human(
    waikan,
    home: Path,
    tg: TelegramServer,
    open_ws,  # type: ignore[no-untyped-def]
) -> None:
    write_config(home, {"tg": telegram_dest(tg, timeout=0.5)})
    ws = open_ws()
    aid = add_post(ws, 1, paragraphs=LONG)
    tg.fail("hang_after", method="sendMessage")  # the first message posts, its answer never comes
    first = waikan("publish", env=ENV)
    assert first.code == 1 and "uncertain" in first.err
    assert len(tg.live(CHAT)) == 1
    [row] = outbox.deliveries(ws.store, article_id=aid)
    assert row.status == "uncertain"

    # never repeated blindly
    assert waikan("publish", env=ENV).code == 3
    assert len(tg.live(CHAT)) == 1

    listing = waikan("publish", "--resolve", env=ENV)
    assert listing.code == 3 and f"{row.id}\t{aid}\ttg\tuncertain" in listing.out
    settled = waikan("publish", "--resolve", "--delivered", str(row.id), env=ENV)
    assert settled.code == 0, settled.err
    assert waikan("publish", env=ENV).code == 0
    texts = [m.text for m in tg.live(CHAT)]
    assert "".join("".join(texts).split()) == "".join(plain_of(ws, aid).split())
    assert len(set(texts)) == len(texts)  # no message twice


def test_new_revision_edits_the_sent_messages(
    waikan, home: Path, tg: TelegramServer, open_ws, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    write_config(home, {"tg": telegram_dest(tg)})
    ws = open_ws()
    aid = add_post(ws, 1, paragraphs=LONG)
    assert waikan("publish", env=ENV).code == 0
    before = [m.message_id for m in tg.live(CHAT)]
    new = tmp_path / "summary.txt"
    new.write_text("\n\n".join(EDITED) + "\n", encoding="utf-8")
    edited = waikan("edit", str(aid), "--file", str(new), env=ENV)
    assert edited.code == 0, edited.err
    assert waikan("publish", env=ENV).code == 0
    live = tg.live(CHAT)
    assert [m.message_id for m in live] == before
    assert " ".join(EDITED) in live[0].text
    assert len(tg.calls("editMessageText")) >= 1
    assert ws.store.article(aid).status == "published"  # type: ignore[union-attr]


def test_unpublish_deletes_messages(waikan, home: Path, tg: TelegramServer, open_ws) -> None:  # type: ignore[no-untyped-def]
    write_config(home, {"tg": telegram_dest(tg)})
    ws = open_ws()
    aid = add_post(ws, 1, paragraphs=LONG, image_url="https://example.com/p.jpg")
    other = add_post(ws, 2)
    assert waikan("publish", env=ENV).code == 0
    result = waikan("unpublish", str(aid), env=ENV)
    assert result.code == 0, result.err
    live = tg.live(CHAT)
    assert len(live) == 1 and "Story number 2" in live[0].text
    assert ws.store.article(aid).status == "rejected"  # type: ignore[union-attr]
    assert ws.store.article(other).status == "published"  # type: ignore[union-attr]
    assert waikan("publish", env=ENV).code == 0 and len(tg.live(CHAT)) == 1


def test_token_never_logged_or_stored(
    waikan, home: Path, tg: TelegramServer, open_ws, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    write_config(home, {"tg": telegram_dest(tg)})
    ws = open_ws()
    add_post(ws, 1)
    tg.fail("500", times=1)
    with caplog.at_level(logging.DEBUG), caplog.at_level(logging.DEBUG, logger="httpx"):
        result = waikan("publish", env=ENV)
    assert result.code == 0
    assert "/bot<redacted>/sendMessage" in caplog.text  # httpx did log the URL, redacted
    assert TOKEN not in caplog.text and TOKEN not in result.out + result.err
    assert all(TOKEN not in str(row) for row in ws.store.dump())


def test_lost_send_resolved_as_resend_goes_out_once(
    waikan,
    home: Path,
    tg: TelegramServer,
    open_ws,  # type: ignore[no-untyped-def]
) -> None:
    write_config(home, {"tg": telegram_dest(tg, timeout=0.5)})
    ws = open_ws()
    aid = add_post(ws, 1)
    tg.fail("hang", method="sendMessage")  # never posted, never answered
    assert waikan("publish", env=ENV).code == 1 and tg.live(CHAT) == []
    [row] = outbox.deliveries(ws.store, article_id=aid)
    assert row.status == "uncertain"
    assert waikan("publish", "--resolve", "--resend", str(row.id), env=ENV).code == 0
    assert waikan("publish", env=ENV).code == 0
    assert len(tg.live(CHAT)) == 1 and ws.store.article(aid).status == "published"  # type: ignore[union-attr]


def test_refused_photo_does_not_block_the_text(
    waikan,
    home: Path,
    tg: TelegramServer,
    open_ws,  # type: ignore[no-untyped-def]
) -> None:
    write_config(home, {"tg": telegram_dest(tg)})
    ws = open_ws()
    aid = add_post(ws, 1, image_url="https://example.com/broken.jpg")
    tg.fail("too_long", method="sendPhoto")  # any 400 for the photo
    assert waikan("publish", env=ENV).code == 0
    live = tg.live(CHAT)
    assert [m.kind for m in live] == ["text"] and ws.store.article(aid).status == "published"  # type: ignore[union-attr]

"""The loopback Telegram server is as strict as Telegram: otherwise the tests prove nothing."""

from __future__ import annotations

import httpx
import pytest
from tests.publish.conftest import CHAT, TOKEN
from tests.servers.telegram_server import ParseError, TelegramServer, parse_html


@pytest.mark.parametrize(
    "html",
    [
        "a < b",
        "AT&T",
        "<p>para</p>",
        "<b>open",
        "<b>x</i>",
        "x > y",
        "&nbsp;",
        "<br>",
        '<span class="x">s</span>',
    ],
)
def test_parser_refuses_what_telegram_refuses(html: str) -> None:
    with pytest.raises(ParseError):
        parse_html(html)


def test_parser_decodes_entities_and_counts_utf16() -> None:
    text, entities = parse_html(
        '<b>&lt;1&gt;</b> &amp; &quot;😀&quot; <a href="u?a=1&amp;b=2">l</a>'
    )
    assert text == '<1> & "😀" l'
    assert entities[0] == {"type": "bold", "offset": 0, "length": 3}
    assert entities[1]["url"] == "u?a=1&b=2" and entities[1]["offset"] == 11


def call(server: TelegramServer, method: str, **params: object) -> httpx.Response:
    return httpx.post(f"{server.url}/bot{TOKEN}/{method}", json={"chat_id": CHAT, **params})


def test_limits_after_entity_parsing(tg: TelegramServer) -> None:
    assert call(tg, "sendMessage", text="&amp;" * 4096, parse_mode="HTML").json()["ok"]
    too_long = call(tg, "sendMessage", text="😀" * 2049, parse_mode="HTML").json()
    assert too_long["description"] == "Bad Request: message is too long"
    cap = call(tg, "sendPhoto", photo="x", caption="a" * 1025, parse_mode="HTML").json()
    assert cap["description"] == "Bad Request: message caption is too long"


def test_faults_and_records(tg: TelegramServer) -> None:
    tg.fail("429", retry_after=3)
    answer = call(tg, "sendMessage", text="hi").json()
    assert answer["error_code"] == 429 and answer["parameters"]["retry_after"] == 3
    bad = httpx.post(f"{tg.url}/bot1:wrong/sendMessage", json={"chat_id": CHAT, "text": "x"})
    assert bad.status_code == 401
    assert [r["token_ok"] for r in tg.requests] == [True, False]
    sent = call(tg, "sendMessage", text="hi").json()["result"]["message_id"]
    same = call(tg, "editMessageText", message_id=sent, text="hi").json()
    assert same["description"].startswith("Bad Request: message is not modified")

"""Publishing fixtures: a workspace with summarized posts and loopback destinations."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.servers.telegram_server import TelegramServer
from tests.servers.webhook_server import WebhookReceiver

from waikan import config as config_mod
from waikan.models import Extracted, Summary
from waikan.workspace import Workspace

TOKEN = "123456:TEST-token-never-logged"
SECRET = "webhook-shared-secret"
CHAT = "@waikan_test"

SUMMARY = (
    "这篇报道描述了美国国务卿布林肯与中国外交部长王毅在华盛顿的会晤。",
    "双方同意为预期中的领导人峰会做准备，并讨论了多项议题。",
    "报道指出，会谈涉及中东局势和乌克兰问题。总体而言，双方希望稳定关系。",
    "这一报道强调了高层沟通对管控分歧的重要性。",
)


EDITED = (
    "这篇报道描述了一次官员之间的会晤，双方围绕两国关系进行了简短而坦率的交谈，会谈气氛总体平稳，"
    "各方都表现出继续沟通的意愿。",
    "这次会晤的背景是双方关系近来有所波动，外界普遍关注高层接触能否为缓和紧张局势创造条件，"
    "并为今后的合作奠定基础。",
    "报道指出，官员们在会谈中交换了对若干共同关切问题的看法，并同意保持沟通渠道畅通。总体而言，"
    "双方都希望避免误判，稳定双边关系的发展方向。",
    "这一报道强调了持续对话对于管控分歧和增进互信的重要意义，也表明即使存在分歧，"
    "双方仍然重视通过外交途径解决问题。",
)  # an editor's summary the guard accepts for add_post's articles


def add_post(
    ws: Workspace,
    n: int,
    *,
    paragraphs: tuple[str, ...] | None = None,
    summary: tuple[str, ...] = SUMMARY,
    title: str | None = None,
    source: str | None = "Reuters",
    caption: str | None = "A caption. REUTERS/Photographer",
    image_url: str | None = None,
    published: str | None = "2023-10-27T14:03:40Z",
) -> int:
    """Store one extracted + summarized article straight through the Store API."""
    body = paragraphs or tuple(
        f'Paragraph {i} of story {n}: officials met & talked <briefly> about "ties".'
        for i in range(3)
    )
    ex = Extracted(
        title=title or f"Story number {n} about talks",
        source=source,
        published=published,
        caption=caption,
        paragraphs=body,
        url=f"https://www.reuters.com/world/story-{n}/",
        image_url=image_url,
    )
    rec = ws.store.add_article(
        f"https://www.reuters.com/world/story-{n}/", ex, raw=f"<html>{n}</html>".encode()
    )
    ws.store.add_summary(
        rec.id, Summary(paragraphs=summary, backend="test", model="m", prompt_version="v1")
    )
    return rec.id


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_config(home: Path, dests: dict[str, dict[str, Any]], extra: str = "") -> None:
    home.mkdir(parents=True, exist_ok=True)
    lines = [
        "[channel]",
        'name = "真相集中营"',
        "",
        "[fetch]",
        "allow_private_networks = true",
        "",
        extra,
    ]
    for dest_id, body in dests.items():
        lines.append(f"[publish.{dest_id}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in body.items()]
        lines.append("")
    (home / "waikan.toml").write_text("\n".join(lines), encoding="utf-8")


def telegram_dest(server: TelegramServer, **extra: Any) -> dict[str, Any]:
    return {
        "type": "telegram",
        "chat_id": CHAT,
        "api_base": server.url,
        "min_interval": 0,
        "timeout": 2,
        "max_retries": 1,
        **extra,
    }


def webhook_dest(receiver: WebhookReceiver, **extra: Any) -> dict[str, Any]:
    return {"type": "webhook", "url": receiver.url, "timeout": 2, "retry_backoff": 0.01, **extra}


ENV = {"WAIKAN_TELEGRAM_BOT_TOKEN": TOKEN, "WAIKAN_WEBHOOK_SECRET": SECRET}


@pytest.fixture
def tg() -> Iterator[TelegramServer]:
    with TelegramServer(token=TOKEN, chats={CHAT}) as server:
        server.hang_seconds = 4
        yield server


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(secret=SECRET) as receiver:
        receiver.hang_seconds = 4
        yield receiver


@pytest.fixture
def open_ws(home: Path) -> Iterator[Callable[[], Workspace]]:
    opened: list[Workspace] = []

    def make() -> Workspace:
        ws = Workspace(config_mod.load(home, env={}))
        opened.append(ws)
        return ws

    yield make
    for ws in opened:
        ws.close()

"""Desk actions that reach other servers: regenerate (a loopback model) and publish now."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.render.site_support import BASE_URL, add_post
from tests.servers.openai_server import FakeLLM
from tests.servers.webhook_server import WebhookReceiver
from tests.web.support import PASSWORD, client, csrf_of

from waikan.config import load
from waikan.web import accounts
from waikan.web.serve import WebServer
from waikan.workspace import Workspace

ANSWER = "\n\n".join(
    [
        "这篇报道描述了一则测试新闻，讲述一座海滨小镇如何修复旧码头并重新向公众开放，步行者和垂钓者都回来了。",
        "报道指出，修复工程完成后，当地居民和游客都对码头的重新开放表示欢迎，认为这里再次成为小镇的中心。",
        "报道还提到，码头本周向步行者和垂钓者开放，小镇希望这能吸引更多游客在周末前来参观和休闲。",
        "这一报道强调了社区合作在保护历史建筑方面的重要作用，也说明了公共空间对居民生活的意义。修复后的码头保留了原有的木结构，同时加固了栏杆和照明，让夜晚散步的居民也能感到安心。",
    ]
)


def test_regenerate_makes_one_counted_model_call(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    with FakeLLM(api_key="sk-desk", model="m", answer=ANSWER) as llm:
        ws = Workspace(
            load(
                home,
                env={"WAIKAN_LLM_API_KEY": "sk-desk"},
                overrides={
                    "site.base_url": BASE_URL,
                    "site.images": "false",
                    "llm.base_url": llm.url,
                    "llm.model": "m",
                },
            )
        )
        aid = add_post(ws, 1)
        accounts.add_user(ws.store, "ed", "editor", PASSWORD)
        server = WebServer(ws, "127.0.0.1", 0)
        server.start()
        try:
            with client(server) as c:
                c.post("/desk/login", data={"name": "ed", "password": PASSWORD})
                csrf = csrf_of(c.get(f"/desk/articles/{aid}").text)
                r = c.post(f"/desk/articles/{aid}/regenerate", data={"csrf": csrf})
                assert r.status_code == 303, r.text
        finally:
            server.stop()
        chat = [q for q in llm.requests if q["path"].endswith("/chat/completions")]
        assert len(chat) == 1
        summary = ws.store.current_summary(aid)
        assert summary is not None and summary.backend == "openai"
        assert summary.paragraphs[0].startswith("这篇报道描述了一则测试新闻")
        rows = list(ws.store.dump())
        spend = [r for r in rows if r["table"] == "llm_spend"]
        assert sum(r["calls"] for r in spend) == 1
        audit = [r for r in rows if r["table"] == "audit_log" and r["action"] == "regenerate"]
        assert [a["actor"] for a in audit] == ["ed"]
        ws.close()


def test_publish_now_and_destination_pause(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "ws"
    with WebhookReceiver(secret="s3cret") as hook:
        home.mkdir(parents=True)
        (home / "waikan.toml").write_text(
            f'[publish.hook]\ntype = "webhook"\nurl = "{hook.url}"\nreview = "review"\n'
            "timeout = 5\n",
            encoding="utf-8",
        )
        monkeypatch.setenv("WAIKAN_WEBHOOK_SECRET", "s3cret")
        ws = Workspace(
            load(
                home,
                env={"WAIKAN_WEBHOOK_SECRET": "s3cret"},
                overrides={
                    "site.base_url": BASE_URL,
                    "site.images": "false",
                    "fetch.allow_private_networks": "true",
                },
            )
        )
        aid = add_post(ws, 1)
        token = accounts.issue_token(
            ws.store, accounts.add_user(ws.store, "root", "admin", PASSWORD).name
        )
        server = WebServer(ws, "127.0.0.1", 0)
        server.start()
        try:
            with client(server, headers={"authorization": f"Bearer {token}"}) as c:
                # paused by an admin: the post waits, approved, nothing is sent
                assert c.post("/desk/api/v1/destinations/hook/pause").json()["paused"] is True
                assert "hook" in c.get("/desk/destinations").text
                r = c.post(f"/desk/api/v1/articles/{aid}/publish")
                assert r.status_code == 200, r.text
                assert r.json()["status"] == "approved" and hook.requests == []
                assert c.post("/desk/api/v1/destinations/nope/pause").status_code == 404
                # resumed: the waiting post goes out once
                assert c.post("/desk/api/v1/destinations/hook/resume").json()["paused"] is False
                r = c.post(f"/desk/api/v1/articles/{aid}/publish")
                assert r.status_code == 200, r.text
                assert r.json()["status"] == "published"
        finally:
            server.stop()
        assert len(hook.requests) == 1 and hook.requests[0]["verified"]
        actions = [r["action"] for r in ws.store.dump() if r["table"] == "audit_log"]
        assert "pause" in actions and "resume" in actions
        ws.close()

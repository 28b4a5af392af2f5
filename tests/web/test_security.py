"""Security of the desk over real HTTP, with routes enumerated from the app's router."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.routing import Route
from tests.web.support import PASSWORD, add_post, client, csrf_of, desk, login

from waikan.web import accounts
from waikan.web.app import starlette_of
from waikan.web.serve import WebServer
from waikan.workspace import Workspace

USERS = (("root", "admin"), ("ed", "editor"))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[WebServer, Workspace]]:
    with desk(tmp_path_factory.mktemp("sec") / "ws", USERS) as pair:
        _server, ws = pair
        add_post(ws, 1)
        add_post(ws, 2)
        yield pair


def _routes(server: WebServer) -> list[tuple[str, str, str]]:
    """(method, concrete path, access) for every route of the app, from its router."""
    app = starlette_of(server._server.config.app)  # the app uvicorn serves
    out = []
    for route in app.routes:
        if not isinstance(route, Route):
            continue
        access = getattr(route.endpoint, "desk_access", None)
        assert access in ("public", "editor", "admin"), f"{route.path} has no access mark"
        path = (
            route.path.replace("{article_id:int}", "1")
            .replace("{source_id:int}", "1")
            .replace("{destination:str}", "hook")
            .replace("{action:str}", "approve")
        )
        for method in sorted(route.methods or ()):
            if method != "HEAD":
                out.append((method, path, access))
    return out


def test_router_has_guarded_state_changing_routes(served: tuple[WebServer, Workspace]) -> None:
    routes = _routes(served[0])
    changing = [r for r in routes if r[0] != "GET" and r[2] != "public"]
    assert len(changing) >= 8
    assert ("POST", "/desk/login", "public") in routes  # the only public POST
    assert [r for r in routes if r[0] != "GET" and r[2] == "public"] == [
        ("POST", "/desk/login", "public")
    ]


def test_no_credentials_gets_401_or_login_redirect(served: tuple[WebServer, Workspace]) -> None:
    server, _ws = served
    with client(server) as c:
        for method, path, access in _routes(server):
            if access == "public":
                continue
            r = c.request(method, path, data={"x": "1"})
            if method == "GET" and not path.startswith("/desk/api/"):
                assert r.status_code == 303, (method, path, r.status_code)
                assert r.headers["location"].startswith("/desk/login")
            else:
                assert r.status_code == 401, (method, path, r.status_code)


def test_cookie_session_without_csrf_gets_403(served: tuple[WebServer, Workspace]) -> None:
    server, ws = served
    before = ws.store.article(1)
    with client(server) as c:
        token = login(c, "root")
        for method, path, access in _routes(server):
            if method == "GET" or access == "public":
                continue
            for data in ({}, {"csrf": "wrong-" + token[:5]}):
                r = c.request(method, path, data=data)
                assert r.status_code == 403, (method, path, r.status_code)
            r = c.request(method, path, headers={"x-csrf-token": "nope"})
            assert r.status_code == 403, (method, path)
    assert ws.store.article(1) == before  # nothing changed


def test_editor_gets_403_on_admin_routes(served: tuple[WebServer, Workspace]) -> None:
    server, _ws = served
    admin = [r for r in _routes(server) if r[2] == "admin"]
    assert {p for _m, p, _a in admin} >= {"/desk/users", "/desk/settings", "/desk/sources"}
    with client(server) as c:
        csrf = login(c, "ed")
        for method, path, _access in admin:
            r = c.request(method, path, data={"csrf": csrf, "url": "https://x.example/feed"})
            assert r.status_code == 403, (method, path, r.status_code)
    with client(server) as c:
        login(c, "root")
        assert c.get("/desk/settings").status_code == 200


def test_bearer_token_is_exempt_from_csrf(served: tuple[WebServer, Workspace]) -> None:
    server, ws = served
    token = accounts.issue_token(ws.store, "ed")
    with client(server, headers={"authorization": f"Bearer {token}"}) as c:
        r = c.get("/desk/api/v1/articles", params={"status": ""})
        assert r.status_code == 200 and {a["id"] for a in r.json()["articles"]} >= {1, 2}
        assert c.post("/desk/api/v1/articles/2/approve").json()["status"] == "approved"
    with client(server, headers={"authorization": "Bearer wk_forged"}) as c:
        assert c.post("/desk/api/v1/articles/2/reject").status_code == 401


def test_session_id_is_rotated_at_login_and_cookie_flags(
    served: tuple[WebServer, Workspace],
) -> None:
    server, _ws = served
    with client(server) as c:
        c.cookies.set("waikan_desk", "attacker-chosen-session-id", domain="127.0.0.1")
        r = c.post("/desk/login", data={"name": "ed", "password": PASSWORD})
        assert r.status_code == 303
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
        assert "Secure" not in cookie  # plain http on loopback
        new = c.cookies.get("waikan_desk", domain="127.0.0.1")
        assert new and new != "attacker-chosen-session-id"
        assert c.get("/desk/queue").status_code == 200
        old = client(server)
        old.cookies.set("waikan_desk", "attacker-chosen-session-id")
        assert old.get("/desk/queue").status_code == 303
        csrf = csrf_of(c.get("/desk/queue").text)
        assert c.post("/desk/logout", data={"csrf": csrf}).status_code == 303
        c.cookies.set("waikan_desk", new, domain="127.0.0.1")
        assert c.get("/desk/queue").status_code == 303  # the session ended server-side


def test_account_lockout_after_five_failures_checks_no_hash(tmp_path: Path) -> None:
    with desk(tmp_path / "ws", (("ed", "editor"),)) as (server, _ws), client(server) as c:
        for _ in range(5):
            r = c.post("/desk/login", data={"name": "ed", "password": "wrong password"})
            assert r.status_code == 401
        checks = accounts.hash_checks
        r = c.post("/desk/login", data={"name": "ed", "password": PASSWORD})
        assert r.status_code == 429
        assert accounts.hash_checks == checks  # refused before any argon2 work
        assert "waikan_desk" not in r.headers.get("set-cookie", "")


def test_address_lockout_after_twenty_failures(tmp_path: Path) -> None:
    with desk(tmp_path / "ws", (("ed", "editor"),)) as (server, _ws), client(server) as c:
        for n in range(20):
            r = c.post("/desk/login", data={"name": f"guess{n % 4}", "password": "x" * 9})
            assert r.status_code == 401
        checks = accounts.hash_checks
        r = c.post("/desk/login", data={"name": "ed", "password": PASSWORD})
        assert r.status_code == 429
        assert accounts.hash_checks == checks


def test_bad_input_pages(served: tuple[WebServer, Workspace]) -> None:
    server, ws = served
    with client(server) as c:
        csrf = login(c, "root")
        missing = c.get("/desk/articles/987654")
        assert missing.status_code == 404 and "找不到这篇文章" in missing.text
        assert c.get("/desk/no-such-page").status_code == 404
        big = c.post("/desk/glossary", data={"csrf": csrf, "en": "x" * 400_000, "zh_hans": "x"})
        assert big.status_code == 413
        empty = c.post(
            "/desk/glossary", data={"csrf": csrf, "en": "Antony Blinken", "zh_hans": "  "}
        )
        assert empty.status_code == 400
        assert not any(r["table"] == "glossary_entries" for r in ws.store.dump())
        assert c.get("/desk/queue", params={"day": "2024-13-45"}).status_code == 400
        assert c.get("/desk/queue", params={"before": "abc"}).status_code == 400
        dup = c.post(
            "/desk/users",
            data={"csrf": csrf, "name": "ed", "role": "editor", "password": "another-pass"},
        )
        assert dup.status_code == 400 and "already exists" in dup.text


def test_nul_characters_are_a_400_on_every_store(served: tuple[WebServer, Workspace]) -> None:
    """PostgreSQL text cannot hold NUL: a query with one was a 500 there (found by the fuzz)."""
    server, ws = served
    token = accounts.issue_token(ws.store, "root")
    api = {"authorization": f"Bearer {token}"}
    with client(server) as c:
        got = [
            c.get("/desk/api/v1/articles", params={"source": "a\x00b"}, headers=api),
            c.get("/desk/api/v1/articles", params={"destination": "\x00"}, headers=api),
            c.post("/desk/api/v1/glossary", json={"en": "A\x00", "zh_hans": "甲"}, headers=api),
            c.post("/desk/api/v1/destinations/%00/pause", headers=api),
            c.post("/desk/login", data={"name": "root\x00", "password": PASSWORD}),
        ]
        for r in got:
            assert r.status_code == 400, (r.request.url, r.status_code, r.text)
        assert got[0].json() == {"error": "the request contains a NUL character"}
        extra = {"name": "root", "password": PASSWORD, "x\x00": "\x00"}  # unread: ignored
        assert c.post("/desk/login", data=extra).status_code == 303
        spec = c.get("/desk/api/v1/openapi.json").json()
        for item in spec["paths"].values():
            assert all("400" in op["responses"] for op in item.values())
        csrf = login(c, "root")
        form = {"csrf": csrf, "en": "Kaja\x00", "zh_hans": "卡拉斯"}
        assert c.post("/desk/glossary", data=form).status_code == 400
        assert c.get("/desk/queue", params={"source": "\x00"}).status_code == 400
        assert c.get("/desk/queue", params={"source": "none"}).status_code == 200
    assert not any(r["table"] == "glossary_entries" for r in ws.store.dump())


def test_chinese_by_default_english_on_request(served: tuple[WebServer, Workspace]) -> None:
    server, _ws = served
    with client(server) as c:
        assert "登录" in c.get("/desk/login").text
        en = c.get("/desk/login", headers={"accept-language": "en-GB,en;q=0.9"}).text
        assert "Log in" in en and "登录" not in en
        assert "Log in" in c.get("/desk/login", params={"lang": "en"}).text
        assert "Log in" in c.get("/desk/login").text  # the choice is kept in a cookie
        assert "登录" in c.get("/desk/login", params={"lang": "zh"}).text


def test_two_concurrent_edits_the_second_gets_a_conflict(tmp_path: Path) -> None:
    with desk(tmp_path / "ws", (("a", "editor"), ("b", "editor"))) as (server, ws):
        aid = add_post(ws, 7)
        with client(server) as one, client(server) as two:
            login(one, "a")
            login(two, "b")
            page1, page2 = (
                one.get(f"/desk/articles/{aid}").text,
                two.get(f"/desk/articles/{aid}").text,
            )
            rev = re.search(r'name="revision" value="(\d+)"', page1)
            assert rev and rev.group(1) in page2
            text_a = "编辑甲的版本：第7号码头修复后重新开放。\n\n第二段。"
            text_b = "编辑乙的版本：码头重新开放。\n\n另一段。"
            r1 = one.post(
                f"/desk/articles/{aid}/edit",
                data={"csrf": csrf_of(page1), "revision": rev.group(1), "text": text_a},
            )
            assert r1.status_code == 303
            r2 = two.post(
                f"/desk/articles/{aid}/edit",
                data={"csrf": csrf_of(page2), "revision": rev.group(1), "text": text_b},
            )
            assert r2.status_code == 409
            assert "已被他人修改" in r2.text
            assert "编辑乙的版本" in r2.text  # b's text is kept in the form
            assert "编辑甲的版本" in r2.text  # a's text is what the summary now shows
        current = ws.store.current_summary(aid)
        assert current is not None and current.paragraphs[0].startswith("编辑甲的版本")
        edits = [
            r for r in ws.store.dump() if r["table"] == "audit_log" and r["action"] == "edit-text"
        ]
        assert [e["actor"] for e in edits] == ["a"]


def test_api_conflict_and_openapi(served: tuple[WebServer, Workspace]) -> None:
    server, ws = served
    token = accounts.issue_token(ws.store, "root")
    with client(server, headers={"authorization": f"Bearer {token}"}) as c:
        art = c.get("/desk/api/v1/articles/1").json()
        stale = c.post(
            "/desk/api/v1/articles/1/edit",
            json={"text": "旧版本上的修改。", "revision": art["revision"] - 1},
        )
        assert stale.status_code == 409 and stale.json()["revision"] == art["revision"]
        spec = httpx.get(server.url + "desk/api/v1/openapi.json").json()
        assert spec["openapi"].startswith("3.") and "/articles/{article_id}/edit" in spec["paths"]


def test_glossary_add_edit_search_remove(served: tuple[WebServer, Workspace]) -> None:
    server, ws = served
    with client(server) as c:
        csrf = login(c, "ed")
        form = {"csrf": csrf, "en": "Kaja Kallas", "kind": "person", "zh_hans": "卡拉斯"}
        assert c.post("/desk/glossary", data=form).status_code == 303
        edit = c.get("/desk/glossary", params={"edit": "kaja kallas"}).text
        assert 'value="卡拉斯"' in edit
        form |= {
            "zh_hans": "卡娅·卡拉斯",
            "zh_hant_tw": "卡婭·卡拉斯",
            "variants": "卡拉丝, 卡拉斯",
        }
        assert c.post("/desk/glossary", data=form).status_code == 303
        found = c.get("/desk/glossary", params={"q": "kallas"}).text
        assert "卡婭·卡拉斯" in found and "卡拉丝" in found
        assert "卡婭·卡拉斯" not in c.get("/desk/glossary", params={"q": "nobody"}).text
        rows = [r for r in ws.store.dump() if r["table"] == "glossary_entries"]
        assert [r["zh_hans"] for r in rows] == ["卡娅·卡拉斯"]
        gone = c.post("/desk/glossary/remove", data={"csrf": csrf, "key": "kaja kallas"})
        assert gone.status_code == 303
        assert not any(r["table"] == "glossary_entries" for r in ws.store.dump())

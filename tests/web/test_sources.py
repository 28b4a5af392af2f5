"""The sources page over real HTTP: an admin adds sources, a real poll over loopback
fills their health (last fetch, errors, items per day), then pause, resume, remove;
each checked on the page and in the store afterwards."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from tests.servers.feeds import ago, corpus_pages, raw, routes_for, rss
from tests.servers.pages import PageServer
from tests.web.support import client, desk, login

from waikan.sources.poll import fetch_stage
from waikan.sources.repo import SourceRepo

FAST = {
    "fetch.allow_private_networks": "true",
    "fetch.host_delay": "0",
    "fetch.backoff": "0.01",
    "fetch.retries": "0",
}


def _rows(html: str) -> dict[str, list[str]]:
    """The sources table as {url: [cell texts]}."""
    body = html.split('<table class="sources">', 1)[1].split("</table>", 1)[0]
    out = {}
    for row in re.findall(r"<tr>(.*?)</tr>", body.split("<tbody>", 1)[1], re.S):
        cells = [
            re.sub(r"<[^>]+>", " ", c).split()
            for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        ]
        url = re.search(r"<small>(http[^<]+)</small>", row)
        assert url, row
        out[url.group(1)] = [" ".join(c) for c in cells]
    return out


def test_sources_health_and_actions(tmp_path: Path) -> None:
    users = (("root", "admin"), ("ed", "editor"))
    with (
        PageServer({}) as srv,
        desk(tmp_path / "ws", users, **FAST) as (server, ws),
        client(server) as admin,
        client(server) as editor,
    ):
        pages = corpus_pages(3)
        items = [(f"{srv.base}/a{i}", f"Story {i}", ago(i + 1)) for i in range(3)]
        srv.routes.update(routes_for({f"/a{i}": p for i, p in enumerate(pages)}))
        srv.routes["/feed.xml"] = raw(rss(items), "application/rss+xml")
        srv.routes["/broken.xml"] = raw(b"down for maintenance", status=500)
        feed, broken = f"{srv.base}/feed.xml", f"{srv.base}/broken.xml"
        csrf = login(admin, "root")
        ed_csrf = login(editor, "ed")

        # add: admins only, with the session's CSRF token; bad and duplicate URLs refused
        for url, name in ((feed, "Loopback Wire"), (broken, "")):
            r = admin.post("/desk/sources", data={"csrf": csrf, "url": url, "name": name})
            assert r.status_code == 303, r.text
        assert admin.post("/desk/sources", data={"url": feed + "?x"}).status_code == 403
        assert admin.post("/desk/sources", data={"csrf": csrf, "url": feed}).status_code == 409
        bad = admin.post("/desk/sources", data={"csrf": csrf, "url": "ftp://x"})
        assert bad.status_code == 400
        r = editor.post("/desk/sources", data={"csrf": ed_csrf, "url": feed + "?ed"})
        assert r.status_code == 403
        repo = SourceRepo(ws.store)
        by_url = {s.url: s for s in repo.all()}
        assert set(by_url) == {feed, broken} and by_url[feed].name == "Loopback Wire"
        before = _rows(admin.get("/desk/sources").text)
        assert before[feed][2] == "" and before[feed][4] == "0" and before[feed][5] == "0.0"

        # real polls over loopback: the first learns the feed (no backfill), then two new
        # stories appear and the second poll takes them
        fetch_stage(ws, everything=True)
        fresh = [(f"{srv.base}/a{i}", f"Story {i}", ago(0.1)) for i in (3, 4)]
        srv.routes.update(routes_for({f"/a{i}": pages[i - 3] for i in (3, 4)}))
        srv.routes["/feed.xml"] = raw(rss(fresh + items), "application/rss+xml")
        fetch_stage(ws, everything=True)
        page = admin.get("/desk/sources").text
        rows = _rows(page)
        today = datetime.now(UTC).strftime("%Y-%m-%d")
        assert rows[feed][2].startswith(today) and rows[broken][2].startswith(today)
        assert rows[feed][4] == "0"
        assert rows[broken][3] == "error" and rows[broken][4].startswith("2 ")  # two polls
        assert "500" in rows[broken][4]
        fetched = [a for a in ws.store.dump() if a["table"] == "articles"]
        assert sorted(a["url"] for a in fetched) == [f"{srv.base}/a3", f"{srv.base}/a4"]
        assert rows[feed][5] == str(round(2 / 7, 1))  # items per day over the last week
        assert rows[broken][5] == "0.0"
        assert "Loopback Wire" in page
        # the editor sees the health, without the admin's buttons
        ed_page = editor.get("/desk/sources").text
        assert feed in ed_page and f"/desk/sources/{by_url[feed].id}/pause" not in ed_page

        # pause: never due, shown as paused with a resume button; editors may not
        fid, bid = by_url[feed].id, by_url[broken].id
        assert editor.post(f"/desk/sources/{fid}/pause", data={"csrf": ed_csrf}).status_code == 403
        assert admin.post(f"/desk/sources/{fid}/pause").status_code == 403  # no CSRF token
        r = admin.post(f"/desk/sources/{fid}/pause", data={"csrf": csrf})
        assert r.status_code == 303
        paused = repo.get(str(fid))
        assert paused is not None and paused.settings["paused"] is True
        assert paused.next_poll_at is not None and paused.next_poll_at.year == 9999
        assert fid not in {s.id for s in repo.due()}
        page = admin.get("/desk/sources").text
        assert f"/desk/sources/{fid}/resume" in page and f"/desk/sources/{fid}/pause" not in page
        assert "已暂停" in _rows(page)[feed][3]
        # `waikan fetch --now` polls everything else but leaves a paused source alone
        polls_before = srv.hits.count("/feed.xml")
        fetch_stage(ws, everything=True)
        assert srv.hits.count("/feed.xml") == polls_before
        still = repo.get(str(fid))
        assert still is not None and still.next_poll_at is not None
        assert still.next_poll_at.year == 9999

        # resume: due again
        assert admin.post(f"/desk/sources/{fid}/resume", data={"csrf": csrf}).status_code == 303
        resumed = repo.get(str(fid))
        assert resumed is not None and resumed.settings["paused"] is False
        assert fid in {s.id for s in repo.due()}

        # remove: the source goes, its articles stay (without a source)
        assert admin.post(f"/desk/sources/{fid}/remove", data={"csrf": csrf}).status_code == 303
        assert [s.url for s in repo.all()] == [broken]
        assert feed not in admin.get("/desk/sources").text
        left = [a for a in ws.store.dump() if a["table"] == "articles"]
        assert len(left) == 2 and {a["source_id"] for a in left} == {None}
        gone = admin.post(f"/desk/sources/{fid}/remove", data={"csrf": csrf})
        assert gone.status_code == 404
        assert admin.post(f"/desk/sources/{bid}/explode", data={"csrf": csrf}).status_code == 404
        assert isinstance(srv.hits, list) and "/broken.xml" in srv.hits

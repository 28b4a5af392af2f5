"""A hand-edited source row on the desk: shown as broken, never rewritten by pause (issue S4)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text
from tests.web.support import client, desk, login
from tests.web.test_sources import _rows

from waikan.sources.repo import SourceRepo


def test_a_broken_source_is_shown_and_its_row_left_as_the_operator_wrote_it(
    tmp_path: Path,
) -> None:
    with desk(tmp_path / "ws", (("root", "admin"),)) as (server, ws), client(server) as admin:
        repo = SourceRepo(ws.store)
        url = "http://127.0.0.1:9/feed.xml"
        sid = repo.add(url, kind="rss", name=None, language=None, settings={}).id
        raw = text("SELECT CAST(settings AS TEXT) FROM sources")
        with ws.store.engine.begin() as c:
            c.execute(text("UPDATE sources SET settings = '[\"hand-edited\"]'"))
        csrf = login(admin, "root")
        row = _rows(admin.get("/desk/sources").text)[url]
        assert row[3] == "broken" and "settings is not a JSON object" in row[4], row
        paused = admin.post(f"/desk/sources/{sid}/pause", data={"csrf": csrf})
        assert paused.status_code == 409 and "waikan sources remove" in paused.text
        with ws.store.engine.connect() as c:
            assert c.scalar(raw) == '["hand-edited"]'  # not replaced by {"paused": true}
        assert admin.post(f"/desk/sources/{sid}/remove", data={"csrf": csrf}).status_code == 303
        assert repo.all() == []

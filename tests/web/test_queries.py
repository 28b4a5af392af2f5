"""The queue's keyset pages and filters over a real SQLite store."""

from __future__ import annotations

from pathlib import Path

from tests.render.site_support import add_post, workspace

from waikan.models import Status
from waikan.web import queries
from waikan.web.queries import QueueFilter


def test_queue_pages_cover_every_row_once(tmp_path: Path) -> None:
    ws = workspace(tmp_path / "ws")
    ids = [add_post(ws, n, source=f"Outlet {n % 3}") for n in range(1, 13)]
    for i in ids[::4]:
        ws.store.set_status(i, Status.NEEDS_REVIEW)
    for i in ids[1::4]:
        ws.store.set_status(i, Status.APPROVED)
    review = [i for i in ids if i not in ids[1::4]]

    f = QueueFilter()
    seen: list[int] = []
    page = queries.queue(ws.store, f, size=4)
    while True:
        seen.extend(r["id"] for r in page.rows)
        if page.older is None:
            break
        page = queries.queue(ws.store, f, before=page.older, size=4)
    assert seen == sorted(review, reverse=True)  # newest first, both review statuses merged

    last = queries.queue(ws.store, f, last=True, size=4)
    assert [r["id"] for r in last.rows] == sorted(review, reverse=True)[-4:]
    assert last.older is None and last.newer == last.rows[0]["id"]
    back = queries.queue(ws.store, f, after=last.newer, size=4)
    assert [r["id"] for r in back.rows] == sorted(review, reverse=True)[-8:-4]

    outlet = queries.queue(ws.store, QueueFilter(status="", source="Outlet 1"), size=50)
    assert [r["id"] for r in outlet.rows] == sorted(
        (i for n, i in enumerate(ids, 1) if n % 3 == 1), reverse=True
    )
    approved = queries.queue(ws.store, QueueFilter(status="approved"), size=50)
    assert {r["id"] for r in approved.rows} == set(ids[1::4])
    day = queries.queue(ws.store, QueueFilter(status="", day="2024-03-03"), size=50)
    assert [r["id"] for r in day.rows] == [ids[1]]  # story 2 was published on March 3rd
    ws.close()


def test_dashboard_series(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import insert

    from waikan.models import Summary
    from waikan.store import schema
    from waikan.web import svg

    ws = workspace(tmp_path / "ws")
    a = add_post(ws, 1, source="Alpha")
    add_post(ws, 2, source="Beta")
    add_post(ws, 3, source="Beta")
    ws.store.add_summary(
        a,
        Summary(paragraphs=("改写。",), backend="openai", model="m", prompt_version="p"),
        status=Status.NEEDS_REVIEW,
        findings=[("number", "number: figure 5 is not in the article")],
    )
    today = datetime.now(UTC).date().isoformat()
    with ws.store.engine.begin() as c:
        c.execute(
            insert(schema.llm_spend).values(
                day=today, model="m", calls=3, cached=1, tokens_in=900, tokens_out=300, cost=0.25
            )
        )
    d = queries.dashboard(ws.store)
    assert d["labels"][-1] == today and len(d["labels"]) == 14
    assert d["per_source"] == {"Alpha": {today: 1}, "Beta": {today: 2}}
    assert d["spend"][today] == {"calls": 3, "tokens": 1200, "cost": 0.25}
    assert d["kinds"] == {"number": 1}
    assert len(d["latency"]) == 3 and all(m > 0 for m in d["latency"])
    chart = svg.stacked_bars(d["labels"], d["per_source"], "<articles>")
    assert chart.startswith("<svg") and "&lt;articles&gt;" in chart and "Beta" in chart
    assert "0.25 / 1.00" in svg.gauge(0.25, 1.0, "budget")
    ws.close()

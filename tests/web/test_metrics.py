"""``/metrics`` parsed by prometheus_client's own text parser, before and after real actions:
a regenerate against a loopback model, a publish to a loopback webhook, a paused
destination, a failing source polled over loopback, stored guard findings."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.render.site_support import BASE_URL, add_post, summary
from tests.servers.feeds import raw
from tests.servers.openai_server import FakeLLM
from tests.servers.pages import PageServer
from tests.servers.webhook_server import WebhookReceiver
from tests.web.support import PASSWORD, client, free_port
from tests.web.test_actions import ANSWER

from waikan import __version__
from waikan.config import load
from waikan.models import Status
from waikan.sources.poll import fetch_stage
from waikan.sources.repo import SourceRepo
from waikan.web import accounts
from waikan.web.serve import WebServer
from waikan.workspace import Workspace

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
ODD = 'Odd "Wire" \\ one'  # a source name that needs escaping in a label
FEED_TOKEN = "feed-token-8c1f"  # in a source's URL: /metrics is public


def scrape(c: httpx.Client) -> tuple[Samples, dict[str, str]]:
    """(sample name, labels) → value, and family name → type, as Prometheus reads them."""
    r = c.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: Samples = {}
    types: dict[str, str] = {}
    for fam in text_string_to_metric_families(r.text):
        assert fam.name not in types, f"{fam.name} twice"
        types[fam.name] = fam.type
        for s in fam.samples:
            key = (s.name, frozenset(s.labels.items()))
            assert key not in samples, key
            samples[key] = s.value
    return samples, types


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_parse_and_follow_actions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "ws"
    monkeypatch.setenv("WAIKAN_WEBHOOK_SECRET", "s3cret")
    with (
        WebhookReceiver(secret="s3cret") as hook,
        FakeLLM(api_key="sk-m", model="m", answer=ANSWER) as llm,
        PageServer(
            {
                "/down.xml": raw(b"down", status=503),
                "/down.xml?n=2": raw(b"down", status=503),
                f"/down.xml?token={FEED_TOKEN}": raw(b"down", status=503),
            }
        ) as pages,
    ):
        home.mkdir(parents=True)
        (home / "waikan.toml").write_text(
            f'[publish.hook]\ntype = "webhook"\nurl = "{hook.url}"\nreview = "review"\n'
            "timeout = 5\n",
            encoding="utf-8",
        )
        ws = Workspace(
            load(
                home,
                env={"WAIKAN_WEBHOOK_SECRET": "s3cret", "WAIKAN_LLM_API_KEY": "sk-m"},
                overrides={
                    "site.base_url": BASE_URL,
                    "site.images": "false",
                    "llm.base_url": llm.url,
                    "llm.model": "m",
                    "llm.prices": "m=1000/2000",
                    "fetch.allow_private_networks": "true",
                    "fetch.host_delay": "0",
                    "fetch.retries": "0",
                },
            )
        )
        one, two = add_post(ws, 1), add_post(ws, 2)
        accounts.add_user(ws.store, "root", "admin", PASSWORD)
        token = accounts.issue_token(ws.store, "root")
        server = WebServer(ws, "127.0.0.1", 0)
        server.start()
        try:
            with client(server, headers={"authorization": f"Bearer {token}"}) as c:
                before, types = scrape(c)
                assert value(before, "waikan_build_info", version=__version__, python=_py()) == 1
                assert value(before, "waikan_articles", status="summarized") == 2
                assert value(before, "waikan_queue_depth", queue="review") == 2
                assert value(before, "waikan_destination_paused", destination="hook") == 0
                assert types["waikan_guard_findings"] == "counter"
                assert types["waikan_outbox"] == types["waikan_model_calls_today"] == "gauge"
                for family in ("waikan_source_errors", "waikan_fetch_failing_articles"):
                    assert family in types

                # a model call, a publish, a pause
                assert c.post(f"/desk/api/v1/articles/{one}/regenerate").status_code == 200
                assert c.post(f"/desk/api/v1/articles/{two}/publish").status_code == 200
                assert c.post("/desk/api/v1/destinations/hook/pause").status_code == 200
                # a guard finding stored with a summary (as the summarize stage stores it)
                ws.store.add_summary(
                    one,
                    summary(1),
                    status=Status.NEEDS_REVIEW,
                    findings=[("number", "1999 is not in the article")],
                )
                # sources whose feed is down, polled for real: two of one name, one unnamed
                down = [
                    SourceRepo(ws.store)
                    .add(
                        f"{pages.base}/down.xml{query}",
                        kind="rss",
                        name=name,
                        language=None,
                        settings={},
                    )
                    .id
                    for query, name in (("", ODD), ("?n=2", ODD), (f"?token={FEED_TOKEN}", None))
                ]
                fetch_stage(ws, everything=True)

                after, _types = scrape(c)  # (scrape fails on a duplicate series)
                text = c.get("/metrics").text
        finally:
            server.stop()
            ws.close()
    assert value(after, "waikan_articles", status="published") == 1
    assert value(after, "waikan_articles", status="needs_review") == 1
    assert value(after, "waikan_articles", status="summarized") == 0
    assert value(after, "waikan_outbox", destination="hook", state="sent") == 1
    assert value(after, "waikan_destination_paused", destination="hook") == 1
    assert value(after, "waikan_model_calls_today", model="m") == 1
    tokens_in = value(after, "waikan_model_tokens_today", model="m", direction="in")
    tokens_out = value(after, "waikan_model_tokens_today", model="m", direction="out")
    assert tokens_in > 0 and tokens_out > 0
    cost = value(after, "waikan_model_cost_today", model="m")
    assert cost == pytest.approx((tokens_in * 1000 + tokens_out * 2000) / 1_000_000)
    assert value(after, "waikan_guard_findings_total", kind="number") == 1 + value(
        before, "waikan_guard_findings_total", kind="number"
    )
    for sid in down[:2]:  # one series each, though they share a name
        labels = {"source_id": str(sid), "source": ODD}  # the name survived escaping
        assert value(after, "waikan_source_errors", **labels) == 1
        assert after[("waikan_source_polls_total", frozenset(labels.items()))] == 0  # none good
    assert value(after, "waikan_source_errors", source_id=str(down[2])) == 1  # no name, no URL
    assert FEED_TOKEN not in text and pages.base not in text
    assert value(after, "waikan_queue_depth", queue="review") == 1
    assert len(hook.requests) == 1 and len(pages.hits) >= 1


def _py() -> str:
    import platform

    return platform.python_version()


def test_broker_queue_depth(tmp_path: Path, redis_url: str) -> None:
    """With ``queue.url`` set, the Redis list's length is the broker's depth; down, no sample."""
    import redis

    from waikan.queue.app import QUEUE

    broker = redis.Redis.from_url(redis_url)
    broker.lpush(QUEUE, *[f"task {n}" for n in range(3)])
    down = f"redis://127.0.0.1:{free_port()}/0"
    for name, url, depth in (("up", redis_url, 3.0), ("down", down, None)):
        ws = Workspace(load(tmp_path / name, env={}, overrides={"queue.url": url}))
        server = WebServer(ws, "127.0.0.1", 0)
        server.start()
        try:
            with client(server) as c:
                samples, _types = scrape(c)
        finally:
            server.stop()
            ws.close()
        found = samples.get(("waikan_queue_depth", frozenset({("queue", "broker")})))
        assert found == depth, url
        assert value(samples, "waikan_queue_depth", queue="review") == 0
    broker.close()

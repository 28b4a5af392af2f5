"""Crash trials: ``waikan publish`` killed with SIGKILL at random points (make test-slow).

After each kill at most one delivery per destination is in doubt; a human
(this test, reading what the servers received) resolves it; in the end every
post is delivered exactly once and no message exists twice.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from tests.conftest import _CLEAN, ROOT, run_proc
from tests.publish.conftest import CHAT, ENV, add_post, telegram_dest, webhook_dest, write_config
from tests.servers.telegram_server import TelegramServer
from tests.servers.webhook_server import WebhookReceiver

from waikan import config as config_mod
from waikan.publish import outbox
from waikan.workspace import Workspace

pytestmark = pytest.mark.slow

TRIALS = 12


def long_body(n: int) -> tuple[str, ...]:
    filler = "Officials met and talked. " * 80
    return tuple(f"Story {n}, paragraph {i}. {filler}" for i in range(8))


def digest(html: str) -> str:
    return hashlib.sha256(html.encode("utf-8")).hexdigest()[:16]


DECISIONS: Counter[str] = Counter()


def human_resolves(ws: Workspace, home: Path, tg: TelegramServer, hook: WebhookReceiver) -> None:
    """Decide each doubtful delivery from what the remote end really holds."""
    listing = run_proc(["--home", str(home), "publish", "--resolve"], env=ENV)
    assert listing.code in (0, 3), listing.err
    for d in outbox.deliveries(ws.store, status="uncertain"):
        step = d.remote.get("inflight") or {}
        if d.destination == "tg":
            arrived = any(digest(m.html) == step.get("digest") for m in tg.messages.values())
        else:
            arrived = any(
                r["headers"].get("x-waikan-delivery") == d.key and r["status"] == 204
                for r in hook.requests
            )
        choice = "--delivered" if arrived else "--resend"
        DECISIONS[f"{d.destination} {choice}"] += 1
        done = run_proc(["--home", str(home), "publish", "--resolve", choice, str(d.id)], env=ENV)
        assert done.code in (0, 3), done.err


def test_sigkill_trials_deliver_everything_exactly_once(home: Path) -> None:
    rng = random.Random(int(os.environ.get("WAIKAN_CRASH_SEED", "7")))
    with (
        TelegramServer(token=ENV["WAIKAN_TELEGRAM_BOT_TOKEN"], chats={CHAT}) as tg,
        WebhookReceiver(secret=ENV["WAIKAN_WEBHOOK_SECRET"]) as hook,
    ):
        tg.delay = 0.03
        write_config(home, {"tg": telegram_dest(tg, timeout=10), "hook": webhook_dest(hook)})
        ws = Workspace(config_mod.load(home, env={}))
        ids: list[int] = []
        kills = 0
        try:
            for trial in range(TRIALS):
                for _ in range(2):
                    n = len(ids) + 1
                    ids.append(
                        add_post(
                            ws,
                            n,
                            paragraphs=long_body(n) if n % 2 else None,
                            image_url=f"https://example.com/{n}.jpg" if n % 3 == 0 else None,
                        )
                    )
                proc = subprocess.Popen(
                    [sys.executable, "-m", "waikan", "--home", str(home), "publish"],
                    env=_CLEAN | ENV,
                    cwd=ROOT,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                # wait for the first request of this run (start-up takes seconds), then a
                # random part of the sending
                seen = len(tg.requests) + len(hook.requests)
                deadline = time.monotonic() + 30
                while (
                    len(tg.requests) + len(hook.requests) == seen
                    and proc.poll() is None
                    and time.monotonic() < deadline
                ):
                    time.sleep(0.005)
                time.sleep(rng.uniform(0.0, 1.0))
                if proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)
                    kills += 1
                proc.wait()
                time.sleep(0.2)  # let the servers finish a request already received
                in_doubt = Counter(
                    d.destination
                    for d in outbox.deliveries(ws.store, status=("sending", "uncertain"))
                )
                assert all(n <= 1 for n in in_doubt.values()), (trial, in_doubt)
                human_resolves(ws, home, tg, hook)
            assert kills >= 10, kills
            print(f"\ncrash trials: {TRIALS}, kills: {kills}, human decisions: {dict(DECISIONS)}")
            for _ in range(5):  # finish: run, resolve what a last interruption left
                final = run_proc(["--home", str(home), "publish"], env=ENV)
                human_resolves(ws, home, tg, hook)
                if final.code == 0:
                    break
            assert final.code == 0, final.err

            statuses = {i: ws.store.article(i).status for i in ids}  # type: ignore[union-attr]
            assert set(statuses.values()) == {"published"}, statuses
            # Telegram: every part of every post once, nothing twice
            htmls = Counter(m.html for m in tg.messages.values())
            assert max(htmls.values()) == 1, [h[:60] for h, c in htmls.items() if c > 1]
            from waikan.pipeline import build_post
            from waikan.publish.config import load_destinations
            from waikan.publish.run import make_context
            from waikan.publish.telegram import TelegramPublisher

            dest = next(d for d in load_destinations(ws.config, ENV) if d.id == "tg")
            pub = TelegramPublisher(dest, make_context(ws, None, time.sleep))
            expected = Counter(p["html"] for i in ids for p in pub.parts(build_post(ws, i)))
            pub.close()
            assert htmls == expected
            # webhook: one accepted delivery per post
            accepted = Counter(
                r["headers"]["x-waikan-delivery"]
                for r in hook.requests
                if r["status"] == 204 and r["verified"]
            )
            assert sorted(accepted) == sorted(f"{i}-1-hook" for i in ids)
            assert set(accepted.values()) == {1}
        finally:
            ws.close()

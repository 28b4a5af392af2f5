"""Publishing speed, as ratios against baselines measured in the same run.

usage: python bench/bench_publish.py [--posts N]

1. Telegram rendering: posts/second of the ``telegram`` rendering *split*
   into messages (UTF-16 counting, sentence cuts) against the plain ``text``
   rendering of the same 12,000-character posts (target >= 0.05).
2. Outbox overhead: deliveries/second of ``waikan publish`` to a loopback
   webhook receiver (four committed outbox writes around each send, SQLite
   file) against bare signed httpx POSTs of the same bodies to the same
   receiver (target >= 0.03: a Telegram channel takes ~20 posts a minute,
   so the outbox's commits are never the bottleneck; the figure guards regressions).

Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

TARGET_RENDER = 0.05
TARGET_OUTBOX = 0.03


def bench_render(n: int) -> float:
    from waikan.models import Post
    from waikan.render.formats import render_text
    from waikan.render.telegram import post_blocks, split_messages

    para = "Officials met and talked about trade, climate and security. " * 12
    posts = [
        Post(id=i, channel="真相集中营", source="Reuters", title=f"Story {i}",
             published="2023-10-27T14:03:40Z", caption="Caption. REUTERS/X",
             paragraphs=tuple(f"{i}-{k} {para}" for k in range(16)),
             summary=("这篇报道描述了" * 40,) * 4)
        for i in range(n)
    ]  # fmt: skip
    started = time.perf_counter()
    for p in posts:
        render_text(p)
    text_rate = n / (time.perf_counter() - started)
    started = time.perf_counter()
    for p in posts:
        split_messages(post_blocks(p))
    tg_rate = n / (time.perf_counter() - started)
    ratio = tg_rate / text_rate
    verdict = "MET" if ratio >= TARGET_RENDER else "NOT MET"
    print(f"text rendering           {text_rate:9.1f} posts/s")
    print(f"telegram render + split  {tg_rate:9.1f} posts/s")
    print(f"ratio {ratio:.3f}  target >= {TARGET_RENDER}  {verdict}")
    return ratio


def bench_outbox(n: int) -> float:
    import httpx
    from tests.publish.conftest import SECRET, add_post, webhook_dest, write_config
    from tests.servers.webhook_server import WebhookReceiver

    from waikan import config as config_mod
    from waikan.plugins import registry
    from waikan.publish.run import publish
    from waikan.publish.webhook import sign
    from waikan.workspace import Workspace

    with tempfile.TemporaryDirectory() as tmp, WebhookReceiver(secret=SECRET) as hook:
        home = Path(tmp) / "ws"
        write_config(home, {"hook": webhook_dest(hook)})
        ws = Workspace(config_mod.load(home, env={}))
        for i in range(n):
            add_post(ws, i + 1)
        registry()  # plug-in imports are a once-per-process cost, not per delivery
        body = b'{"post": "' + b"x" * 3000 + b'"}'
        with httpx.Client() as client:
            started = time.perf_counter()
            for _ in range(n):
                ts = str(int(time.time()))
                client.post(
                    hook.url,
                    content=body,
                    headers={
                        "X-Waikan-Timestamp": ts,
                        "X-Waikan-Signature": sign(SECRET, ts, body),
                    },
                )
            bare = n / (time.perf_counter() - started)
        started = time.perf_counter()
        report = publish(ws, env={"WAIKAN_WEBHOOK_SECRET": SECRET})
        ours = n / (time.perf_counter() - started)
        ws.close()
        assert not report.errors, report.errors
    ratio = ours / bare
    verdict = "MET" if ratio >= TARGET_OUTBOX else "NOT MET"
    print(f"bare signed POST         {bare:9.1f} requests/s")
    print(f"waikan publish (outbox)  {ours:9.1f} deliveries/s")
    print(f"ratio {ratio:.3f}  target >= {TARGET_OUTBOX}  {verdict}")
    return ratio


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posts", type=int, default=200)
    args = ap.parse_args(argv)
    render = bench_render(args.posts)
    outbox = bench_outbox(args.posts)
    return 0 if render >= TARGET_RENDER and outbox >= TARGET_OUTBOX else 1


if __name__ == "__main__":
    sys.exit(main())

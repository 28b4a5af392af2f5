"""The ``site`` destination: rebuild the static site, then run an optional deploy command.

Rebuilding is idempotent and incremental, so a repeated or resumed delivery is
harmless; the deploy command (``rsync …``, ``netlify deploy …``) runs without a
shell, with a timeout, and its failure is retried on the next run.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any

from waikan.errors import ConfigError, PublishError
from waikan.models import Post
from waikan.plugins import Registry
from waikan.publish.base import Option, Publisher
from waikan.publish.outbox import Journal
from waikan.workspace import Workspace


class SitePublisher(Publisher):
    kind = "site"
    batch = True
    options = (
        Option("path", "str", "", "Output folder (default: [site] path, i.e. HOME/site)."),
        Option(
            "deploy",
            "str",
            "",
            "Command run after each build, without a shell; {site} is the built folder.",
        ),
        Option("deploy_timeout", "float", 600.0, "Seconds the deploy command may take.", minimum=1),
    )

    @classmethod
    def validate(cls, options: Mapping[str, Any], prefix: str) -> None:
        try:
            shlex.split(str(options.get("deploy", "")))
        except ValueError as exc:
            raise ConfigError(f"invalid value for {prefix}.deploy: {exc}") from None

    def send_batch(self, posts: Sequence[Post], journal: Journal) -> None:
        from waikan.render.site import build_site

        journal.begin("build", 0, kind="site", posts=[p.id for p in posts])
        ws = Workspace(self.ctx.config)
        try:
            report = build_site(ws, self.dest.options.get("path") or None)
        finally:
            ws.close()
        deploy = str(self.dest.options.get("deploy") or "")
        if deploy:
            self._deploy(deploy, site=str(report.out))
        journal.done({"kind": "site", "posts": [p.id for p in posts]})

    def send(self, post: Post, journal: Journal) -> None:
        self.send_batch([post], journal)

    def _deploy(self, command: str, site: str) -> None:
        """Run ``command`` in the workspace; ``{site}`` in it is the built folder."""
        timeout = float(self.dest.options.get("deploy_timeout", 600.0))
        try:
            done = subprocess.run(
                [part.replace("{site}", site) for part in shlex.split(command)],
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=str(self.ctx.config.home),
                check=False,
            )
        except FileNotFoundError:
            raise PublishError(f"deploy command not found: {shlex.split(command)[0]}") from None
        except subprocess.TimeoutExpired:
            raise PublishError(f"deploy command timed out after {timeout:g} s") from None
        if done.returncode != 0:
            last = (done.stderr or done.stdout).strip().splitlines()[-1:] or [""]
            raise PublishError(f"deploy command exited {done.returncode}: {last[0][:200]}")


def register(registry: Registry) -> None:
    registry.add_publisher("site", SitePublisher)

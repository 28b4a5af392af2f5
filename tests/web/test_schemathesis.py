"""Schemathesis over the desk's OpenAPI, as an admin, against a seeded throwaway store.

Path ids are taken from existing rows (articles, the configured destination,
whose webhook is a real loopback receiver so "publish now" really delivers);
the run fails on any 5xx, on answers the description does not allow, and
when an operation only ever answered 401/403/404 (schemathesis alone would
pass that).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from tests.servers.webhook_server import WebhookReceiver
from tests.web.support import add_post, desk

from waikan.web import accounts


def test_openapi_fuzz(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "ws"
    home.mkdir()
    monkeypatch.setenv("WAIKAN_WEBHOOK_SECRET", "s3cret")
    with (
        WebhookReceiver(secret="s3cret") as hook,
        _configured(home, hook.url),
        desk(home, (("root", "admin"),), **{"fetch.allow_private_networks": "true"}) as (
            server,
            ws,
        ),
    ):
        ids = [add_post(ws, n) for n in range(1, 7)]
        token = accounts.issue_token(ws.store, "root")
        spec = httpx.get(server.url + "desk/api/v1/openapi.json").json()
        real = {"article_id": {"type": "integer", "enum": ids}}
        real["destination"] = {"type": "string", "enum": ["hook"]}
        for item in spec["paths"].values():
            for op in item.values():
                for param in op.get("parameters", []):
                    if param["name"] in real:
                        param["schema"] = real[param["name"]]
        schema = schemathesis.openapi.from_dict(spec)
        base = server.url + "desk/api/v1"
        auth = {"Authorization": f"Bearer {token}"}
        seen: dict[str, set[int]] = defaultdict(set)
        operations = [r.ok() for r in schema.get_all_operations()]
        assert len(operations) == sum(len(item) for item in spec["paths"].values()) >= 13
        for operation in operations:
            _fuzz(operation, base, auth, seen[operation.label])
        for label, codes in seen.items():
            assert codes - {401, 403, 404}, f"{label} only answered {sorted(codes)}"
        assert len(seen) == len(operations)
        assert 200 in seen["POST /destinations/{destination}/pause"]
        assert 200 in seen["POST /glossary"]
    assert hook.requests  # "publish now" delivered at least once


@contextmanager
def _configured(home: Path, url: str) -> Iterator[None]:
    """One review-mode webhook destination at ``url``."""
    (home / "waikan.toml").write_text(
        f'[publish.hook]\ntype = "webhook"\nurl = "{url}"\nreview = "review"\ntimeout = 5\n',
        encoding="utf-8",
    )
    yield


def _fuzz(
    operation: schemathesis.APIOperation, base: str, auth: dict[str, str], codes: set[int]
) -> None:
    """Run one operation's generated cases; ``codes`` collects the statuses seen."""

    @given(case=operation.as_strategy())
    @settings(
        max_examples=15,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case) -> None:
        response = case.call(base_url=base, headers=auth)
        codes.add(response.status_code)
        assert response.status_code < 500, (case.path, case.body, response.text)
        case.validate_response(response)

    run()

"""Schemathesis over the desk's OpenAPI, as an admin, against a seeded throwaway store.

Path ids are taken from existing rows; the run fails on any 5xx, on answers
the description does not allow, and when an operation only ever answered
401/403/404 (schemathesis alone would pass that).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from tests.web.support import add_post, desk

from waikan.web import accounts


def test_openapi_fuzz(tmp_path: Path) -> None:
    with desk(tmp_path / "ws", (("root", "admin"),)) as (server, ws):
        ids = [add_post(ws, n) for n in range(1, 7)]
        token = accounts.issue_token(ws.store, "root")
        spec = httpx.get(server.url + "desk/api/v1/openapi.json").json()
        for item in spec["paths"].values():
            for op in item.values():
                for param in op.get("parameters", []):
                    if param["name"] == "article_id":
                        param["schema"] = {"type": "integer", "enum": ids}
        schema = schemathesis.openapi.from_dict(spec)
        base = server.url + "desk/api/v1"
        auth = {"Authorization": f"Bearer {token}"}
        seen: dict[str, set[int]] = defaultdict(set)
        operations = [r.ok() for r in schema.get_all_operations()]
        assert len(operations) >= 6
        for operation in operations:
            _fuzz(operation, base, auth, seen[operation.label])
        for label, codes in seen.items():
            assert codes - {401, 403, 404}, f"{label} only answered {sorted(codes)}"
        assert len(seen) == len(operations)


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

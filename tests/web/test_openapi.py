"""Every API route is in the OpenAPI description, enumerated off the router.

A route added later without a description fails here; ``{action}`` routes are
expanded from the same tuples the handlers check against.
"""

from __future__ import annotations

import re
from pathlib import Path

from starlette.routing import Route

from waikan.config import load
from waikan.web.app import ACTIONS, DESTINATION_ACTIONS, create_app, starlette_of
from waikan.web.openapi import spec
from waikan.workspace import Workspace

PREFIX = "/desk/api/v1"
EXPANSIONS = {"{article_id}/{action}": ACTIONS, "{destination}/{action}": DESTINATION_ACTIONS}


def _api_operations(tmp_path: Path) -> set[tuple[str, str]]:
    """(OpenAPI path, method) for every API route of the app the desk serves."""
    ws = Workspace(load(tmp_path / "ws", env={}, overrides={}))
    try:
        app = starlette_of(create_app(ws))
    finally:
        ws.close()
    out: set[tuple[str, str]] = set()
    for route in app.routes:
        if not isinstance(route, Route) or not route.path.startswith(PREFIX + "/"):
            continue
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path.removeprefix(PREFIX))
        paths = [path]
        for pattern, actions in EXPANSIONS.items():
            if path.endswith(pattern):
                paths = [path.replace("{action}", a) for a in actions]
        assert "{action}" not in paths[0], f"{route.path}: which actions? add an expansion"
        for method in route.methods or ():
            if method != "HEAD":
                out.update((p, method.lower()) for p in paths)
    return out


def test_every_api_route_is_described(tmp_path: Path) -> None:
    routes = _api_operations(tmp_path)
    described = {(path, m) for path, item in spec()["paths"].items() for m in item}
    assert routes - described == set(), "API routes missing from the OpenAPI description"
    assert described - routes == set(), "operations described but not routed"
    # the ones this check was written for
    assert ("/glossary", "post") in routes
    assert {("/destinations/{destination}/pause", "post")} <= routes
    assert len(routes) == 4 + len(ACTIONS) + len(DESTINATION_ACTIONS) + 1


def test_every_operation_documents_its_answers() -> None:
    for path, item in spec()["paths"].items():
        for method, op in item.items():
            assert op.get("summary"), (path, method)
            assert "200" in op["responses"], (path, method)
            params = set(re.findall(r"\{(\w+)\}", path))
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert params == declared, (path, method)
            if op.get("security", [{"token": []}]):  # protected: says what no token gets
                assert "401" in op["responses"], (path, method)

"""The OpenAPI 3 description of ``/desk/api/v1``, written out (no generator).

tests/web/test_openapi.py enumerates the API routes off the router (each
``{action}`` expanded from :data:`waikan.web.app.ACTIONS` and
:data:`~waikan.web.app.DESTINATION_ACTIONS`) and fails on any route missing here.
"""

from __future__ import annotations

from typing import Any

from waikan.store import MAX_INT

_ID = {"name": "article_id", "in": "path", "required": True, "schema": {"type": "integer"}}
# The desk refuses NUL characters (400): PostgreSQL text cannot hold them.
_NO_NUL = r"^[^\x00]*$"
_TEXT = r"^[^\x00]*[^\x00\s][^\x00]*$"  # some non-space character, and no NUL
_DEST = {
    "name": "destination",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": _NO_NUL},
}
_REVISION = {
    "type": "integer",
    "minimum": 0,
    "maximum": MAX_INT,
    "description": (
        "the post revision the editor saw; a stale one is answered 409 (regenerate: "
        "checked before the model call, and again when its answer is stored; an answer "
        "that lost to a change made meanwhile is dropped with 409, its spend recorded)"
    ),
}
_ONLY_REVISION = {"type": "object", "properties": {"revision": _REVISION}}
_ERR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


def _resp(ref: str, *codes: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "200": {
            "description": "OK",
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
        }
    }
    # 400 on every operation: a NUL in the URL or in a field read is refused (app._refuse_nul).
    for code in sorted({400, *codes}):
        out[str(code)] = {"description": "error", "content": _ERR}
    return out


def _action(summary: str, body: dict[str, Any] | None, *codes: int) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "parameters": [_ID],
        "responses": _resp("ActionResult", 400, 401, 403, 404, 409, *codes),
    }
    if body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": body}},
        }
    return {"post": op}


def _destination(summary: str) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary + " (admins)",
            "parameters": [_DEST],
            "responses": _resp("DestinationState", 401, 403, 404),
        }
    }


def _glossary_entry() -> dict[str, Any]:
    from waikan.summarize.glossary import KINDS

    form = {"type": "string", "maxLength": 200, "pattern": _NO_NUL}
    return {
        "type": "object",
        "properties": {
            "en": {"type": "string", "maxLength": 300, "pattern": _TEXT},
            "zh_hans": {**form, "pattern": _TEXT},
            "kind": {"type": "string", "enum": list(KINDS)},
            "zh_hant_tw": form,
            "zh_hant_hk": form,
            "variants": {
                "type": "string",
                "pattern": _NO_NUL,
                "description": "other written forms, comma-separated",
            },
        },
        "required": ["en", "zh_hans"],
    }


def spec() -> dict[str, Any]:
    article_row = {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "status": {"type": "string"},
            "reason": {"type": ["string", "null"]},
            "title": {"type": ["string", "null"]},
            "source_name": {"type": ["string", "null"]},
            "published": {"type": ["string", "null"]},
            "url": {"type": "string"},
        },
        "required": ["id", "status", "url"],
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "waikan editor's desk", "version": "1"},
        "servers": [{"url": "/desk/api/v1"}],
        "components": {
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {"error": {"type": "string"}},
                    "required": ["error"],
                },
                "ArticleRow": article_row,
                "Queue": {
                    "type": "object",
                    "properties": {
                        "articles": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/ArticleRow"},
                        },
                        "older": {"type": ["integer", "null"]},
                        "newer": {"type": ["integer", "null"]},
                    },
                    "required": ["articles"],
                },
                "Article": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "integer"},
                        "status": {"type": "string"},
                        "revision": _REVISION,
                        "paragraphs": {"type": "array", "items": {"type": "string"}},
                        "summary": {"type": "array", "items": {"type": "string"}},
                        "findings": {"type": "array", "items": {"type": "string"}},
                    },
                    "required": ["id", "status", "revision", "summary", "findings"],
                },
                "Audit": {
                    "type": "object",
                    "properties": {"entries": {"type": "array", "items": {"type": "object"}}},
                    "required": ["entries"],
                },
                "GlossaryEntry": {
                    "type": "object",
                    "properties": {"en": {"type": "string"}, "zh_hans": {"type": "string"}},
                    "required": ["en", "zh_hans"],
                },
                "DestinationState": {
                    "type": "object",
                    "properties": {"id": {"type": "string"}, "paused": {"type": "boolean"}},
                    "required": ["id", "paused"],
                },
                "ActionResult": {
                    "type": "object",
                    "properties": {"id": {"type": "integer"}, "status": {"type": "string"}},
                    "required": ["id", "status"],
                },
            },
        },
        "security": [{"token": []}],
        "paths": {
            "/articles": {
                "get": {
                    "summary": "The review queue, newest first, paged by id",
                    "parameters": [
                        {"name": n, "in": "query", "required": False, "schema": s}
                        for n, s in (
                            (
                                "status",
                                {
                                    "type": "string",
                                    "enum": [
                                        "review",
                                        "summarized",
                                        "needs_review",
                                        "approved",
                                        "published",
                                        "rejected",
                                    ],
                                },
                            ),
                            ("source", {"type": "string", "pattern": _NO_NUL}),
                            ("destination", {"type": "string", "pattern": _NO_NUL}),
                            ("day", {"type": "string", "format": "date"}),
                            ("before", {"type": "integer", "minimum": 1, "maximum": 2**53}),
                            ("after", {"type": "integer", "minimum": 0, "maximum": 2**53}),
                        )
                    ],
                    "responses": _resp("Queue", 400, 401),
                }
            },
            "/articles/{article_id}": {
                "get": {
                    "summary": "One article with its summary, guard findings and glossary hits",
                    "parameters": [_ID],
                    "responses": _resp("Article", 401, 404),
                }
            },
            "/articles/{article_id}/audit": {
                "get": {
                    "summary": "The article's audit log",
                    "parameters": [_ID],
                    "responses": _resp("Audit", 401, 404),
                }
            },
            "/articles/{article_id}/approve": _action("Approve the post", _ONLY_REVISION),
            "/articles/{article_id}/reject": _action(
                "Reject the post",
                {
                    "type": "object",
                    "properties": {
                        "reason": {"type": "string", "maxLength": 500, "pattern": _NO_NUL},
                        "revision": _REVISION,
                    },
                },
            ),
            "/articles/{article_id}/regenerate": _action(
                "A fresh summary from the model (one call, counted in the daily budget)",
                _ONLY_REVISION,
            ),
            "/articles/{article_id}/publish": _action(
                "Approve if needed and run one publishing pass now",
                _ONLY_REVISION,
                502,
            ),
            "/articles/{article_id}/unpublish": _action(
                "Take the post back from every destination it went to", _ONLY_REVISION, 502
            ),
            "/glossary": {
                "post": {
                    "summary": "Add or replace a glossary entry (keyed by the English name)",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _glossary_entry()}},
                    },
                    "responses": _resp("GlossaryEntry", 400, 401, 403),
                }
            },
            "/destinations/{destination}/pause": _destination("Hold a destination's deliveries"),
            "/destinations/{destination}/resume": _destination("Let a paused destination send"),
            "/openapi.json": {
                "get": {
                    "summary": "This description",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "OK",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        "400": {"description": "error", "content": _ERR},
                    },
                }
            },
            "/articles/{article_id}/edit": _action(
                "Replace the summary (the guard runs again); revision is the one edited",
                {
                    "type": "object",
                    "properties": {
                        "text": {"type": "string", "pattern": _TEXT},
                        "revision": _REVISION,
                    },
                    "required": ["text", "revision"],
                },
            ),
        },
    }

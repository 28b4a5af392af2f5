"""The OpenAPI 3 description of ``/desk/api/v1`` (written out: five operations, no generator)."""

from __future__ import annotations

from typing import Any

_ID = {"name": "article_id", "in": "path", "required": True, "schema": {"type": "integer"}}
_ERR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


def _resp(ref: str, *codes: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "200": {
            "description": "OK",
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
        }
    }
    for code in codes:
        out[str(code)] = {"description": "error", "content": _ERR}
    return out


def _action(summary: str, body: dict[str, Any] | None) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "parameters": [_ID],
        "responses": _resp("ActionResult", 400, 401, 403, 404, 409),
    }
    if body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": body}},
        }
    return {"post": op}


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
                        "revision": {"type": "integer", "minimum": 0, "maximum": 2**53},
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
                            ("source", {"type": "string"}),
                            ("destination", {"type": "string"}),
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
                    "responses": _resp("Audit", 401),
                }
            },
            "/articles/{article_id}/approve": _action("Approve the post", None),
            "/articles/{article_id}/reject": _action(
                "Reject the post",
                {"type": "object", "properties": {"reason": {"type": "string", "maxLength": 500}}},
            ),
            "/articles/{article_id}/edit": _action(
                "Replace the summary (the guard runs again); revision is the one edited",
                {
                    "type": "object",
                    "properties": {
                        "text": {"type": "string"},
                        "revision": {"type": "integer", "minimum": 0, "maximum": 2**53},
                    },
                    "required": ["text", "revision"],
                },
            ),
        },
    }

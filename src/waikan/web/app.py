"""The editor's desk (``/desk``), its JSON API (``/desk/api/v1``), ``/metrics`` and the site.

Every route declares who may call it (``public``, ``editor`` or ``admin``)
through :func:`access`; the security tests read that mark off the router, so
a new route cannot slip past them. A state-changing request made with a
session cookie must carry the session's CSRF token; Bearer-token requests
(the API) are exempt; a request with neither gets 401.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from markupsafe import Markup, escape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from waikan.errors import ConflictError, UsageError, WaikanError
from waikan.store import MAX_INT
from waikan.web import accounts, i18n, queries, svg
from waikan.web.accounts import Lockout, User
from waikan.workspace import Workspace

__all__ = ["create_app"]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION_COOKIE = "waikan_desk"
HERE = Path(__file__).parent
Handler = Callable[[Request, "Ctx"], Awaitable[Response]]


@dataclass
class Ctx:
    """Who is asking and how: the user, the credential used, the CSRF token, the words."""

    user: User | None = None
    via: str = ""  # session | token
    csrf: str = ""
    lang: str = "zh"
    t: dict[str, str] = field(default_factory=dict)


class DeskError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Desk:
    """The shared state of one app: the workspace, templates, locks and the site rebuild."""

    def __init__(self, ws: Workspace, on_change: Callable[[], None] | None = None) -> None:
        self.ws = ws
        cfg = ws.config
        self.lockout = Lockout(
            per_account=int(cfg["web.lockout_account"]),
            per_address=int(cfg["web.lockout_address"]),
            window=timedelta(seconds=int(cfg["web.lockout_window"])),
        )
        self.language = str(cfg["web.language"])
        self.page_size = int(cfg["web.page_size"])
        self.on_change = on_change
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(HERE / "templates")),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self.env.filters["plain"] = plain_json
        self.env.globals["diff"] = audit_diff

    @property
    def store(self) -> Any:
        return self.ws.store

    def render(
        self, request: Request, ctx: Ctx, name: str, status: int = 200, **values: Any
    ) -> HTMLResponse:
        html = self.env.get_template(name).render(
            request=request, ctx=ctx, t=ctx.t, path=request.url.path, **values
        )
        response = HTMLResponse(html, status_code=status)
        if request.query_params.get("lang") in i18n.LANGUAGES:  # the choice sticks
            response.set_cookie("waikan_lang", ctx.lang, samesite="lax", httponly=True)
        return response

    def changed(self) -> None:
        if self.on_change is not None:
            self.on_change()


def plain_json(value: Any) -> str:
    """JSON as a reader sees it: Chinese as Chinese, not ``\\u`` escapes."""
    return "" if value is None else json.dumps(value, ensure_ascii=False)


def audit_diff(before: Any, after: Any) -> list[tuple[str, str]]:
    """A summary change as (sign, paragraph) lines: ``-`` removed, ``+`` added, `` `` kept."""
    import difflib

    old = before.get("summary") if isinstance(before, dict) else None
    new = after.get("summary") if isinstance(after, dict) else None
    if not isinstance(old, list) or not isinstance(new, list):
        return []
    out = []
    for line in difflib.ndiff([str(p) for p in old], [str(p) for p in new]):
        if line[:1] in "-+ ":
            out.append((line[:1], line[2:]))
    return out


def _desk(request: Request) -> Desk:
    desk: Desk = request.app.state.desk
    return desk


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/desk/api/")


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _identify(request: Request, desk: Desk) -> Ctx:
    lang = i18n.pick(
        desk.language,
        request.headers.get("accept-language"),
        request.query_params.get("lang") or request.cookies.get("waikan_lang"),
    )
    ctx = Ctx(lang=lang, t=dict(i18n.words(lang)))
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        user = accounts.token_user(desk.store, auth[7:].strip())
        if user is not None:
            ctx.user, ctx.via = user, "token"
        return ctx
    sid = request.cookies.get(SESSION_COOKIE)
    if sid:
        found = accounts.session_user(desk.store, sid)
        if found is not None:
            ctx.user, ctx.csrf = found
            ctx.via = "session"
    return ctx


async def _csrf_ok(request: Request, ctx: Ctx) -> bool:
    sent = request.headers.get("x-csrf-token", "")
    if not sent and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        sent = str((await request.form()).get("csrf", ""))
    return bool(sent) and secrets.compare_digest(sent, ctx.csrf)


def _fail(request: Request, desk: Desk, ctx: Ctx, status: int, message: str) -> Response:
    if _is_api(request):
        return JSONResponse({"error": message}, status_code=status)
    return desk.render(request, ctx, "error.html", status=status, message=message)


def access(level: str) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Mark and guard a route: ``public``, ``editor`` (any account) or ``admin``."""

    def wrap(fn: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            desk = _desk(request)
            ctx = await _identify(request, desk)
            if level != "public":
                if ctx.user is None:
                    if request.method in SAFE_METHODS and not _is_api(request):
                        nxt = urlencode({"next": request.url.path})
                        return RedirectResponse(f"/desk/login?{nxt}", status_code=303)
                    return _fail(request, desk, ctx, 401, "login required")
                if (
                    request.method not in SAFE_METHODS
                    and ctx.via == "session"
                    and not await _csrf_ok(request, ctx)
                ):
                    return _fail(request, desk, ctx, 403, "CSRF token missing or wrong")
                if level == "admin" and not ctx.user.is_admin:
                    return _fail(request, desk, ctx, 403, ctx.t["forbidden"])
            try:
                _refuse_nul(
                    *(t for pair in request.query_params.multi_items() for t in pair),
                    *(v for v in request.path_params.values() if isinstance(v, str)),
                )
                return await fn(request, ctx)
            except DeskError as exc:
                return _fail(request, desk, ctx, exc.status, exc.message)

        endpoint.__name__ = fn.__name__
        endpoint.__doc__ = fn.__doc__
        endpoint.desk_access = level  # type: ignore[attr-defined]
        return endpoint

    return wrap


# -- request helpers -------------------------------------------------------------------


def _refuse_nul(*texts: str) -> None:
    """Bad input on every store: PostgreSQL text cannot hold NUL (a 500 there, not a 400)."""
    if any("\x00" in t for t in texts):
        raise DeskError(400, "the request contains a NUL character")


class Fields:
    """A request's fields. Reading one that holds NUL is a 400 (:func:`_refuse_nul`);
    fields no handler reads stay ignored, as the API description allows."""

    def __init__(self, values: dict[str, str]) -> None:
        self._values = values

    def get(self, name: str, default: str = "") -> str:
        value = self._values.get(name, default)
        _refuse_nul(value)
        return value


async def _data(request: Request) -> Fields:
    """The request's fields: a JSON object (API) or a form."""
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            raise DeskError(400, "the body is not valid JSON") from None
        if not isinstance(body, dict):
            raise DeskError(400, "the body must be a JSON object")
        return Fields({str(k): _field(v) for k, v in body.items()})
    form = await request.form()
    return Fields({k: v for k, v in form.items() if isinstance(v, str)})


def _field(value: Any) -> str:
    """A JSON value as a form field would carry it (JSON Schema's 3.0 is the integer 3)."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _article_id(request: Request) -> int:
    value = int(request.path_params["article_id"])
    if value > MAX_INT:  # no such row, and PostgreSQL would refuse the parameter
        raise HTTPException(404)
    return value


def _article_or_404(desk: Desk, ctx: Ctx, article_id: int) -> Any:
    found = desk.store.article(article_id)
    if found is None:
        raise DeskError(404, ctx.t["not_found"])
    return found


# -- login -----------------------------------------------------------------------------


@access("public")
async def login_form(request: Request, ctx: Ctx) -> Response:
    return _desk(request).render(
        request, ctx, "login.html", error="", next=request.query_params.get("next", "")
    )


def _safe_next(value: str) -> str:
    return value if value.startswith("/desk") and not value.startswith("//") else "/desk/queue"


@access("public")
async def login(request: Request, ctx: Ctx) -> Response:
    desk = _desk(request)
    data = await _data(request)
    name, password = data.get("name", "").strip(), data.get("password", "")
    address = _client(request)
    if accounts.locked(desk.store, name, address, desk.lockout):
        return desk.render(request, ctx, "login.html", status=429, error=ctx.t["locked"], next="")
    user = await run_in_threadpool(accounts.check_password, desk.store, name, password)
    if user is None:
        accounts.record_failure(desk.store, name, address)
        return desk.render(
            request, ctx, "login.html", status=401, error=ctx.t["bad_login"], next=""
        )
    sid, _csrf = accounts.new_session(desk.store, user, request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse(_safe_next(data.get("next", "")), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        sid,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
        max_age=int(accounts.SESSION_LIFETIME.total_seconds()),
    )
    return response


@access("editor")
async def logout(request: Request, ctx: Ctx) -> Response:
    sid = request.cookies.get(SESSION_COOKIE)
    if sid:
        accounts.end_session(_desk(request).store, sid)
    response = RedirectResponse("/desk/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@access("public")
async def home(request: Request, ctx: Ctx) -> Response:
    return RedirectResponse("/desk/queue", status_code=303)


# -- the queue ---------------------------------------------------------------------------


def _int_param(request: Request, name: str) -> int | None:
    value = request.query_params.get(name, "")
    if not value:
        return None
    if not value.isdigit() or len(value) > 18:
        raise DeskError(400, f"{name} must be a whole number")
    # An id cursor past every id means the same as the largest id: PostgreSQL's INTEGER
    # ids refuse a bigger number (a 500 found by the OpenAPI fuzz on PostgreSQL).
    return min(int(value), MAX_INT)


def _queue_filter(request: Request) -> queries.QueueFilter:
    qp = request.query_params
    status = qp.get("status", "review")
    if status not in queries.STATUSES:
        raise DeskError(400, f"unknown status {status!r}")
    day = qp.get("day", "")
    if day and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", day):
        raise DeskError(400, "day must be YYYY-MM-DD")
    try:
        if day:
            datetime.strptime(day, "%Y-%m-%d")
    except ValueError:
        raise DeskError(400, "day must be YYYY-MM-DD") from None
    return queries.QueueFilter(
        status=status,
        source=qp.get("source", "")[:200],
        destination=qp.get("destination", "")[:100],
        day=day,
    )


def _queue_page(request: Request) -> tuple[queries.QueueFilter, queries.QueuePage]:
    desk = _desk(request)
    f = _queue_filter(request)
    page = queries.queue(
        desk.store,
        f,
        before=_int_param(request, "before"),
        after=_int_param(request, "after"),
        last=request.query_params.get("last") == "1",
        size=desk.page_size,
    )
    return f, page


@access("editor")
async def queue_page(request: Request, ctx: Ctx) -> Response:
    desk = _desk(request)
    f, page = _queue_page(request)
    base = f.params()

    def link(**extra: Any) -> str:
        return "/desk/queue?" + urlencode({**base, **extra})

    return desk.render(
        request,
        ctx,
        "queue.html",
        f=f,
        page=page,
        statuses=queries.STATUSES,
        sources=queries.sources_names(desk.store),
        destinations=queries.destinations(desk.ws.config),
        link=link,
    )


# -- one article ---------------------------------------------------------------------


_QUOTED = re.compile(r"(\S+) is not in the article|[「“\"']([^」”\"']{1,40})[」”\"']")


def _needles(findings: list[str]) -> list[str]:
    out: list[str] = []
    for message in findings:
        for m in _QUOTED.finditer(message):
            needle = (m.group(1) or m.group(2) or "").strip()
            if needle and needle not in out:
                out.append(needle)
    return sorted(out, key=len, reverse=True)


def highlight(paragraph: str, needles: list[str]) -> Markup:
    """The paragraph, escaped, with each finding's quoted text wrapped in <mark>."""
    if not needles:
        return Markup(escape(paragraph))
    pattern = re.compile("|".join(re.escape(n) for n in needles))
    parts: list[str] = []
    pos = 0
    for m in pattern.finditer(paragraph):
        parts.append(str(escape(paragraph[pos : m.start()])))
        parts.append(f'<mark class="finding">{escape(m.group())}</mark>')
        pos = m.end()
    parts.append(str(escape(paragraph[pos:])))
    return Markup("".join(parts))


def article_view(desk: Desk, article_id: int, ctx: Ctx) -> dict[str, Any]:
    """What the article page and the API show: text, summary, findings, glossary hits."""
    from waikan.publish.review import guard_findings
    from waikan.summarize.guard import Article
    from waikan.summarize.service import load_glossary

    a = _article_or_404(desk, ctx, article_id)
    summary = desk.store.current_summary(a.id)
    findings: list[str] = []
    if summary is not None:
        findings = [m for _k, m in desk.store.findings_of(summary.id)]
        if summary.backend == "editor":  # an editor's text: the guard's verdict, re-run
            findings = guard_findings(desk.ws, a, summary.paragraphs)
    glossary = load_glossary(desk.store, desk.ws.config)
    text = Article.of(a.title, a.caption, a.paragraphs, a.published)
    hits = [
        {"en": h.entry.en, "zh": h.entry.zh_hans, "count": h.count}
        for h in glossary.find(text.text)
    ]
    return {
        "article": a,
        "summary": summary,
        "findings": findings,
        "hits": hits,
        "revision": desk.store.revision(a.id),
    }


def _article_json(view: dict[str, Any]) -> dict[str, Any]:
    a, s = view["article"], view["summary"]
    return {
        "id": a.id,
        "status": a.status,
        "reason": a.reason,
        "source": a.source_name,
        "url": a.url,
        "title": a.title,
        "published": a.published,
        "paragraphs": list(a.paragraphs),
        "summary": list(s.paragraphs) if s else [],
        "title_zh": s.title_zh if s else None,
        "revision": view["revision"],
        "findings": view["findings"],
        "glossary_hits": view["hits"],
    }


@access("editor")
async def article_page(request: Request, ctx: Ctx) -> Response:
    desk = _desk(request)
    view = article_view(desk, _article_id(request), ctx)
    needles = _needles(view["findings"])
    return desk.render(
        request,
        ctx,
        "article.html",
        **view,
        marked=[
            highlight(p, needles) for p in (view["summary"].paragraphs if view["summary"] else ())
        ],
        audit=queries.audit_of(desk.store, view["article"].id, limit=50),
        notice=request.query_params.get("done", ""),
        conflict=None,
        draft="",
    )


# -- actions -------------------------------------------------------------------------

ACTIONS = ("approve", "reject", "edit", "regenerate", "publish", "unpublish")
DESTINATION_ACTIONS = ("pause", "resume")


def perform(
    desk: Desk, user: User, article_id: int, action: str, data: Fields, ctx: Ctx
) -> dict[str, Any]:
    """One editor action through the publish module's functions (the CLI's own rules).

    ``revision`` (the post revision the editor saw; required for ``edit``) is
    compared and swapped by the store in the action's transaction (regenerate: before
    the model call and again when its answer is stored): a stale one is a
    :class:`Conflict`, whichever process made the newer revision.
    """
    from waikan.publish import review

    if action not in ACTIONS:
        raise DeskError(404, f"unknown action {action!r}")
    a = _article_or_404(desk, ctx, article_id)
    who = user.name
    revision = _revision_field(data, required=action == "edit")
    try:
        if action == "approve":
            return {"status": review.approve(desk.ws, a.id, who, revision)}
        if action == "reject":
            reason = data.get("reason", "").strip()[:500] or None
            return {"status": review.reject(desk.ws, a.id, who, reason, revision)}
        if action in ("edit", "regenerate"):
            if action == "edit":
                assert revision is not None
                result = review.edit(desk.ws, a.id, data.get("text", ""), who, revision)
            else:
                result = review.regenerate(desk.ws, a.id, who, revision)
            return {
                "status": result.status,
                "revision": result.revision,
                "findings": result.findings,
            }
        if action == "unpublish":
            errors = review.unpublish(desk.ws, a.id, who, revision=revision)
            if errors:
                raise DeskError(502, "; ".join(errors))
            return {"status": "rejected"}
        return _publish_now(desk, user, a.id, revision)  # the one action left: publish
    except ConflictError as exc:
        raise Conflict(exc.revision, ctx.t["conflict"].format(rev=exc.revision)) from None
    except UsageError as exc:  # the editor's input (an empty or unchanged text)
        raise DeskError(400, str(exc)) from None
    except WaikanError as exc:
        raise DeskError(409, str(exc)) from None


def _revision_field(data: Fields, *, required: bool) -> int | None:
    raw = data.get("revision", "").strip()
    if not raw and not required:
        return None
    if not re.fullmatch(r"[0-9]{1,16}", raw) or int(raw) > MAX_INT:  # the API's stated bound
        raise DeskError(
            400, f"revision (the post revision you saw) must be a whole number up to {MAX_INT}"
        )
    return int(raw)


class Conflict(DeskError):
    def __init__(self, revision: int, message: str) -> None:
        super().__init__(409, message)
        self.revision = revision


def _publish_now(desk: Desk, user: User, article_id: int, revision: int | None) -> dict[str, Any]:
    """Approve (if needed) and run one publishing pass; destination errors are reported."""
    from waikan.publish import review
    from waikan.publish.run import publish

    review.approve(desk.ws, article_id, user.name, revision)
    report = publish(desk.ws)
    found = desk.store.article(article_id)
    if report.errors:
        raise DeskError(502, "; ".join(report.errors))
    return {"status": found.status if found else ""}


@access("editor")
async def article_action(request: Request, ctx: Ctx) -> Response:
    desk = _desk(request)
    action = request.path_params["action"]
    article_id = _article_id(request)
    data = await _data(request)
    assert ctx.user is not None
    try:
        result = await run_in_threadpool(perform, desk, ctx.user, article_id, action, data, ctx)
    except Conflict as exc:
        if _is_api(request):
            return JSONResponse({"error": exc.message, "revision": exc.revision}, status_code=409)
        view = article_view(desk, article_id, ctx)
        needles = _needles(view["findings"])
        return desk.render(
            request,
            ctx,
            "article.html",
            status=409,
            **view,
            marked=[
                highlight(p, needles)
                for p in (view["summary"].paragraphs if view["summary"] else ())
            ],
            audit=queries.audit_of(desk.store, article_id, limit=50),
            notice="",
            conflict=exc.message,
            draft=data.get("text", ""),
        )
    desk.changed()
    if _is_api(request):
        return JSONResponse({"id": article_id, **result})
    return RedirectResponse(
        f"/desk/articles/{article_id}?" + urlencode({"done": action}), status_code=303
    )


# -- audit -------------------------------------------------------------------------------


def _audit_json(row: dict[str, Any]) -> dict[str, Any]:
    at = row["at"]
    return {
        "id": row["id"],
        "at": at.isoformat() if isinstance(at, datetime) else str(at),
        "actor": row["actor"],
        "action": row["action"],
        "article_id": row["article_id"],
        "before": row["before"],
        "after": row["after"],
        "note": row["note"],
    }


@access("editor")
async def audit_page(request: Request, ctx: Ctx) -> Response:
    desk = _desk(request)
    raw = request.query_params.get("article", "")
    article_id = int(raw) if raw.isdigit() and len(raw) < 18 else None
    rows = queries.audit_of(desk.store, article_id)
    if request.query_params.get("format") == "jsonl":
        body = "".join(json.dumps(_audit_json(r), ensure_ascii=False) + "\n" for r in rows)
        return Response(
            body,
            media_type="application/x-ndjson",
            headers={"content-disposition": 'attachment; filename="audit.jsonl"'},
        )
    return desk.render(request, ctx, "audit.html", rows=rows, article_id=article_id)


# -- dashboard -----------------------------------------------------------------------------


@access("editor")
async def dashboard_page(request: Request, ctx: Ctx) -> Response:
    desk = _desk(request)
    d = queries.dashboard(desk.store)
    labels = d["labels"]
    spend = d["spend"]
    t = ctx.t
    cfg = desk.ws.config
    limit = float(cfg.values.get("summarize.daily_cost_budget") or 0)
    today = spend.get(d["today"], {"cost": 0.0})
    charts = [
        (t["articles_per_day"], svg.stacked_bars(labels, d["per_source"], t["articles_per_day"])),
        (
            t["model_calls"],
            svg.bars(labels, [spend.get(x, {}).get("calls", 0) for x in labels], t["model_calls"]),
        ),
        (
            t["tokens_per_day"],
            svg.bars(
                labels, [spend.get(x, {}).get("tokens", 0) for x in labels], t["tokens_per_day"]
            ),
        ),
        (
            t["cost_per_day"],
            svg.bars(labels, [spend.get(x, {}).get("cost", 0) for x in labels], t["cost_per_day"]),
        ),
        (
            t["findings_by_kind"],
            svg.bars(
                ["0000-" + k for k in sorted(d["kinds"])],
                [d["kinds"][k] for k in sorted(d["kinds"])],
                t["findings_by_kind"],
            ),
        ),
        (t["latency"], svg.histogram(d["latency"], t["latency"], (30, 60, 120, 240, 480, 1440))),
        (t["budget"], svg.gauge(float(today.get("cost", 0.0)), limit, t["budget"])),
    ]
    return desk.render(request, ctx, "dashboard.html", charts=[(n, Markup(c)) for n, c in charts])


# -- glossary ------------------------------------------------------------------------------


@access("editor")
async def glossary_page(request: Request, ctx: Ctx) -> Response:
    from waikan.summarize.glossary_store import user_entries

    desk = _desk(request)
    q = request.query_params.get("q", "").strip().casefold()
    every = user_entries(desk.store)
    editing = next((e for e in every if e.key == request.query_params.get("edit")), None)
    entries = [
        e
        for e in every
        if not q or q in e.en.casefold() or q in e.zh_hans or any(q in v for v in e.variants)
    ][:500]
    from waikan.summarize.glossary import KINDS

    return desk.render(
        request, ctx, "glossary.html", entries=entries, q=q, kinds=KINDS, editing=editing
    )


def _glossary_entry(data: Fields) -> Any:
    from waikan.summarize.glossary import KINDS, Entry

    en = data.get("en", "").strip()
    zh = data.get("zh_hans", "").strip()
    if not en or not zh:
        raise DeskError(400, "a glossary entry needs the English name and the simplified form")
    kind = data.get("kind", "person").strip() or "person"
    if kind not in KINDS:
        raise DeskError(400, f"kind must be one of {', '.join(KINDS)}")
    tw, hk = data.get("zh_hant_tw", "").strip(), data.get("zh_hant_hk", "").strip()
    if any(len(v) > 200 for v in (zh, tw, hk)) or len(en) > 300:
        raise DeskError(400, "a glossary form is at most 200 characters")
    variants = tuple(v.strip() for v in data.get("variants", "").split(",") if v.strip())
    return Entry(
        en=en, kind=kind, zh_hans=zh, zh_hant_tw=tw, zh_hant_hk=hk, variants=variants, origin="user"
    )


@access("editor")
async def glossary_save(request: Request, ctx: Ctx) -> Response:
    from waikan.publish import outbox
    from waikan.summarize.glossary_store import save_entries

    desk = _desk(request)
    entry = _glossary_entry(await _data(request))
    save_entries(desk.store, [entry])
    assert ctx.user is not None
    with desk.store.engine.begin() as c:
        outbox.audit(
            c,
            actor=ctx.user.name,
            action="glossary",
            article_id=None,
            after={"en": entry.en, "zh": entry.zh_hans},
        )
    if _is_api(request):
        return JSONResponse({"en": entry.en, "zh_hans": entry.zh_hans})
    return RedirectResponse("/desk/glossary", status_code=303)


@access("editor")
async def glossary_remove(request: Request, ctx: Ctx) -> Response:
    from waikan.summarize.glossary_store import remove_entry

    desk = _desk(request)
    key = (await _data(request)).get("key", "")
    if not remove_entry(desk.store, key):
        raise DeskError(404, "no such glossary entry")
    return RedirectResponse("/desk/glossary", status_code=303)


# -- sources, settings, users (admin) ------------------------------------------------------


def _sources(desk: Desk) -> list[dict[str, Any]]:
    from sqlalchemy import func, select

    from waikan.sources.repo import SourceRepo
    from waikan.store import schema

    a = schema.articles
    since = datetime.now(UTC) - timedelta(days=7)
    with desk.store.engine.connect() as c:
        counts = {
            sid: int(n)
            for sid, n in c.execute(
                select(a.c.source_id, func.count())
                .where(a.c.created_at >= since, a.c.source_id.is_not(None))
                .group_by(a.c.source_id)
            )
        }
    out = []
    for s in SourceRepo(desk.store).all():
        out.append(
            {
                "id": s.id,
                "label": s.label,
                "url": s.url,
                "kind": s.kind,
                "last": _minute(s.last_polled_at),
                "status": "broken" if s.broken else s.last_status,
                "error": s.broken or s.last_error,
                "errors": s.errors,
                "per_day": round(counts.get(s.id, 0) / 7, 1),
                "paused": bool(s.settings.get("paused")),
            }
        )
    return out


def _minute(when: datetime | None) -> str:
    """A poll time as an editor reads it (UTC, to the minute)."""
    if when is None:
        return ""
    aware = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


@access("editor")
async def sources_page(request: Request, ctx: Ctx) -> Response:
    desk = _desk(request)
    return desk.render(request, ctx, "sources.html", sources=_sources(desk))


@access("admin")
async def source_add(request: Request, ctx: Ctx) -> Response:
    from waikan.sources.repo import SourceRepo

    desk = _desk(request)
    data = await _data(request)
    url = data.get("url", "").strip()
    if not re.match(r"https?://[^\s/]+", url) or len(url) > 2000:
        raise DeskError(400, "a source URL starts with http:// or https://")
    name = data.get("name", "").strip()[:200] or None
    try:
        SourceRepo(desk.store).add(url, kind="auto", name=name, language=None, settings={})
    except WaikanError as exc:
        raise DeskError(409, str(exc)) from None
    return RedirectResponse("/desk/sources", status_code=303)


@access("admin")
async def source_action(request: Request, ctx: Ctx) -> Response:
    from sqlalchemy import update

    from waikan.sources.repo import SourceRepo
    from waikan.store import schema

    desk = _desk(request)
    repo = SourceRepo(desk.store)
    source = repo.get(str(int(request.path_params["source_id"])))
    if source is None:
        raise DeskError(404, "no such source")
    action = request.path_params["action"]
    if action == "remove":
        repo.remove(source)
    elif action in ("pause", "resume"):
        if source.broken:  # writing settings would replace the operator's hand-edited row
            raise DeskError(409, source.broken_line())
        paused = action == "pause"
        settings = {**source.settings, "paused": paused}
        far = datetime(9999, 1, 1, tzinfo=UTC)  # a paused source is never due
        with desk.store.engine.begin() as c:
            c.execute(
                update(schema.sources)
                .where(schema.sources.c.id == source.id)
                .values(settings=settings)
            )
            c.execute(
                update(schema.source_state)
                .where(schema.source_state.c.source_id == source.id)
                .values(next_poll_at=far if paused else None)
            )
    else:
        raise DeskError(404, f"unknown action {action!r}")
    return RedirectResponse("/desk/sources", status_code=303)


def _destinations(desk: Desk) -> list[dict[str, Any]]:
    """Configured destinations with their review mode, pause and pending deliveries."""
    from sqlalchemy import func, select

    from waikan.publish import pauses
    from waikan.publish.config import read_publish_table
    from waikan.store import schema

    o = schema.outbox
    with desk.store.engine.connect() as c:
        pending = {
            d: int(n)
            for d, n in c.execute(
                select(o.c.destination, func.count())
                .where(o.c.status == "pending")
                .group_by(o.c.destination)
            )
        }
    held = pauses.paused(desk.store)
    out = []
    for dest_id, table in sorted(read_publish_table(desk.ws.config).items()):
        t = table if isinstance(table, dict) else {}
        out.append(
            {
                "id": dest_id,
                "type": str(t.get("type", "?")),
                "review": str(t.get("review", "auto")),
                "enabled": t.get("enabled", True) is not False,
                "paused": dest_id in held,
                "pending": pending.get(dest_id, 0),
            }
        )
    return out


@access("admin")
async def destinations_page(request: Request, ctx: Ctx) -> Response:
    desk = _desk(request)
    return desk.render(request, ctx, "destinations.html", destinations=_destinations(desk))


@access("admin")
async def destination_action(request: Request, ctx: Ctx) -> Response:
    from waikan.publish import pauses

    desk = _desk(request)
    dest_id = request.path_params["destination"]
    if dest_id not in {d["id"] for d in _destinations(desk)}:
        raise DeskError(404, "no such destination")
    action = request.path_params["action"]
    assert ctx.user is not None
    if action not in DESTINATION_ACTIONS:
        raise DeskError(404, f"unknown action {action!r}")
    if action == "pause":
        pauses.pause(desk.store, dest_id, ctx.user.name)
    else:
        pauses.resume(desk.store, dest_id, ctx.user.name)
    if _is_api(request):
        return JSONResponse({"id": dest_id, "paused": action == "pause"})
    return RedirectResponse("/desk/destinations", status_code=303)


@access("admin")
async def settings_page(request: Request, ctx: Ctx) -> Response:
    from waikan.config import SETTINGS

    desk = _desk(request)
    cfg = desk.ws.config
    rows = [
        (
            s.name,
            "••••" if s.secret and cfg.values.get(s.name) else cfg.values.get(s.name),
            cfg.origins.get(s.name, "default"),
        )
        for s in SETTINGS
    ]
    return desk.render(request, ctx, "settings.html", rows=rows)


@access("admin")
async def users_page(request: Request, ctx: Ctx) -> Response:
    desk = _desk(request)
    return desk.render(request, ctx, "users.html", users=accounts.users(desk.store), error="")


@access("admin")
async def user_add(request: Request, ctx: Ctx) -> Response:
    desk = _desk(request)
    data = await _data(request)
    try:
        await run_in_threadpool(
            accounts.add_user,
            desk.store,
            data.get("name", ""),
            data.get("role", "editor"),
            data.get("password", ""),
        )
    except WaikanError as exc:
        raise DeskError(400, str(exc)) from None
    return RedirectResponse("/desk/users", status_code=303)


# -- JSON API --------------------------------------------------------------------------------


@access("editor")
async def api_articles(request: Request, ctx: Ctx) -> Response:
    _f, page = _queue_page(request)
    return JSONResponse(
        {
            "articles": page.rows,
            "older": page.older,
            "newer": page.newer,
        }
    )


@access("editor")
async def api_article(request: Request, ctx: Ctx) -> Response:
    view = article_view(_desk(request), _article_id(request), ctx)
    return JSONResponse(_article_json(view))


@access("editor")
async def api_audit(request: Request, ctx: Ctx) -> Response:
    rows = queries.audit_of(_desk(request).store, _article_id(request))
    return JSONResponse({"entries": [_audit_json(r) for r in rows]})


@access("public")
async def api_openapi(request: Request, ctx: Ctx) -> Response:
    from waikan.web.openapi import spec

    return JSONResponse(spec())


@access("public")
async def metrics(request: Request, ctx: Ctx) -> Response:
    """Prometheus text format; see :mod:`waikan.web.metrics` for the families."""
    from waikan.web.metrics import CONTENT_TYPE, collect, render

    families = await run_in_threadpool(collect, _desk(request).ws)
    return Response(render(families), media_type=CONTENT_TYPE)


# -- the app ---------------------------------------------------------------------------------


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, whether declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope.get("headers", []):
            if key == b"content-length" and (not value.isdigit() or int(value) > self.limit):
                await PlainTextResponse("request body too large", status_code=413)(
                    scope, receive, send
                )
                return
        seen = 0
        started = False

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited, tracking_send)
        except _TooLarge:
            if not started:
                await PlainTextResponse("request body too large", status_code=413)(
                    scope, receive, send
                )


class _TooLarge(Exception):
    pass


def routes() -> list[BaseRoute]:
    post = ["POST"]
    return [
        Route("/desk", home, methods=["GET"]),
        Route("/desk/login", login_form, methods=["GET"]),
        Route("/desk/login", login, methods=post),
        Route("/desk/logout", logout, methods=post),
        Route("/desk/queue", queue_page, methods=["GET"]),
        Route("/desk/articles/{article_id:int}", article_page, methods=["GET"]),
        Route("/desk/articles/{article_id:int}/{action:str}", article_action, methods=post),
        Route("/desk/audit", audit_page, methods=["GET"]),
        Route("/desk/dashboard", dashboard_page, methods=["GET"]),
        Route("/desk/glossary", glossary_page, methods=["GET"]),
        Route("/desk/glossary", glossary_save, methods=post),
        Route("/desk/glossary/remove", glossary_remove, methods=post),
        Route("/desk/sources", sources_page, methods=["GET"]),
        Route("/desk/sources", source_add, methods=post),
        Route("/desk/sources/{source_id:int}/{action:str}", source_action, methods=post),
        Route("/desk/destinations", destinations_page, methods=["GET"]),
        Route(
            "/desk/destinations/{destination:str}/{action:str}", destination_action, methods=post
        ),
        Route("/desk/settings", settings_page, methods=["GET"]),
        Route("/desk/users", users_page, methods=["GET"]),
        Route("/desk/users", user_add, methods=post),
        Route("/desk/api/v1/openapi.json", api_openapi, methods=["GET"]),
        Route("/desk/api/v1/articles", api_articles, methods=["GET"]),
        Route("/desk/api/v1/articles/{article_id:int}", api_article, methods=["GET"]),
        Route("/desk/api/v1/articles/{article_id:int}/audit", api_audit, methods=["GET"]),
        Route("/desk/api/v1/articles/{article_id:int}/{action:str}", article_action, methods=post),
        Route("/desk/api/v1/glossary", glossary_save, methods=post),
        Route(
            "/desk/api/v1/destinations/{destination:str}/{action:str}",
            destination_action,
            methods=post,
        ),
        Route("/metrics", metrics, methods=["GET"]),
    ]


def create_app(
    ws: Workspace,
    *,
    site_dir: Path | None = None,
    on_change: Callable[[], None] | None = None,
) -> ASGIApp:
    """The desk app for ``ws``; ``site_dir`` (the built site) is served at ``/``."""
    desk = Desk(ws, on_change)
    all_routes = routes()
    all_routes.append(
        Mount("/desk/static", StaticFiles(directory=str(HERE / "static")), name="static")
    )
    if site_dir is not None:
        site_dir.mkdir(parents=True, exist_ok=True)
        all_routes.append(Mount("/", StaticFiles(directory=str(site_dir), html=True), name="site"))

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        ctx = await _identify(request, desk)
        message = ctx.t["page_not_found"] if status == 404 else ctx.t["error"]
        return _fail(request, desk, ctx, status, message)

    app = Starlette(
        routes=all_routes,
        exception_handlers={HTTPException: not_found},
    )
    app.state.desk = desk
    return BodyLimit(app, int(ws.config["web.max_body"]))


def starlette_of(app: ASGIApp) -> Starlette:
    """The router inside :func:`create_app`'s middleware (tests enumerate its routes)."""
    inner = getattr(app, "app", app)
    assert isinstance(inner, Starlette)
    return inner

"""Editor actions: approve, reject, edit, regenerate, unpublish — each one audited.

The CLI and the web desk call the same functions, so the rules live here
once: what statuses an action applies to, what the audit log records (who,
when, before/after), and what happens at the destinations. ``revision`` is
the post revision the editor looked at: the store compares and swaps on it
inside the action's transaction, so two editors (in one process or in two
``waikan serve`` processes) never overwrite each other; the loser gets
:class:`~waikan.errors.ConflictError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection

from waikan.errors import ConflictError, PublishError, UsageError, WaikanError
from waikan.models import Status, Summary
from waikan.plugins import registry
from waikan.publish import outbox
from waikan.publish.config import load_destinations
from waikan.publish.run import make_context, publish_lock, set_status
from waikan.store import ArticleRecord
from waikan.summarize.base import fullwidth_punctuation, split_paragraphs
from waikan.workspace import Workspace

__all__ = [
    "approve",
    "edit",
    "editor_gate",
    "guard_findings",
    "regenerate",
    "reject",
    "unpublish",
]


def editor_gate(ws: Workspace) -> bool:
    """Every enabled destination waits for an editor (``review`` mode), so the site does too.

    Mirrors :func:`waikan.publish.run.approve_auto`: then a ``summarized`` post is
    not approved by itself. Reads the raw tables, so a missing channel secret
    does not stop a site build.
    """
    from waikan.publish.config import read_publish_table

    tables = [t for t in read_publish_table(ws.config).values() if isinstance(t, dict)]
    enabled = [t for t in tables if t.get("enabled", True) is not False]
    return bool(enabled) and all(t.get("review", "auto") == "review" for t in enabled)


def _article(ws: Workspace, article_id: int) -> ArticleRecord:
    found = ws.store.article(article_id)
    if found is None:
        raise WaikanError(f"article {article_id} not found")
    return found


def approve(ws: Workspace, article_id: int, who: str, revision: int | None = None) -> str:
    """``summarized`` / ``needs_review`` → ``approved``; an approved post gets the editor's mark."""
    a = _article(ws, article_id)
    if a.status in (Status.SUMMARIZED.value, Status.NEEDS_REVIEW.value):
        if set_status(
            ws,
            a.id,
            Status.APPROVED,
            when=(a.status,),
            who=who,
            action="approve",
            revision=revision,
        ):
            return Status.APPROVED.value
        a = _article(ws, article_id)  # its status moved meanwhile: go by (and name) the new one
    if a.status in (Status.APPROVED.value, Status.PUBLISHED.value):
        with ws.store.engine.begin() as c:  # review-mode destinations wait for this mark
            if revision is not None:
                ws.store.hold_revision(c, a.id, revision)
            outbox.audit(
                c, actor=who, action="approve", article_id=a.id, after={"status": a.status}
            )
        return a.status
    raise WaikanError(f"article {a.id} is {a.status}: only a summarized post can be approved")


def reject(
    ws: Workspace,
    article_id: int,
    who: str,
    reason: str | None = None,
    revision: int | None = None,
) -> str:
    a = _article(ws, article_id)
    if a.status == Status.PUBLISHED.value:
        raise WaikanError(f"article {a.id} is published: use waikan unpublish {a.id}")
    allowed = (Status.EXTRACTED, Status.SUMMARIZED, Status.NEEDS_REVIEW, Status.APPROVED)
    note = f"rejected by editor: {reason}" if reason else "rejected by editor"
    if a.status not in {s.value for s in allowed} or not set_status(
        ws,
        a.id,
        Status.REJECTED,
        when=(a.status,),
        who=who,
        action="reject",
        note=note,
        revision=revision,
    ):
        raise WaikanError(f"article {a.id} is {a.status}: it cannot be rejected")
    with publish_lock(ws):
        pending = outbox.deliveries(ws.store, article_id=a.id, status=outbox.PENDING)
        outbox._set(ws.store, [d.id for d in pending], status=outbox.DELETED, error="rejected")
    return Status.REJECTED.value


def guard_findings(ws: Workspace, article: ArticleRecord, paragraphs: Sequence[str]) -> list[str]:
    """The summarize stage's faithfulness guard, run on an editor's text (one rule set)."""
    from waikan.summarize.guard import Article, check
    from waikan.summarize.service import load_glossary

    cfg = ws.config
    found = check(
        list(paragraphs),
        Article.of(article.title, article.caption, article.paragraphs, article.published),
        load_glossary(ws.store, cfg),
        min_han=int(cfg["summarize.min_han"]),
        max_han=int(cfg["summarize.max_han"]),
    )
    return [str(f) for f in found]


@dataclass
class EditResult:
    status: str
    revision: int
    findings: list[str] = field(default_factory=list)


def edit(
    ws: Workspace, article_id: int, text: str, who: str, revision: int | None = None
) -> EditResult:
    """A new summary revision written by an editor; the guard decides approved or needs_review.

    Without ``revision`` (the CLI) the revision read here is the one compared, so
    the audit's "before" is exactly the text replaced.
    """
    a = _article(ws, article_id)
    allowed = {
        Status.SUMMARIZED.value,
        Status.NEEDS_REVIEW.value,
        Status.APPROVED.value,
        Status.PUBLISHED.value,
    }
    seen = ws.store.revision(a.id)
    if revision is not None and revision != seen:  # early: skip the guard's work
        raise ConflictError(a.id, seen)
    before = ws.store.current_summary(a.id)
    if before is None or a.status not in allowed:
        raise WaikanError(f"article {a.id} is {a.status}: there is no summary to edit")
    paragraphs = [fullwidth_punctuation(p) for p in split_paragraphs(text)]
    if not paragraphs:
        raise UsageError("the edited summary is empty")
    if tuple(paragraphs) == before.paragraphs:
        raise UsageError("the summary is unchanged")
    findings = guard_findings(ws, a, paragraphs)
    status = Status.NEEDS_REVIEW if findings else Status.APPROVED
    with ws.store.engine.begin() as c:  # summary, status and audit: all or nothing
        ws.store.add_summary(
            a.id,
            Summary(
                paragraphs=tuple(paragraphs),
                backend="editor",
                model=None,
                prompt_version=None,
                title_zh=before.title_zh,
            ),
            expect_revision=seen,
            expect_status=(a.status,),  # a concurrent reject/unpublish wins, not lost
            conn=c,
        )
        set_status(
            ws,
            a.id,
            status,
            when=(Status.SUMMARIZED.value,),
            who=who,
            action="edit",
            note="; ".join(findings) or None,
            conn=c,
        )
        outbox.audit(
            c,
            actor=who,
            action="edit-text",
            article_id=a.id,
            before={"summary": list(before.paragraphs)},
            after={"summary": paragraphs, "findings": findings},
        )
    return EditResult(status.value, seen + 1, findings)


def regenerate(ws: Workspace, article_id: int, who: str, revision: int | None = None) -> EditResult:
    """A fresh summary from the model in place of the current one (one call, in the budget).

    The call runs outside any transaction, so the revision is checked twice: before
    it (a stale one costs no call) and where the answer is stored (compare-and-swap,
    with the status too): an edit, reject or other regenerate that landed during the
    call wins, the answer is dropped with :class:`~waikan.errors.SummaryDropped` (a
    ConflictError), its spend stays recorded and the answer cached, as for ``waikan
    summarize`` (one code path): the next regenerate reuses it. Without ``revision``
    the one read here is compared.
    """
    from waikan.summarize.service import Summarizer

    seen = ws.store.revision(article_id)  # first: a change after this read fails the swap
    a = _article(ws, article_id)
    if revision is not None and revision != seen:
        raise ConflictError(a.id, seen)
    before = ws.store.current_summary(a.id)

    def audit(c: Connection, after: Summary) -> None:
        outbox.audit(
            c,
            actor=who,
            action="regenerate",
            article_id=a.id,
            before={"summary": list(before.paragraphs)} if before else None,
            after={"summary": list(after.paragraphs)},
        )

    outcome = Summarizer(ws).summarize(
        a, expect_revision=seen, expect_status=(a.status,), then=audit
    )
    return EditResult(outcome.article.status, seen + 1, [str(f) for f in outcome.findings])


def unpublish(
    ws: Workspace,
    article_id: int,
    who: str,
    env: Mapping[str, str] | None = None,
    revision: int | None = None,
) -> list[str]:
    """Take a post back everywhere it went; returns the destinations' errors (retry to finish)."""
    from waikan.pipeline import build_post

    a = _article(ws, article_id)
    again = a.status == Status.REJECTED.value and (a.reason or "") == "unpublished"
    if not again and a.status not in (
        Status.PUBLISHED.value,
        Status.APPROVED.value,
        Status.SUMMARIZED.value,
        Status.NEEDS_REVIEW.value,
    ):
        raise WaikanError(f"article {a.id} is {a.status}: nothing to unpublish")
    dests = {d.id: d for d in load_destinations(ws.config, env)}
    errors: list[str] = []
    with publish_lock(ws):
        if not again:
            set_status(
                ws,
                a.id,
                Status.REJECTED,
                when=(a.status,),
                who=who,
                action="unpublish",
                note="unpublished",
                revision=revision,
            )
        post = build_post(ws, a.id)
        rows = [
            d for d in outbox.deliveries(ws.store, article_id=a.id) if d.status != outbox.DELETED
        ]
        by_dest: dict[str, list[outbox.Delivery]] = {}
        for row in rows:
            by_dest.setdefault(row.destination, []).append(row)
        ctx = make_context(ws, None, __import__("time").sleep)
        for dest_id, group in by_dest.items():
            out = [r for r in group if r.remote.get("messages")]
            dest = dests.get(dest_id)
            if out and dest is not None:
                pub = registry().publishers[dest.type](dest, ctx)
                try:
                    pub.check()
                    pub.retract(post, [r.remote for r in out])
                except PublishError as exc:
                    errors.append(f"{dest.name} ({dest.type}): {exc}")
                    continue
                finally:
                    pub.close()
            elif out:
                errors.append(f"publish.{dest_id}: no longer configured; remove the post by hand")
                continue
            outbox._set(ws.store, [r.id for r in group], status=outbox.DELETED, error=None)
    return errors

"""The outbox: one row per (post, revision, destination), written around every send.

States: ``pending`` → ``sending`` → ``sent``; ``failed`` for what retries
cannot fix; ``uncertain`` when a crash or a timeout left a request in doubt;
``deleted`` once unpublished. ``remote`` holds the remote ids already sent
(``messages``) and the one step in flight (``inflight``), each committed
before and after its remote call: after a kill, only the step in flight is
unknown. A step that is safe to repeat (an edit, a delete) is simply redone;
a send in doubt is left ``uncertain`` for a human (``waikan publish
--resolve``), never repeated blindly.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from waikan.errors import UsageError
from waikan.store import Store, schema, storable

__all__ = ["SAFE_OPS", "Delivery", "Journal", "audit", "recover"]

PENDING, SENDING, SENT, FAILED, UNCERTAIN, DELETED = (
    "pending",
    "sending",
    "sent",
    "failed",
    "uncertain",
    "deleted",
)
#: remote steps that may be repeated without harm
SAFE_OPS = frozenset({"edit", "delete"})

_t = schema.outbox


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Delivery:
    id: int
    article_id: int
    revision: int
    destination: str
    status: str
    remote: dict[str, Any]
    batch: str | None
    attempts: int
    error: str | None
    sent_at: datetime | None

    @property
    def key(self) -> str:
        """Stable id of this delivery, sent to receivers so they can drop repeats."""
        return f"{self.article_id}-{self.revision}-{self.destination}"

    def describe(self) -> str:
        """What is known about a delivery in doubt, for the human resolving it."""
        done = len(self.remote.get("messages", []))
        step = self.remote.get("inflight") or {}
        what = f"{step.get('op', 'send')} of part {int(step.get('index', done)) + 1}"
        if self.batch:
            what = f"digest {self.batch}"
        return f"{done} part(s) confirmed, {what} unknown"


def _delivery(row: Any) -> Delivery:
    m = row._mapping
    sent_at = m["sent_at"]
    if sent_at is not None and sent_at.tzinfo is None:
        sent_at = sent_at.replace(tzinfo=UTC)  # SQLite drops the zone; we store UTC
    return Delivery(
        id=m["id"],
        article_id=m["article_id"],
        revision=m["revision"],
        destination=m["destination"],
        status=m["status"],
        remote=dict(m["remote"] or {}),
        batch=m["batch"],
        attempts=m["attempts"],
        error=m["error"],
        sent_at=sent_at,
    )


def ensure(store: Store, article_id: int, revision: int, destination: str) -> bool:
    """Create the pending row unless it exists (the unique key makes this race-free)."""
    now = _now()
    try:
        with store.engine.begin() as c:
            c.execute(
                insert(_t).values(
                    article_id=article_id,
                    revision=revision,
                    destination=destination,
                    status=PENDING,
                    remote={},
                    attempts=0,
                    created_at=now,
                    updated_at=now,
                )
            )
    except IntegrityError:
        return False
    return True


def get(store: Store, delivery_id: int) -> Delivery | None:
    with store.engine.connect() as c:
        row = c.execute(select(_t).where(_t.c.id == delivery_id)).first()
    return None if row is None else _delivery(row)


def deliveries(
    store: Store,
    *,
    destination: str | None = None,
    status: str | Sequence[str] | None = None,
    article_id: int | None = None,
) -> list[Delivery]:
    q = select(_t).order_by(_t.c.id)
    if destination is not None:
        q = q.where(_t.c.destination == destination)
    if isinstance(status, str):
        q = q.where(_t.c.status == status)
    elif status is not None:
        q = q.where(_t.c.status.in_(list(status)))
    if article_id is not None:
        q = q.where(_t.c.article_id == article_id)
    with store.engine.connect() as c:
        return [_delivery(r) for r in c.execute(q)]


def has_row(store: Store, article_id: int, destination: str) -> bool:
    with store.engine.connect() as c:
        return (
            c.scalar(
                select(func.count())
                .select_from(_t)
                .where(and_(_t.c.article_id == article_id, _t.c.destination == destination))
            )
            or 0
        ) > 0


def previous_messages(store: Store, delivery: Delivery) -> list[dict[str, Any]]:
    """Remote messages of the newest earlier revision sent to the same destination."""
    q = (
        select(_t)
        .where(
            _t.c.article_id == delivery.article_id,
            _t.c.destination == delivery.destination,
            _t.c.revision < delivery.revision,
            _t.c.status == SENT,
        )
        .order_by(_t.c.revision.desc())
    )
    with store.engine.connect() as c:
        row = c.execute(q).first()
    return [] if row is None else list(_delivery(row).remote.get("messages", []))


def sent_since(store: Store, destination: str, since: datetime) -> int:
    with store.engine.connect() as c:
        return int(
            c.scalar(
                select(func.count())
                .select_from(_t)
                .where(_t.c.destination == destination, _t.c.sent_at >= since)
            )
            or 0
        )


def last_sent(store: Store, destination: str) -> datetime | None:
    with store.engine.connect() as c:
        found = c.scalar(select(func.max(_t.c.sent_at)).where(_t.c.destination == destination))
    if not isinstance(found, datetime):
        return None
    return found if found.tzinfo is not None else found.replace(tzinfo=UTC)


def recover(store: Store) -> list[Delivery]:
    """After a crash: ``sending`` rows become ``uncertain`` if a send was in flight.

    A row with nothing in flight, or with only a repeatable step (edit,
    delete) in flight, goes back to ``pending`` and resumes where it stopped.
    Call only while holding the publish lock (no other sender is running).
    """
    doubtful = []
    for d in deliveries(store, status=SENDING):
        step = d.remote.get("inflight")
        if step is None or step.get("op") in SAFE_OPS:
            _set(store, [d.id], status=PENDING, error=None)
        else:
            _set(store, [d.id], status=UNCERTAIN, error="interrupted while sending")
            doubtful.append(d)
    return doubtful


def _set(store: Store, ids: Sequence[int], **values: Any) -> None:
    if values.get("error"):  # often a remote end's words
        values["error"] = storable(values["error"])
    with store.engine.begin() as c:
        c.execute(update(_t).where(_t.c.id.in_(list(ids))).values(updated_at=_now(), **values))


def resolve(store: Store, delivery_id: int, decision: str, actor: str) -> Delivery:
    """A human's answer for an uncertain delivery: ``delivered``, ``resend`` or ``drop``."""
    found = get(store, delivery_id)
    if found is None:
        raise UsageError(f"delivery {delivery_id} not found")
    if found.status != UNCERTAIN:
        raise UsageError(f"delivery {delivery_id} is {found.status}, not uncertain")
    group = (
        [d for d in deliveries(store, status=UNCERTAIN) if d.batch == found.batch]
        if found.batch
        else [found]
    )
    remote = copy.deepcopy(found.remote)
    step = remote.pop("inflight", None)
    now = _now()
    with store.engine.begin() as c:
        for d in group:
            values: dict[str, Any] = {"updated_at": now, "error": None}
            if decision == "drop":
                values.update(status=FAILED, error=f"dropped by {actor} after a send in doubt")
            elif found.batch and decision == "delivered":
                values.update(status=SENT, sent_at=now, remote=remote)
            elif found.batch:
                values.update(status=PENDING, batch=None, remote={})
            else:
                if decision == "delivered" and step is not None:
                    # the step reached the remote end: its id is unknown, not its existence
                    messages = list(remote.get("messages", []))
                    messages.append({"kind": step.get("kind"), "id": None, "unconfirmed": True})
                    remote["messages"] = messages
                values.update(status=PENDING, remote=remote)
            c.execute(update(_t).where(_t.c.id == d.id).values(**values))
        audit(
            c,
            actor=actor,
            action="resolve",
            article_id=found.article_id,
            before={"delivery": found.id, "status": found.status, "inflight": step},
            after={"decision": decision},
        )
    again = get(store, delivery_id)
    assert again is not None
    return again


def audit(
    conn: Any,
    *,
    actor: str,
    action: str,
    article_id: int | None,
    before: Any = None,
    after: Any = None,
    note: str | None = None,
) -> None:
    """Append one audit entry inside the caller's transaction (who, what, before/after)."""
    conn.execute(
        insert(schema.audit_log).values(
            at=_now(),
            actor=actor,
            action=action,
            article_id=article_id,
            before=before,
            after=after,
            note=note,
        )
    )


@dataclass
class Journal:
    """Records each remote step of one send (one row, or every row of a digest batch)."""

    store: Store
    rows: list[Delivery]
    previous: list[dict[str, Any]] = field(default_factory=list)
    remote: dict[str, Any] = field(default_factory=dict)
    #: the run's clock: cadence (max_per_hour, digest slots) reads sent_at with it
    clock: Callable[[], datetime] = _now

    def __post_init__(self) -> None:
        self.remote = copy.deepcopy(self.rows[0].remote)
        self.remote.setdefault("messages", [])

    @property
    def delivery(self) -> Delivery:
        return self.rows[0]

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Parts already confirmed, in order (a resumed send skips them)."""
        return list(self.remote["messages"])

    def _write(self, **values: Any) -> None:
        _set(self.store, [r.id for r in self.rows], remote=copy.deepcopy(self.remote), **values)

    def claim(self, batch: str | None = None) -> None:
        values: dict[str, Any] = {"status": SENDING, "error": None, "batch": batch}
        with self.store.engine.begin() as c:
            c.execute(
                update(_t)
                .where(_t.c.id.in_([r.id for r in self.rows]))
                .values(attempts=_t.c.attempts + 1, updated_at=_now(), **values)
            )

    def begin(self, op: str, index: int, **info: Any) -> None:
        """Committed before a remote call: what is about to happen."""
        self.remote["inflight"] = {"op": op, "index": index, **info}
        self._write()

    def done(self, message: dict[str, Any] | None = None) -> None:
        """Committed after a remote call succeeded; ``message`` is a new confirmed part."""
        if message is not None:
            self.remote["messages"].append(message)
        self.remote["inflight"] = None
        self._write()

    def note(self, **info: Any) -> None:
        self.remote.update(info)
        self._write()

    def finish(self) -> None:
        self.remote["inflight"] = None
        self._write(status=SENT, sent_at=self.clock(), error=None)

    def release(self, error: str) -> None:
        """Back to pending, keeping the confirmed parts (nothing is in doubt)."""
        self.remote["inflight"] = None
        self._write(status=PENDING, error=error)

    def fail(self, error: str) -> None:
        self.remote["inflight"] = None
        self._write(status=FAILED, error=error)

    def doubt(self, error: str) -> None:
        self._write(status=UNCERTAIN, error=error)


def hour_ago(now: datetime) -> datetime:
    return now - timedelta(hours=1)

"""The dedupe decision for one article, and the persistent index behind it.

Signatures are stored (table ``signatures``), so the in-memory index is
rebuilt from the store after a restart and caught up with what other
processes added. Every decision (or batch of decisions, decided in order)
runs in one transaction that first bumps ``dedupe_state.seq``: that row lock
serialises deciders across processes (SQLite's write lock, a PostgreSQL row
lock), so two workers ingesting copies of one story at the same moment cannot
both make it canonical. Approving or declining a pending update takes the same lock.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

import numpy as np
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Connection

from waikan.config import Config
from waikan.dedupe.exact import url_key
from waikan.dedupe.near import (
    NUM_PERM,
    SCHEME,
    LSHIndex,
    Signature,
    containment,
    jaccard,
    minhash,
    shingle_hashes,
    tokens,
)
from waikan.dedupe.stories import Prepared, parse_time, prepare, prepared_similarity, story_terms
from waikan.errors import WaikanError
from waikan.models import Status
from waikan.store import ArticleRecord, Store, body_sha256, schema

__all__ = [
    "Decision",
    "Deduper",
    "Features",
    "Settings",
    "approve_update",
    "decline_update",
    "features",
]

# Relations of a story member to the story.
CANONICAL, URL, BODY, NEAR, STORY, UPDATE = "canonical", "url", "body", "near", "story", "update"
_DISTINCT = (CANONICAL, STORY, UPDATE)  # members with text of their own: searched for matches
_NEAR_CANDIDATES = 20
_STORY_CANDIDATES = 30
_EXTRACTED = Status.EXTRACTED.value

# Statements built once, executed with parameters: building them per call (and
# SQLAlchemy's cache key for inline values) cost more than SQLite itself.
_ST, _SIG, _MEM = schema.dedupe_state, schema.signatures, schema.story_members
_ART, _STORIES = schema.articles, schema.stories
_LOCK = update(_ST).where(_ST.c.id == 1).values(seq=_ST.c.seq + bindparam("k")).returning(_ST.c.seq)
_STATE = (
    select(_ART.c.id, _ART.c.status, _SIG.c.article_id.label("done"))
    .outerjoin(_SIG, _SIG.c.article_id == _ART.c.id)
    .where(_ART.c.id.in_(bindparam("ids", expanding=True)))
)
_CATCH_UP = (
    select(
        _SIG.c.article_id,
        _SIG.c.seq,
        _SIG.c.scheme,
        _SIG.c.canonical_url,
        _SIG.c.body_sha256,
        _SIG.c.minhash,
        _SIG.c.shingles,
        _SIG.c.terms,
        _SIG.c.published,
        _SIG.c.created_at,
        _MEM.c.story_id,
        _MEM.c.relation,
        _ART.c.word_count,
        _ART.c.source_name,
    )
    .join(_MEM, _MEM.c.article_id == _SIG.c.article_id)
    .join(_ART, _ART.c.id == _SIG.c.article_id)
    .where(_SIG.c.seq > bindparam("after"))
    .order_by(_SIG.c.seq)
)
_STORY_HEAD = (
    select(_STORIES.c.canonical_id, _ART.c.status)
    .join(_ART, _ART.c.id == _STORIES.c.canonical_id)
    .where(_STORIES.c.id == bindparam("story"))
)
_INSERT_SIGNATURE, _INSERT_MEMBER, _INSERT_STORY = insert(_SIG), insert(_MEM), insert(_STORIES)
_SET_PENDING = (
    update(_STORIES)
    .where(_STORIES.c.id == bindparam("story"))
    .values(pending_update_id=bindparam("pending"), updated_at=bindparam("now"))
)
_SET_DUPLICATE = (
    update(_ART)
    .where(_ART.c.id.in_(bindparam("ids", expanding=True)))
    .values(
        status=Status.DUPLICATE.value,
        reason=None,
        duplicate_of=bindparam("canonical"),
        updated_at=bindparam("now"),
    )
)


@dataclass(frozen=True)
class Settings:
    near_threshold: float = 0.8
    story_threshold: float = 0.35
    story_window: timedelta = timedelta(hours=72)
    preferred_sources: tuple[str, ...] = ()
    update_policy: str = "never"
    update_fraction: float = 0.2

    @classmethod
    def from_config(cls, cfg: Config) -> Settings:
        preferred = str(cfg["dedupe.preferred_sources"])
        return cls(
            near_threshold=float(cfg["dedupe.near_threshold"]),
            story_threshold=float(cfg["dedupe.story_threshold"]),
            story_window=timedelta(hours=float(cfg["dedupe.story_window_hours"])),
            preferred_sources=tuple(
                s.strip().casefold() for s in preferred.split(",") if s.strip()
            ),
            update_policy=str(cfg["dedupe.update_policy"]),
            update_fraction=float(cfg["dedupe.update_fraction"]),
        )


@dataclass(frozen=True)
class Features:
    """What dedupe needs of an article; computed outside the lock (it is the costly part)."""

    canonical_url: str
    body_sha256: str | None
    minhash: Signature
    shingles: int
    terms: tuple[str, ...]
    published: datetime | None
    words: int
    source: str | None

    @cached_property
    def prepared(self) -> Prepared:
        """The weighted story terms, made once whether matched or indexed."""
        return prepare(self.terms)


def features(article: ArticleRecord) -> Features:
    words = tokens("\n".join(article.paragraphs))
    hashes = shingle_hashes(words)
    return Features(
        canonical_url=url_key(article.url),
        body_sha256=article.body_sha256
        or (body_sha256(article.paragraphs) if article.paragraphs else None),
        minhash=minhash(hashes),
        shingles=len(hashes),
        terms=tuple(story_terms(article.title, article.paragraphs)),
        published=parse_time(article.published),
        words=article.word_count,
        source=article.source_name,
    )


def near_similarity(a: Features, b: Features) -> tuple[float, float]:
    """(estimated Jaccard, estimated containment of the shorter text in the longer)."""
    j = jaccard(a.minhash, b.minhash)
    return j, containment(j, a.shingles, b.shingles)


def changed_share(new: Features, old: Features | _Entry) -> float:
    """Share of the new text's shingles not in the old one: 0 for a trimmed copy."""
    if new.shingles <= 0:
        return 0.0
    j = jaccard(new.minhash, old.minhash)
    shared = j / (1.0 + j) * (new.shingles + old.shingles)
    return max(0.0, 1.0 - shared / new.shingles)


@dataclass(frozen=True)
class Decision:
    article_id: int
    story_id: int
    relation: str
    canonical_id: int
    matched_id: int | None = None
    similarity: float | None = None
    switched_from: int | None = None  # the old canonical, when this article replaced it

    @property
    def duplicate(self) -> bool:
        return self.canonical_id != self.article_id


@dataclass(slots=True)
class _Entry:
    story_id: int
    minhash: Signature
    shingles: int
    words: int
    source: str | None
    published: datetime | None
    terms: tuple[str, ...] | None = None
    prepared: Prepared | None = None


@dataclass
class Deduper:
    """Decides, for each new article, whether it is new, a duplicate or part of a story."""

    store: Store
    settings: Settings = field(default_factory=Settings)
    near: LSHIndex = field(default_factory=lambda: LSHIndex(bands=32, rows=4))
    seq: int = 0
    _entries: dict[int, _Entry] = field(default_factory=dict)
    _by_url: dict[str, int] = field(default_factory=dict)
    _by_hash: dict[str, int] = field(default_factory=dict)
    _postings: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    _window: list[tuple[float, int]] = field(default_factory=list)
    _newest: float = -math.inf

    # -- the index ----------------------------------------------------------------
    def _add(
        self,
        article_id: int,
        f: Features,
        story_id: int,
        relation: str,
        created: datetime | None = None,
    ) -> None:
        self._by_url.setdefault(f.canonical_url, article_id)
        if f.body_sha256:
            self._by_hash.setdefault(f.body_sha256, article_id)
        entry = _Entry(story_id, f.minhash, f.shingles, f.words, f.source, f.published)
        self._entries[article_id] = entry
        if relation not in _DISTINCT:
            return
        self.near.insert(article_id, f.minhash)
        when = (f.published or created or datetime.now(UTC)).timestamp()
        if f.published is not None:  # an undated page says nothing about where "now" is
            self._newest = max(self._newest, when)
        horizon = self._newest - 2 * self.settings.story_window.total_seconds()
        if when < horizon:
            return  # a late backfill of old news: no story index entry
        entry.terms = f.terms
        entry.prepared = f.prepared
        for term in f.terms:
            self._postings[term].add(article_id)
        heapq.heappush(self._window, (when, article_id))
        self._evict(horizon)

    def _evict(self, horizon: float) -> None:
        """Forget story terms of reports far older than the window: memory and cost stay flat."""
        while self._window and self._window[0][0] < horizon:
            _when, old = heapq.heappop(self._window)
            entry = self._entries.get(old)
            if entry is None or entry.terms is None:
                continue
            for term in entry.terms:
                posting = self._postings.get(term)
                if posting is not None:
                    posting.discard(old)
                    if not posting:
                        del self._postings[term]
            entry.terms = entry.prepared = None

    def catch_up(self, conn: Connection | None = None) -> int:
        """Load signatures stored since the last call (by any process); return how many."""
        n = 0
        if conn is None:
            with self.store.engine.connect() as c:
                rows = list(c.execute(_CATCH_UP, {"after": self.seq}))
        else:
            rows = list(conn.execute(_CATCH_UP, {"after": self.seq}))
        for row in rows:
            sig = np.frombuffer(row.minhash, dtype=np.uint32).copy()
            if row.scheme != SCHEME or len(sig) != NUM_PERM:
                sig = np.full(NUM_PERM, 0xFFFFFFFF, dtype=np.uint32)  # old scheme: exact only
            created = row.created_at
            if created is not None and created.tzinfo is None:
                created = created.replace(tzinfo=UTC)
            f = Features(
                canonical_url=row.canonical_url,
                body_sha256=row.body_sha256,
                minhash=sig,
                shingles=row.shingles,
                terms=tuple(row.terms or ()),
                published=parse_time(row.published),
                words=row.word_count,
                source=row.source_name,
            )
            self._add(row.article_id, f, row.story_id, row.relation, created)
            self.seq = max(self.seq, row.seq)
            n += 1
        return n

    def __len__(self) -> int:
        return len(self._entries)

    # -- matching -----------------------------------------------------------------
    def _near_match(self, f: Features) -> tuple[int, float, float] | None:
        best: tuple[int, float, float] | None = None
        for cand in self.near.query(f.minhash)[:_NEAR_CANDIDATES]:
            e = self._entries[cand]
            j = jaccard(f.minhash, e.minhash)
            c = containment(j, f.shingles, e.shingles)
            if c >= self.settings.near_threshold and (best is None or c > best[2]):
                best = (cand, j, c)
        return best

    def _story_match(self, f: Features) -> tuple[int, float] | None:
        if not f.terms:
            return None
        counts: dict[int, int] = defaultdict(int)
        cap = max(50, len(self._window) // 20)  # a term in 5% of the window says nothing
        for term in f.terms:
            if term.startswith("w:"):
                continue
            posting = self._postings.get(term)
            if posting is None or len(posting) > cap:
                continue
            for cand in posting:
                counts[cand] += 1
        ranked = sorted((c for c in counts if counts[c] >= 2), key=lambda c: (-counts[c], c))
        best: tuple[int, float] | None = None
        window = self.settings.story_window
        mine = f.prepared
        for cand in ranked[:_STORY_CANDIDATES]:
            e = self._entries[cand]
            if e.prepared is None:
                continue
            if f.published and e.published and abs(f.published - e.published) > window:
                continue
            sim = prepared_similarity(mine, e.prepared)
            if sim >= self.settings.story_threshold and (best is None or sim > best[1]):
                best = (cand, sim)
        return best

    def _better(self, a: Features | _Entry, b: Features | _Entry) -> bool:
        """Is ``a`` a better canonical version than ``b``? Preferred source, longer, earlier."""

        def rank(x: Features | _Entry) -> int:
            name = (x.source or "").casefold()
            prefs = self.settings.preferred_sources
            return prefs.index(name) if name in prefs else len(prefs)

        if rank(a) != rank(b):
            return rank(a) < rank(b)
        if a.words > b.words * 1.1:
            return True
        if b.words > a.words * 1.1:
            return False
        if a.published and b.published and a.published != b.published:
            return a.published < b.published
        return False

    def match(self, article: ArticleRecord, f: Features) -> tuple[str, int | None, float | None]:
        """The relation of a new article to what is indexed: (relation, matched id, similarity)."""
        if f.body_sha256 and (hit := self._by_hash.get(f.body_sha256)) is not None:
            return BODY, hit, 1.0
        url_hit = self._by_url.get(f.canonical_url)
        if url_hit is not None:
            e = self._entries[url_hit]
            j = jaccard(f.minhash, e.minhash)
            return URL, url_hit, j
        near = self._near_match(f)
        if near is not None:
            return NEAR, near[0], near[2]
        story = self._story_match(f)
        if story is not None:
            return STORY, story[0], story[1]
        return CANONICAL, None, None

    # -- deciding and recording ---------------------------------------------------
    def decide(self, article: ArticleRecord, f: Features | None = None) -> Decision | None:
        """Decide and record one article (status ``extracted``); None when already decided."""
        return self.decide_many([(article, f or features(article))])[0]

    def decide_many(self, items: Sequence[tuple[ArticleRecord, Features]]) -> list[Decision | None]:
        """Decide and record articles in order, in one transaction: one lock, one commit.

        Each decision sees the ones before it (the index is updated as it goes), so
        the outcome is that of deciding them one by one; only the per-transaction
        cost (lock, catch-up, commit) is paid once per batch. None for an article
        already decided or no longer ``extracted``.
        """
        if not items:
            return []
        now = datetime.now(UTC)
        out: list[Decision | None] = []
        try:
            with self.store.engine.begin() as conn:
                # First statement: take the dedupe lock (and the batch's seq numbers).
                last = int(conn.execute(_LOCK, {"k": len(items)}).scalar_one())
                first = last - len(items) + 1
                self.catch_up(conn)
                ids = [article.id for article, _f in items]
                state = {r.id: (r.status, r.done) for r in conn.execute(_STATE, {"ids": ids})}
                for n, (article, f) in enumerate(items):
                    status, done = state.get(article.id, (None, None))
                    if status != _EXTRACTED or done is not None or article.id in self._entries:
                        out.append(None)
                        continue
                    relation, matched, sim = self.match(article, f)
                    seq = first + n
                    decision = self._record(conn, article, f, relation, matched, sim, seq, now)
                    self._add(article.id, f, decision.story_id, decision.relation, now)
                    out.append(decision)
        except BaseException:
            if any(d is not None for d in out):
                self._forget()  # rolled back: what was indexed here is not in the store
            raise
        self.seq = max(self.seq, last)
        return out

    def _forget(self) -> None:
        """Drop the in-memory index; the next decision rebuilds it from the store."""
        self.near = LSHIndex(bands=self.near.bands, rows=self.near.rows)
        self.seq = 0
        self._entries, self._by_url, self._by_hash = {}, {}, {}
        self._postings = defaultdict(set)
        self._window, self._newest = [], -math.inf

    def _record(
        self,
        conn: Connection,
        article: ArticleRecord,
        f: Features,
        relation: str,
        matched: int | None,
        sim: float | None,
        seq: int,
        now: datetime,
    ) -> Decision:
        conn.execute(
            _INSERT_SIGNATURE,
            {
                "article_id": article.id,
                "seq": seq,
                "scheme": SCHEME,
                "canonical_url": f.canonical_url,
                "body_sha256": f.body_sha256,
                "minhash": f.minhash.tobytes(),
                "shingles": f.shingles,
                "terms": list(f.terms),
                "published": article.published,
                "created_at": now,
            },
        )
        if matched is None:
            key = conn.execute(
                _INSERT_STORY,
                {
                    "canonical_id": article.id,
                    "title": article.title,
                    "published": article.published,
                    "created_at": now,
                    "updated_at": now,
                },
            ).inserted_primary_key
            assert key is not None
            story_id = int(key[0])
            self._member(conn, article.id, story_id, CANONICAL, None, None, now)
            return Decision(article.id, story_id, CANONICAL, article.id)

        story_id = self._entries[matched].story_id
        story = conn.execute(_STORY_HEAD, {"story": story_id}).one()
        canon_id, canon_status = int(story.canonical_id), story.status
        canon = self._entries[canon_id]
        unsummarized = canon_status == Status.EXTRACTED.value

        is_update = False
        if relation in (URL, NEAR) and sim is not None:
            change = changed_share(f, self._entries[matched])
            later = (
                relation == URL
                or f.published is None
                or canon.published is None
                or f.published > canon.published
            )
            is_update = later and change >= self.settings.update_fraction
        policy = self.settings.update_policy
        switch = False
        if is_update and not unsummarized:
            if policy == "always":
                switch, relation = True, UPDATE
            elif policy == "ask":
                relation = UPDATE
                conn.execute(_SET_PENDING, {"story": story_id, "pending": article.id, "now": now})
        elif unsummarized and relation != BODY and self._better(f, canon):
            switch = True  # nothing paid yet: keep the better version as the canonical one
        elif is_update and unsummarized:
            switch = True  # a newer text before any summary: summarize the newer one

        if not switch:
            self._member(conn, article.id, story_id, relation, matched, sim, now)
            self._set_duplicate(conn, [article.id], canon_id, now)
            return Decision(article.id, story_id, relation, canon_id, matched, sim)

        self._member(conn, article.id, story_id, CANONICAL, matched, sim, now)
        _promote(conn, story_id, article.id, article.title, canon_id, relation, sim, now)
        return Decision(
            article.id, story_id, CANONICAL, article.id, matched, sim, switched_from=canon_id
        )

    @staticmethod
    def _member(
        conn: Connection,
        article_id: int,
        story_id: int,
        relation: str,
        matched: int | None,
        sim: float | None,
        now: datetime,
    ) -> None:
        conn.execute(
            _INSERT_MEMBER,
            {
                "article_id": article_id,
                "story_id": story_id,
                "relation": relation,
                "matched_id": matched,
                "similarity": sim,
                "created_at": now,
            },
        )

    @staticmethod
    def _set_duplicate(
        conn: Connection,
        ids: Sequence[int],
        canonical_id: int,
        now: datetime,
    ) -> None:
        if not ids:
            return
        conn.execute(_SET_DUPLICATE, {"ids": list(ids), "canonical": canonical_id, "now": now})


def _promote(
    conn: Connection,
    story_id: int,
    article_id: int,
    title: str | None,
    old_id: int,
    old_relation: str,
    sim: float | None,
    now: datetime,
) -> None:
    """``article_id`` becomes the story's canonical version; the old one and its members follow.

    The old canonical's summary and post stay in the history; the story's post is now the
    new one's (summarized anew unless it was already).
    """
    conn.execute(
        update(_MEM)
        .where(_MEM.c.article_id == old_id)
        .values(relation=old_relation, matched_id=article_id, similarity=sim)
    )
    conn.execute(
        update(_STORIES)
        .where(_STORIES.c.id == story_id)
        .values(canonical_id=article_id, title=title, pending_update_id=None, updated_at=now)
    )
    members = conn.scalars(
        select(_MEM.c.article_id).where(
            _MEM.c.story_id == story_id, _MEM.c.article_id != article_id
        )
    )
    Deduper._set_duplicate(conn, [int(r) for r in members], article_id, now)


def _pending_update(conn: Connection, story_id: int) -> tuple[int, int, float | None]:
    """(canonical id, pending article id, its similarity) of a story whose update awaits a yes."""
    story = conn.execute(
        select(_STORIES.c.canonical_id, _STORIES.c.pending_update_id).where(
            _STORIES.c.id == story_id
        )
    ).one_or_none()
    if story is None:
        raise WaikanError(f"no story {story_id}")
    if story.pending_update_id is None:
        raise WaikanError(f"story {story_id} has no update waiting for approval")
    pending = int(story.pending_update_id)
    member = conn.execute(
        select(_MEM.c.story_id, _MEM.c.similarity, _ART.c.status)
        .join(_ART, _ART.c.id == _MEM.c.article_id)
        .where(_MEM.c.article_id == pending)
    ).one_or_none()
    if member is None or member.story_id != story_id or member.status != Status.DUPLICATE.value:
        raise WaikanError(f"article {pending} is no longer an update of story {story_id}")
    return int(story.canonical_id), pending, member.similarity


def approve_update(store: Store, story_id: int) -> int:
    """Make a story's pending update (policy ``ask``) its canonical version; return its id.

    The update becomes ``extracted``, so the next ``waikan summarize`` pays for exactly
    one new summary; the old canonical and its summary stay as history.
    """
    now = datetime.now(UTC)
    with store.engine.begin() as conn:
        conn.execute(_LOCK, {"k": 0})  # the dedupe lock: no decision runs in between
        old_id, pending, sim = _pending_update(conn, story_id)
        conn.execute(update(_MEM).where(_MEM.c.article_id == pending).values(relation=CANONICAL))
        title = conn.scalar(select(_ART.c.title).where(_ART.c.id == pending))
        _promote(conn, story_id, pending, title, old_id, UPDATE, sim, now)
        conn.execute(
            update(_ART)
            .where(_ART.c.id == pending)
            .values(status=_EXTRACTED, reason=None, duplicate_of=None, updated_at=now)
        )
    return pending


def decline_update(store: Store, story_id: int) -> int:
    """Keep the story's current summary: the pending update stays a duplicate; return its id."""
    now = datetime.now(UTC)
    with store.engine.begin() as conn:
        conn.execute(_LOCK, {"k": 0})
        _old_id, pending, _sim = _pending_update(conn, story_id)
        conn.execute(_SET_PENDING, {"story": story_id, "pending": None, "now": now})
    return pending


def pending(store: Store, ids: Sequence[int] | None = None) -> list[ArticleRecord]:
    """Extracted articles that dedupe has not seen yet, oldest first."""
    a, s = schema.articles, schema.signatures
    q: Any = (
        select(a.c.id)
        .outerjoin(s, s.c.article_id == a.c.id)
        .where(a.c.status == Status.EXTRACTED.value, s.c.article_id.is_(None))
        .order_by(a.c.id)
    )
    if ids is not None:
        q = q.where(a.c.id.in_(list(ids)))
    with store.engine.connect() as c:
        found = [int(r) for r in c.scalars(q)]
    return store.articles(ids=found) if found else []

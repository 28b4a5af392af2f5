"""Accounts of the editor's desk: argon2id passwords, hashed API tokens, sessions, lockout.

Everything lives in the store (not in process memory) so several server
processes share lockout counts and sessions, and a restart forgets nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from waikan.errors import InputError
from waikan.store import Store, schema

__all__ = [
    "ROLES",
    "Lockout",
    "User",
    "add_user",
    "check_password",
    "end_session",
    "issue_token",
    "new_session",
    "session_user",
    "token_user",
    "user_by_name",
]

ROLES = ("admin", "editor")
SESSION_LIFETIME = timedelta(hours=12)
_hasher = PasswordHasher()  # argon2id with the library's defaults (~64 MiB, ~100 ms)

# Counts every argon2 verification: the lockout tests prove a locked login checks none.
hash_checks = 0


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class Lockout:
    """Failed logins allowed per ``window`` for one account and for one address."""

    per_account: int = 5
    per_address: int = 20
    window: timedelta = timedelta(seconds=60)


def _now() -> datetime:
    return datetime.now(UTC)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _valid_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 100 or any(c.isspace() or not c.isprintable() for c in name):
        raise InputError("a user name is 1-100 printable characters without spaces")
    return name


def add_user(store: Store, name: str, role: str, password: str) -> User:
    name = _valid_name(name)
    if role not in ROLES:
        raise InputError(f"role must be one of {', '.join(ROLES)}")
    if len(password) < 8:
        raise InputError("the password needs at least 8 characters")
    digest = _hasher.hash(password)
    try:
        with store.engine.begin() as c:
            key = c.execute(
                insert(schema.users).values(
                    name=name, role=role, password_hash=digest, created_at=_now()
                )
            ).inserted_primary_key
            assert key is not None
            uid = key[0]
    except IntegrityError:
        raise InputError(f"user {name!r} already exists") from None
    return User(int(uid), name, role)


def user_by_name(store: Store, name: str) -> User | None:
    t = schema.users
    with store.engine.connect() as c:
        row = c.execute(select(t.c.id, t.c.name, t.c.role).where(t.c.name == name)).first()
    return None if row is None else User(row.id, row.name, row.role)


def users(store: Store) -> list[User]:
    t = schema.users
    with store.engine.connect() as c:
        return [User(r.id, r.name, r.role) for r in c.execute(select(t).order_by(t.c.name))]


def locked(store: Store, name: str, address: str, policy: Lockout) -> bool:
    """True when the account or the address used up its failures in the window."""
    t = schema.login_failures
    since = _now() - policy.window
    with store.engine.connect() as c:
        for scope, key, limit in (
            ("account", name, policy.per_account),
            ("address", address, policy.per_address),
        ):
            n = c.scalar(
                select(func.count())
                .select_from(t)
                .where(t.c.scope == scope, t.c.key == key, t.c.at >= since)
            )
            if int(n or 0) >= limit:
                return True
    return False


def record_failure(store: Store, name: str, address: str) -> None:
    t = schema.login_failures
    now = _now()
    with store.engine.begin() as c:
        c.execute(
            insert(t),
            [
                {"scope": "account", "key": name[:200], "at": now},
                {"scope": "address", "key": address[:200], "at": now},
            ],
        )
        # Old failures no longer count; keep the table small.
        c.execute(delete(t).where(t.c.at < now - timedelta(days=1)))


def check_password(store: Store, name: str, password: str) -> User | None:
    """The user if the password matches; an unknown name still costs one hash check."""
    global hash_checks
    t = schema.users
    with store.engine.connect() as c:
        row = c.execute(select(t).where(t.c.name == name)).first()
    hash_checks += 1
    if row is None:
        with contextlib.suppress(VerificationError):  # equal work: no enumeration by timing
            _hasher.verify(_DUMMY, password)
        return None
    try:
        _hasher.verify(row.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    return User(row.id, row.name, row.role)


_DUMMY = _hasher.hash("not a real password: equal work for unknown users")


def issue_token(store: Store, name: str) -> str:
    """A new API token for ``name``; only its SHA-256 is stored, so print it once."""
    user = user_by_name(store, name)
    if user is None:
        raise InputError(f"no user {name!r}")
    token = "wk_" + secrets.token_urlsafe(32)
    with store.engine.begin() as c:
        c.execute(
            insert(schema.api_tokens).values(
                user_id=user.id, token_sha256=_sha(token), created_at=_now()
            )
        )
    return token


def token_user(store: Store, token: str) -> User | None:
    u, t = schema.users, schema.api_tokens
    q = (
        select(u.c.id, u.c.name, u.c.role)
        .join(t, t.c.user_id == u.c.id)
        .where(t.c.token_sha256 == _sha(token))
    )
    with store.engine.connect() as c:
        row = c.execute(q).first()
    return None if row is None else User(row.id, row.name, row.role)


def new_session(store: Store, user: User, old: str | None = None) -> tuple[str, str]:
    """A fresh session id and CSRF token at login; the pre-login id (if any) is dropped."""
    sid = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    now = _now()
    t = schema.web_sessions
    with store.engine.begin() as c:
        if old:
            c.execute(delete(t).where(t.c.id_sha256 == _sha(old)))
        c.execute(delete(t).where(t.c.expires_at < now))
        c.execute(
            insert(t).values(
                id_sha256=_sha(sid),
                user_id=user.id,
                csrf=csrf,
                created_at=now,
                expires_at=now + SESSION_LIFETIME,
            )
        )
    return sid, csrf


def session_user(store: Store, sid: str) -> tuple[User, str] | None:
    """The session's user and CSRF token, if the session is alive."""
    u, t = schema.users, schema.web_sessions
    q = (
        select(u.c.id, u.c.name, u.c.role, t.c.csrf)
        .join(t, t.c.user_id == u.c.id)
        .where(t.c.id_sha256 == _sha(sid), t.c.expires_at > _now())
    )
    with store.engine.connect() as c:
        row = c.execute(q).first()
    return None if row is None else (User(row.id, row.name, row.role), row.csrf)


def end_session(store: Store, sid: str) -> None:
    with store.engine.begin() as c:
        c.execute(delete(schema.web_sessions).where(schema.web_sessions.c.id_sha256 == _sha(sid)))

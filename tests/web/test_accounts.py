"""``waikan user``: argon2id hashes, hashed tokens, one-line errors."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from tests.conftest import assert_one_line_error

from waikan.config import load
from waikan.web import accounts
from waikan.workspace import Workspace


def test_user_add_reads_stdin_and_stores_an_argon2id_hash(
    waikan, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret-password\n"))
    result = waikan("user", "add", "lin", "--role", "admin")
    assert result.code == 0, result.err
    assert result.out.split("\t")[1:] == ["lin", "admin\n"]
    ws = Workspace(load(home, env={}))
    rows = [r for r in ws.store.dump() if r["table"] == "users"]
    assert rows[0]["password_hash"].startswith("$argon2id$")
    assert "s3cret-password" not in repr(list(ws.store.dump()))
    assert accounts.check_password(ws.store, "lin", "s3cret-password") is not None
    assert accounts.check_password(ws.store, "lin", "wrong-password") is None
    ws.close()


def test_duplicate_user_name_is_a_one_line_error(waikan, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("sys.stdin", io.StringIO("password-one\n"))
    assert waikan("user", "add", "mei").code == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("password-two\n"))
    dup = waikan("user", "add", "mei")
    assert_one_line_error(dup)
    assert "already exists" in dup.err
    listed = waikan("user", "list")
    assert listed.out.count("mei") == 1


def test_bad_user_input_is_refused(waikan, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert_one_line_error(waikan("user", "add", "ann"))
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert_one_line_error(waikan("user", "add", "ann"))
    assert_one_line_error(waikan("user", "token", "nobody"))
    assert waikan("user", "add", "ann", "--role", "root").code == 2


def test_tokens_are_stored_hashed_and_identify_the_user(
    waikan, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("sys.stdin", io.StringIO("password-one\n"))
    assert waikan("user", "add", "bo").code == 0
    token = waikan("user", "token", "bo").out.strip()
    assert token.startswith("wk_") and len(token) > 40
    ws = Workspace(load(home, env={}))
    assert token not in repr(list(ws.store.dump()))
    user = accounts.token_user(ws.store, token)
    assert user is not None and user.name == "bo" and user.role == "editor"
    assert accounts.token_user(ws.store, token + "x") is None
    ws.close()

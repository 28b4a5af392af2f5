"""A store URL's secrets never reach an error line: the password in the user part or
in the query string (?password=, ?sslpassword=), and a password with an unencoded '@'."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine

from waikan.errors import StoreError
from waikan.store import Store, open_store

SECRET = "Qs3cret-x9"
URLS = [
    f"postgresql+psycopg://postgres:{SECRET}@127.0.0.1:1/db",
    f"postgresql+psycopg://postgres@127.0.0.1:1/db?password={SECRET}",
    f"postgresql+psycopg://postgres@127.0.0.1:1/db?sslpassword={SECRET}&connect_timeout=2",
    f"postgresql+psycopg://postgres@/db?host=/nonexistent&password={SECRET}",
    f"postgresql+psycopg://postgres:ab@{SECRET}@127.0.0.1:1/db",
]


@pytest.mark.parametrize("url", URLS)
def test_open_store_error_hides_the_secrets(url: str) -> None:
    with pytest.raises(StoreError) as err:
        open_store(url)
    message = str(err.value)
    assert message.startswith("cannot open store")
    assert SECRET not in message and "\n" not in message


@pytest.mark.parametrize("url", URLS[:4])
def test_leader_unreachable_line_hides_the_secrets(url: str) -> None:
    from waikan.queue.leader import PgLeader
    from waikan.scheduler import LeaderUnreachable

    leader = PgLeader(Store(create_engine(url)))
    with pytest.raises(LeaderUnreachable) as err:
        leader.lead()
    message = str(err.value)
    assert message.startswith("the store is unreachable (postgresql+psycopg://")
    assert SECRET not in message and "***" in message

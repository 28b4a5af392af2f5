"""The publisher interface: one small contract per destination type.

A publisher type is a :class:`Publisher` subclass registered with
``registry.add_publisher(kind, cls)`` from a plug-in's ``register()``. The
runner (:mod:`waikan.publish.run`) owns the outbox; a publisher only talks to
its remote end and records each remote step in the :class:`Journal` it is
given, *before* and *after* the call, so a crash leaves at most one step in
doubt.

Errors say what the runner should do with the delivery:

- :class:`~waikan.errors.PublishError` — the destination cannot take posts now
  (down, rate-limited, bad token, bad chat id): the delivery goes back to
  ``pending`` with what was already sent, and the destination is skipped for
  the rest of the run. Other destinations go on.
- :class:`DeliveryFailed` — this post can never go there as it is: ``failed``.
- :class:`DeliveryUncertain` — the remote end may or may not have it (a
  timeout after the request left): ``uncertain``, for a human to resolve.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from waikan.errors import ConfigError, PublishError
from waikan.render.post import post_path

if TYPE_CHECKING:
    from waikan.config import Config
    from waikan.models import Post
    from waikan.publish.config import Destination
    from waikan.publish.outbox import Journal

__all__ = [
    "Context",
    "DeliveryFailed",
    "DeliveryUncertain",
    "Option",
    "PublishError",
    "Publisher",
    "PublisherFactory",
]


class DeliveryFailed(PublishError):
    """This delivery cannot be made by retrying (e.g. rejected content)."""


class DeliveryUncertain(PublishError):
    """The request may have reached the remote end: never repeat it blindly."""


@dataclass(frozen=True)
class Option:
    """One key of a ``[publish.<id>]`` table: type, default, help (the docs come from it)."""

    key: str
    kind: str  # "str" | "int" | "float" | "bool" | "list"
    default: Any
    help: str
    required: bool = False
    choices: tuple[str, ...] = ()
    minimum: float | None = None

    def coerce(self, value: Any, name: str) -> Any:
        ok = {
            "str": isinstance(value, str),
            "int": isinstance(value, int) and not isinstance(value, bool),
            "float": isinstance(value, int | float) and not isinstance(value, bool),
            "bool": isinstance(value, bool),
            "list": isinstance(value, list) and all(isinstance(v, str) for v in value),
        }[self.kind]
        if self.kind == "list" and isinstance(value, str):
            value, ok = [value], True
        if not ok:
            expected = "a list of strings" if self.kind == "list" else self.kind
            raise ConfigError(f"invalid value for {name}: {value!r} (expected {expected})")
        if self.kind == "float":
            value = float(value)
        if self.choices and value not in self.choices:
            shown = ", ".join(c or '""' for c in self.choices)
            raise ConfigError(f"invalid value for {name}: {value!r} (one of {shown})")
        if self.minimum is not None and value < self.minimum:
            raise ConfigError(f"invalid value for {name}: {value!r} (minimum {self.minimum:g})")
        return value


@dataclass(frozen=True)
class Context:
    """What every publisher may use besides its own destination table."""

    config: Config
    now: Callable[[], datetime]
    sleep: Callable[[float], None]

    @property
    def channel(self) -> str:
        return str(self.config["channel.name"])

    @property
    def allow_private(self) -> bool:
        return bool(self.config["fetch.allow_private_networks"])

    def page_url(self, post: Post) -> str | None:
        """The post's page on the site (``[site] base_url``), when the site has an address."""
        base = str(self.config["site.base_url"]).rstrip("/")
        return f"{base}/{post_path(post.id)}" if base else None


class Publisher(ABC):
    """One destination of one type. Built per run; ``close()`` is always called."""

    kind: ClassVar[str]
    options: ClassVar[tuple[Option, ...]] = ()
    #: the environment variable holding this type's secret, if it has one
    secret_env: ClassVar[str | None] = None
    #: the key a user might wrongly put the secret under in the file
    secret_key: ClassVar[str] = "secret"
    #: digest types send many posts in one message (see :meth:`send_batch`)
    batch: ClassVar[bool] = False

    def __init__(self, dest: Destination, ctx: Context) -> None:
        self.dest = dest
        self.ctx = ctx

    # Optional hooks below are empty on purpose (B027): types override what they need.
    @classmethod  # noqa: B027
    def validate(cls, options: Mapping[str, Any], prefix: str) -> None:
        """Cross-key checks of the table; raise ConfigError naming the key."""

    def check(self) -> None:
        """Raise PublishError when this destination cannot work at all (e.g. no secret)."""
        if self.secret_env and not self.dest.secret:
            raise PublishError(f"{self.secret_env} is not set")

    @abstractmethod
    def send(self, post: Post, journal: Journal) -> None:
        """Deliver one revision of a post, resuming after ``journal.messages``."""

    def send_batch(self, posts: Sequence[Post], journal: Journal) -> None:
        """Deliver several posts as one message (digest types only)."""
        raise NotImplementedError

    def due(self, last_sent: datetime | None, now: datetime) -> bool:
        """Whether a digest should go out now; single-post types are always due."""
        return True

    def retract(self, post: Post, sent: Sequence[Mapping[str, Any]]) -> None:  # noqa: B027
        """Take a post back (unpublish); ``sent`` are the remote records of its deliveries."""

    def close(self) -> None:  # noqa: B027
        """Release connections."""


PublisherFactory = type[Publisher]

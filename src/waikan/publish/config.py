"""``[publish.<id>]`` destination tables: parsed and validated once, before anything is sent.

``waikan.config`` leaves the ``publish`` table alone because its keys depend
on the destination type; here every table is checked against the common keys
(routing, review mode, cadence) and the options its publisher type declares.
A bad value is a :class:`~waikan.errors.ConfigError` naming
``publish.<id>.<key>``. Secrets are never read from the file: each type names
its one ``WAIKAN_*`` variable.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from waikan.config import CONFIG_FILE, Config
from waikan.errors import ConfigError
from waikan.plugins import registry
from waikan.publish.base import Option

__all__ = ["COMMON_OPTIONS", "Destination", "load_destinations", "parse_destinations"]

VARIANTS = ("zh-Hans", "zh-Hant-TW", "zh-Hant-HK")

COMMON_OPTIONS: tuple[Option, ...] = (
    Option(
        "type",
        "str",
        None,
        "Destination type: telegram, webhook, email (or a plug-in's).",
        required=True,
    ),
    Option(
        "review",
        "str",
        "auto",
        "auto: publish what passed the guard; review: only what an editor approved.",
        choices=("auto", "review"),
    ),
    Option("sources", "list", [], "Only posts from these sources (names or hosts); empty: all."),
    Option("tags", "list", [], "Only posts whose source carries one of these tags; empty: all."),
    Option(
        "variant",
        "str",
        "",
        "Script of the summaries here (default: channel.variant).",
        choices=("", *VARIANTS),
    ),
    Option("max_per_hour", "int", 0, "At most this many sends per hour; 0: no limit.", minimum=0),
    Option("quiet_hours", "str", "", 'No sends in this local time window, e.g. "23:00-07:00".'),
    Option(
        "timezone",
        "str",
        "",
        "Time zone of quiet hours and digests (default: channel.timezone), e.g. Asia/Shanghai.",
    ),
    Option("enabled", "bool", True, "false keeps the table but sends nothing."),
)
_COMMON = {o.key: o for o in COMMON_OPTIONS}
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class Destination:
    """One resolved ``[publish.<id>]`` table."""

    id: str
    type: str
    review: str = "auto"
    sources: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    variant: str = "zh-Hans"
    max_per_hour: int = 0
    quiet_hours: tuple[time, time] | None = None
    timezone: str = "UTC"
    enabled: bool = True
    options: Mapping[str, Any] = field(default_factory=dict)
    secret: str = field(default="", repr=False)

    @property
    def name(self) -> str:
        return f"publish.{self.id}"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def parse_hhmm(value: str, name: str) -> time:
    m = _HHMM.match(value.strip())
    if not m:
        raise ConfigError(f"invalid value for {name}: {value!r} (HH:MM, 24-hour)")
    return time(int(m.group(1)), int(m.group(2)))


def _quiet(value: str, name: str) -> tuple[time, time] | None:
    if not value.strip():
        return None
    start, sep, end = value.partition("-")
    if not sep:
        raise ConfigError(f'invalid value for {name}: {value!r} (a window like "23:00-07:00")')
    return parse_hhmm(start, name), parse_hhmm(end, name)


def _zone(value: str, name: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"invalid value for {name}: {value!r} (an IANA time zone such as Asia/Shanghai)"
        ) from None
    return value


def read_publish_table(config: Config) -> dict[str, Any]:
    path = config.home / CONFIG_FILE
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    table = data.get("publish", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{CONFIG_FILE}: [publish] must hold [publish.<id>] tables")
    return table


def parse_destinations(
    table: Mapping[str, Any], config: Config, env: Mapping[str, str] | None = None
) -> list[Destination]:
    """Validate every destination table; the first problem is a ConfigError naming the key."""
    env = os.environ if env is None else env
    kinds = registry().publishers
    out = []
    for dest_id, body in table.items():
        if not _ID.match(dest_id) or not isinstance(body, dict):
            raise ConfigError(
                f"{CONFIG_FILE}: [publish.{dest_id}] must be a table with a name of letters, "
                "digits, - and _"
            )
        prefix = f"publish.{dest_id}"
        kind = body.get("type")
        if kind is None:
            raise ConfigError(f"{prefix}.type is missing (one of {', '.join(sorted(kinds))})")
        if kind not in kinds:
            hint = f"; {'; '.join(registry().errors)}" if registry().errors else ""
            raise ConfigError(
                f"invalid value for {prefix}.type: {kind!r} (one of {', '.join(sorted(kinds))})"
                f"{hint}"
            )
        factory = kinds[kind]
        own = {o.key: o for o in factory.options}
        secret_env = factory.secret_env
        values: dict[str, Any] = {o.key: o.default for o in (*COMMON_OPTIONS, *own.values())}
        for key, raw in body.items():
            name = f"{prefix}.{key}"
            if key in ("token", "secret", "password", "bot_token") or (
                secret_env and key == factory.secret_key
            ):
                raise ConfigError(
                    f"{name}: secrets are never read from the file; set {secret_env} "
                    "in the environment"
                )
            option = _COMMON.get(key) or own.get(key)
            if option is None:
                known = ", ".join(sorted({*_COMMON, *own}))
                raise ConfigError(f"unknown setting {name} (known: {known})")
            values[key] = option.coerce(raw, name)
        for option in (*COMMON_OPTIONS, *own.values()):
            if option.required and values.get(option.key) in (None, "", []):
                raise ConfigError(f"{prefix}.{option.key} is missing: {option.help}")
        options = {k: values[k] for k in own}
        factory.validate(options, prefix)
        out.append(
            Destination(
                id=dest_id,
                type=str(kind),
                review=values["review"],
                sources=tuple(s.casefold() for s in values["sources"]),
                tags=tuple(t.casefold() for t in values["tags"]),
                variant=values["variant"] or str(config["channel.variant"]),
                max_per_hour=values["max_per_hour"],
                quiet_hours=_quiet(values["quiet_hours"], f"{prefix}.quiet_hours"),
                timezone=_zone(
                    values["timezone"] or str(config["channel.timezone"]), f"{prefix}.timezone"
                ),
                enabled=values["enabled"],
                options=options,
                secret=env.get(secret_env, "") if secret_env else "",
            )
        )
    return out


def load_destinations(config: Config, env: Mapping[str, str] | None = None) -> list[Destination]:
    """The destinations of the workspace's ``waikan.toml``, validated."""
    return parse_destinations(read_publish_table(config), config, env)

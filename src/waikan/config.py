"""Typed settings: ``waikan.toml`` < ``WAIKAN_<TABLE>_<KEY>`` environment < flags.

Every setting is one row of :data:`SETTINGS` (name, type, default, help), so
loading, validation, the example config and the docs all come from one table.
A bad value is a :class:`~waikan.errors.ConfigError` naming the key.

Secrets are never literal in the file: a secret setting is read from its
``WAIKAN_*`` variable, or from ``{"$env" = "VAR"}`` / ``{"$file" = "PATH"}``
references in ``waikan.toml``.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from waikan.errors import ConfigError

CONFIG_FILE = "waikan.toml"
HOME_ENV = "WAIKAN_HOME"
DEFAULT_HOME = "waikan-data"


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"1", "true", "yes", "on"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected true or false")


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected an integer")
    return int(value)


def _float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a number")
    result = float(value)
    if not math.isfinite(result):  # nan passes every bound; inf overflows dates and sleeps
        raise ValueError("expected a finite number")
    return result


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a string")
    return value


@dataclass(frozen=True)
class Setting:
    table: str
    key: str
    kind: str  # "str" | "int" | "float" | "bool"
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    secret: bool = False
    minimum: float | None = None
    maximum: float | None = None

    @property
    def name(self) -> str:
        return f"{self.table}.{self.key}"

    @property
    def env(self) -> str:
        return f"WAIKAN_{self.table}_{self.key}".upper()

    def coerce(self, value: Any) -> Any:
        convert: dict[str, Callable[[Any], Any]] = {
            "str": _str,
            "int": _int,
            "float": _float,
            "bool": _bool,
        }
        try:
            result = convert[self.kind](value)
        except (TypeError, ValueError) as exc:
            msg = str(exc) if str(exc).startswith("expected") else f"expected {self.kind}"
            raise ConfigError(f"invalid value for {self.name}: {value!r} ({msg})") from None
        if self.choices and result not in self.choices:
            raise ConfigError(
                f"invalid value for {self.name}: {value!r} (one of {', '.join(self.choices)})"
            )
        if self.minimum is not None and result < self.minimum:
            raise ConfigError(
                f"invalid value for {self.name}: {value!r} (minimum {self.minimum:g})"
            )
        if self.maximum is not None and result > self.maximum:
            raise ConfigError(
                f"invalid value for {self.name}: {value!r} (maximum {self.maximum:.10g})"
            )
        return result


SETTINGS: tuple[Setting, ...] = (
    Setting("channel", "name", "str", "外刊", "Channel name, the first line of every post."),
    Setting(
        "channel",
        "variant",
        "str",
        "zh-Hans",
        "Script of the summaries.",
        choices=("zh-Hans", "zh-Hant-TW", "zh-Hant-HK"),
    ),
    Setting("channel", "timezone", "str", "UTC", "Time zone for digests and quiet hours."),
    Setting(
        "channel",
        "reading_wpm",
        "int",
        265,
        "Reading speed for the meta line's minutes (Medium's 265).",
        minimum=1,
    ),
    Setting(
        "llm",
        "backend",
        "str",
        "auto",
        "Summary backend: auto (openai when base_url is set, else extractive), openai, extractive.",
    ),
    Setting(
        "llm",
        "base_url",
        "str",
        "",
        "OpenAI-compatible endpoint ending in /v1; requests go to {base_url}/chat/completions.",
    ),
    Setting("llm", "model", "str", "", "Model name sent to the endpoint."),
    Setting("llm", "api_key", "str", "", "API key (secret: WAIKAN_LLM_API_KEY).", secret=True),
    Setting("llm", "temperature", "float", 0.3, "Sampling temperature.", minimum=0),
    Setting("llm", "max_tokens", "int", 1200, "Maximum tokens of one answer.", minimum=1),
    Setting("llm", "timeout", "float", 120.0, "Seconds to wait for one answer.", minimum=0.1),
    Setting("llm", "max_retries", "int", 2, "Retries on 429, 5xx and timeouts.", minimum=0),
    Setting(
        "llm",
        "fallback_models",
        "str",
        "",
        "Comma-separated models tried in order when llm.model is unknown or stays unavailable.",
    ),
    Setting("llm", "concurrency", "int", 4, "Parallel requests to the endpoint.", minimum=1),
    Setting("llm", "rpm", "int", 0, "Requests-per-minute limit (0: none).", minimum=0),
    Setting("llm", "tpm", "int", 0, "Tokens-per-minute limit (0: none).", minimum=0),
    Setting(
        "llm",
        "prices",
        "str",
        "",
        "Prices per million tokens, MODEL=INPUT/OUTPUT, comma-separated "
        "(e.g. deepseek-chat=0.27/1.10); unlisted models cost 0.",
    ),
    Setting(
        "llm",
        "context_tokens",
        "int",
        16000,
        "Tokens of article one request may carry; longer articles are summarized "
        "by map-reduce over chunks.",
        minimum=500,
    ),
    Setting(
        "summarize",
        "prompt_file",
        "str",
        "",
        "Prompt file overriding the built-in prompt (relative to the workspace).",
    ),
    Setting(
        "summarize",
        "excerpt_sentences",
        "int",
        5,
        "Sentences the extractive backend keeps.",
        minimum=1,
    ),
    Setting(
        "summarize",
        "daily_token_budget",
        "int",
        2_000_000,
        "Tokens (in + out) that may be spent per day; new summaries stop when reached.",
        minimum=0,
    ),
    Setting(
        "summarize",
        "daily_cost_budget",
        "float",
        20.0,
        "Money (in llm.prices units) that may be spent per day; new summaries stop when reached.",
        minimum=0,
    ),
    Setting(
        "summarize",
        "min_han",
        "int",
        200,
        "Fewest Chinese characters a summary may have before the guard flags it.",
        minimum=0,
    ),
    Setting(
        "summarize",
        "max_han",
        "int",
        700,
        "Most Chinese characters a summary may have before the guard flags it.",
        minimum=1,
    ),
    Setting(
        "summarize",
        "glossary_file",
        "str",
        "",
        "Extra glossary file (TSV/CSV, relative to the workspace) read on every run.",
    ),
    Setting(
        "extract",
        "min_words",
        "int",
        120,
        "Bodies shorter than this are rejected as too_short.",
        minimum=0,
    ),
    Setting(
        "extract",
        "max_bytes",
        "int",
        5 * 1024 * 1024,
        "Largest page extracted (checked before parsing); a larger one is rejected as too_large.",
        minimum=1024,
    ),
    Setting(
        "extract",
        "max_depth",
        "int",
        2000,
        "Deepest tag nesting extracted (a linear scan before parsing); deeper is too_deep.",
        minimum=16,
    ),
    Setting(
        "extract",
        "timeout",
        "float",
        30.0,
        "Seconds (CPU time and wall clock) one page's extraction may take; past it: timeout.",
        minimum=0.1,
    ),
    Setting(
        "extract",
        "memory_mb",
        "int",
        1024,
        "Memory (MiB) one page's extraction may add to its worker; past it: memory.",
        minimum=64,
    ),
    Setting(
        "extract",
        "isolate",
        "bool",
        True,
        "Extract in reused worker processes so extract.timeout and extract.memory_mb hold.",
    ),
    Setting(
        "fetch",
        "allow_private_networks",
        "bool",
        False,
        "Allow fetching loopback and private addresses (tests, intranets).",
    ),
    Setting("fetch", "timeout", "float", 30.0, "Seconds for one HTTP request.", minimum=0.1),
    Setting(
        "fetch",
        "max_bytes",
        "int",
        5 * 1024 * 1024,
        "Largest page accepted, enforced while streaming and for local files.",
        minimum=1024,
    ),
    Setting(
        "fetch",
        "user_agent",
        "str",
        "waikan/0.1 (+https://github.com/waikan/waikan; news digest bot)",
        "User-Agent sent with every request.",
    ),
    Setting("fetch", "max_redirects", "int", 5, "Redirect hops followed.", minimum=0),
    Setting(
        "fetch",
        "connect_timeout",
        "float",
        10.0,
        "Seconds to open a connection (capped by fetch.timeout).",
        minimum=0.1,
    ),
    Setting(
        "fetch",
        "total_timeout",
        "float",
        120.0,
        "Seconds for one whole response, so a server dripping bytes cannot hold a slot.",
        minimum=0.1,
    ),
    Setting(
        "fetch",
        "max_feed_bytes",
        "int",
        50 * 1024 * 1024,
        "Largest feed or sitemap accepted (feeds may be larger than pages).",
        minimum=1024,
    ),
    Setting("fetch", "concurrency", "int", 16, "Requests in flight at once, all hosts.", minimum=1),
    Setting("fetch", "per_host", "int", 2, "Requests in flight at once to one host.", minimum=1),
    Setting(
        "fetch",
        "host_delay",
        "float",
        1.0,
        "Minimum seconds between request starts to one host (robots.txt Crawl-delay wins "
        "when longer).",
        minimum=0,
    ),
    Setting(
        "fetch",
        "retries",
        "int",
        2,
        "Retries on connection errors, 5xx and 429 (exponential backoff with jitter).",
        minimum=0,
    ),
    Setting("fetch", "backoff", "float", 0.5, "Seconds before the first retry.", minimum=0),
    Setting(
        "fetch",
        "max_retry_after",
        "float",
        60.0,
        "Longest Retry-After waited for in a run; longer ones are retried on a later run.",
        minimum=0,
    ),
    Setting("fetch", "obey_robots", "bool", True, "Obey robots.txt for URLs from sources."),
    Setting(
        "fetch",
        "max_attempts",
        "int",
        5,
        "Runs that may fail transiently on one article before it is marked failed.",
        minimum=1,
    ),
    Setting(
        "sources",
        "every",
        "float",
        15.0,
        "Default poll interval of a source, in minutes.",
        minimum=0.01,
        maximum=10 * 365 * 24 * 60,  # ten years; far more overflows the next poll time
    ),
    Setting(
        "sources",
        "backfill",
        "int",
        0,
        "Existing items a new source takes (0: only items that appear later).",
        minimum=0,
        maximum=1_000_000,
    ),
    Setting(
        "sources",
        "max_age",
        "float",
        48.0,
        "Hours: items older than this are ignored.",
        minimum=0,
        maximum=10 * 365 * 24,  # ten years
    ),
    Setting(
        "sources",
        "max_items",
        "int",
        100,
        "Most new items taken per poll.",
        minimum=1,
        maximum=1_000_000,
    ),
    Setting("site", "base_url", "str", "", "Absolute URL the site is served from."),
    Setting(
        "site",
        "path",
        "str",
        "site",
        "Folder `waikan build` writes the site into (relative to the workspace).",
    ),
    Setting("site", "per_page", "int", 20, "Posts per index, source and archive page.", minimum=1),
    Setting("site", "feed_items", "int", 50, "Newest posts carried by each feed.", minimum=1),
    Setting(
        "site",
        "images",
        "bool",
        True,
        "Download lead images through the fetcher and serve them from the site.",
    ),
    Setting(
        "site",
        "image_max_bytes",
        "int",
        3 * 1024 * 1024,
        "Largest lead image downloaded; bigger ones are left out.",
        minimum=1024,
    ),
    Setting(
        "store",
        "url",
        "str",
        "",
        "SQLAlchemy URL of the store; default: SQLite file waikan.db in the workspace.",
    ),
    Setting(
        "queue",
        "url",
        "str",
        "",
        "Celery broker URL for waikan worker and run --distributed (redis://host:6379/0); "
        "needs a PostgreSQL store.",
    ),
    Setting(
        "queue",
        "visibility_timeout",
        "int",
        30,
        "Seconds before a task taken by a worker that died is handed to another "
        "(Redis visibility_timeout); tasks are idempotent, so a slow one running twice is safe.",
        minimum=5,
    ),
    Setting(
        "queue",
        "lease",
        "float",
        60.0,
        "Seconds run --distributed waits on a pending row before enqueueing it again "
        "(the broker may have lost it).",
        minimum=1,
    ),
    Setting(
        "dedupe",
        "near_threshold",
        "float",
        0.8,
        "Near-duplicate when this share of the shorter text's word 5-grams is in the other "
        "(MinHash estimate).",
        minimum=0.05,
    ),
    Setting(
        "dedupe",
        "story_threshold",
        "float",
        0.35,
        "Same story when the weighted overlap of names, numbers and topic words reaches this.",
        minimum=0.01,
    ),
    Setting(
        "dedupe",
        "story_window_hours",
        "float",
        72.0,
        "Reports further apart in time than this are never one story.",
        minimum=0,
    ),
    Setting(
        "dedupe",
        "preferred_sources",
        "str",
        "",
        "Comma-separated source names kept as a story's canonical version first (best first).",
    ),
    Setting(
        "dedupe",
        "update_policy",
        "str",
        "never",
        "A later version that changes more than dedupe.update_fraction of the text: "
        "never re-summarize, ask (flag the story), always (it becomes the canonical version).",
        choices=("never", "ask", "always"),
    ),
    Setting(
        "dedupe",
        "update_fraction",
        "float",
        0.2,
        "Share of changed text that makes a later version an update.",
        minimum=0,
    ),
    Setting("web", "host", "str", "127.0.0.1", "Address waikan serve listens on."),
    Setting("web", "port", "int", 8080, "Port of the reader site and the /desk editor.", minimum=0),
    Setting(
        "web",
        "language",
        "str",
        "auto",
        "Desk interface language: auto (Accept-Language, Chinese by default), zh or en.",
        choices=("auto", "zh", "en"),
    ),
    Setting(
        "web",
        "max_body",
        "int",
        262144,
        "Largest request body the desk accepts, in bytes (larger gets 413).",
        minimum=1024,
    ),
    Setting(
        "web",
        "lockout_account",
        "int",
        5,
        "Failed logins per account within web.lockout_window before 429.",
        minimum=1,
    ),
    Setting(
        "web",
        "lockout_address",
        "int",
        20,
        "Failed logins per client address within web.lockout_window before 429.",
        minimum=1,
    ),
    Setting(
        "web",
        "lockout_window",
        "int",
        60,
        "Seconds over which failed logins are counted.",
        minimum=1,
    ),
    Setting("web", "page_size", "int", 50, "Articles per review-queue page.", minimum=1),
)

_BY_NAME = {s.name: s for s in SETTINGS}
TABLES = tuple(dict.fromkeys(s.table for s in SETTINGS))


@dataclass(frozen=True)
class Config:
    """Resolved settings plus where each came from (``file``, ``env``, ``flag``, ``default``)."""

    home: Path
    values: Mapping[str, Any]
    origins: Mapping[str, str]

    def get(self, name: str) -> Any:
        return self.values[name]

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    @property
    def store_url(self) -> str:
        url = str(self.values["store.url"])
        return url or f"sqlite:///{self.home / 'waikan.db'}"

    def redacted(self) -> dict[str, Any]:
        """Values safe to print: secrets shown only as set / unset."""
        return {
            n: (("(set)" if v else "(unset)") if _BY_NAME[n].secret else v)
            for n, v in self.values.items()
        }


def _resolve_secret(setting: Setting, raw: Any, base: Path, env: Mapping[str, str]) -> str:
    if isinstance(raw, dict):
        if set(raw) == {"$env"}:
            return env.get(str(raw["$env"]), "")
        if set(raw) == {"$file"}:
            path = base / str(raw["$file"])
            try:
                return path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(
                    f"cannot read secret file for {setting.name}: {exc.strerror}"
                ) from None
    if raw in ("", None):
        return ""
    raise ConfigError(
        f'{setting.name} is a secret: set {setting.env} or use {{"$env" = "VAR"}}, '
        "never a literal value in the file"
    )


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except UnicodeDecodeError as exc:  # found by fuzzing: tomllib decodes before parsing
        raise ConfigError(f"{path}: invalid TOML: not UTF-8 ({exc.reason})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def resolve_home(home: str | os.PathLike[str] | None, env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    chosen = home or env.get(HOME_ENV) or DEFAULT_HOME
    return Path(chosen).expanduser().absolute()


def load(
    home: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Load settings for workspace ``home``: file, then environment, then ``overrides``."""
    env = os.environ if env is None else env
    root = resolve_home(home, env)
    data = _read_file(root / CONFIG_FILE)
    values: dict[str, Any] = {s.name: s.default for s in SETTINGS}
    origins: dict[str, str] = {s.name: "default" for s in SETTINGS}

    for table, body in data.items():
        if table == "publish":
            continue  # destinations are validated by their channel plug-ins
        if table not in TABLES or not isinstance(body, dict):
            raise ConfigError(f"{CONFIG_FILE}: unknown table [{table}]")
        for key, raw in body.items():
            setting = _BY_NAME.get(f"{table}.{key}")
            if setting is None:
                raise ConfigError(f"{CONFIG_FILE}: unknown setting {table}.{key}")
            if setting.secret:
                values[setting.name] = _resolve_secret(setting, raw, root, env)
            else:
                values[setting.name] = setting.coerce(raw)
            origins[setting.name] = "file"

    for setting in SETTINGS:
        if setting.env in env:
            values[setting.name] = setting.coerce(env[setting.env])
            origins[setting.name] = "env"

    for name, raw in (overrides or {}).items():
        setting = _BY_NAME.get(name)
        if setting is None:
            raise ConfigError(f"unknown setting {name}")
        values[setting.name] = setting.coerce(raw)
        origins[setting.name] = "flag"

    _check(values)
    return Config(home=root, values=values, origins=origins)


def _check(values: Mapping[str, Any]) -> None:
    base_url = str(values["llm.base_url"])
    if base_url:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"invalid value for llm.base_url: {base_url!r} (an http(s) URL)")
    store = str(values["store.url"])
    if store and "://" not in store:
        raise ConfigError(f"invalid value for store.url: {store!r} (an SQLAlchemy URL)")


def parse_override(text: str) -> tuple[str, str]:
    """``table.key=value`` from ``--set``."""
    name, sep, value = text.partition("=")
    if not sep or name.strip() not in _BY_NAME:
        raise ConfigError(f"--set expects TABLE.KEY=VALUE with a known key, got {text!r}")
    return name.strip(), value


def example_toml() -> str:
    """The commented ``waikan.toml`` that ``waikan init`` writes."""
    lines = [
        "# waikan configuration. Precedence: this file < WAIKAN_<TABLE>_<KEY> env < flags.",
        "# Secrets are never written here: use the environment variable named in the comment,",
        '# or a reference such as api_key = { "$env" = "DEEPSEEK_API_KEY" }.',
        "",
    ]
    for table in TABLES:
        lines.append(f"[{table}]")
        for s in (s for s in SETTINGS if s.table == table):
            lines.append(f"# {s.help}  (env: {s.env})")
            if s.secret:
                lines.append(f'# {s.key} = {{ "$env" = "{s.env}" }}')
                continue
            lines.append(f"# {s.key} = {_toml_value(s.default)}")
        lines.append("")
    lines += [
        "# Destinations (docs/channels.md), e.g. a Telegram channel; the bot token comes",
        "# only from WAIKAN_TELEGRAM_BOT_TOKEN:",
        "# [publish.tg]",
        '# type = "telegram"',
        '# chat_id = "@my_channel"',
        "",
    ]
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'

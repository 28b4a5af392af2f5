"""The secrets suite: use every secret, make each one fail, then look for it everywhere.

Secrets: the LLM API key, the Telegram bot token, the SMTP password and the
webhook secret. Each is first used successfully (a summary, a Telegram post,
a signed webhook, an e-mail), then made to fail (the model answers 401, the
Bot API 500, the receiver 401, the SMTP server refuses the login), with the
root logger at DEBUG. Then every place a secret could leak is scanned: the
log, every command's stdout and stderr (errors included), ``store.dump()``
with archived raw responses decompressed, every file of the workspace and of
the built site, and ``waikan doctor`` output. A secret is searched raw,
URL-encoded, base64-encoded (also inside any base64 run, e.g. SMTP AUTH PLAIN).

``run(protect=False)`` switches the redactions off (the Telegram token filter
on httpx's log, the openai SDK's log clamp, the LLM error cleaner).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import json
import logging
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, quote_plus

from tests.conftest import DATA, SEED, SEED_SUMMARY_LINE, Result, run_inproc
from tests.publish.conftest import CHAT, add_post, write_config
from tests.servers.openai_server import FakeLLM
from tests.servers.smtp_server import SmtpServer
from tests.servers.telegram_server import TelegramServer
from tests.servers.webhook_server import WebhookReceiver

from waikan.store import open_store

MODEL = "suite-model"
SECRETS = {
    "LLM API key": "sk-Se+cr/et=LLM:key%41zz",
    "Telegram bot token": "987654321:AAHsecretTOKEN_telegram-xyz",
    "SMTP password": "smtp-P@ss w0rd+/=zz",
    "webhook secret": "whsec+Hook/Secret=9zz",
}
SMTP_USER = "digest"
GOOD = "\n\n".join(SEED.read_text(encoding="utf-8").split("\n")[SEED_SUMMARY_LINE].split(" "))


def forms(secret: str) -> dict[str, str]:
    """Spellings a leak could take."""
    raw = secret.encode()
    return {
        "raw": secret,
        "url-encoded": quote(secret, safe=""),
        "form-encoded": quote_plus(secret),
        "base64": base64.b64encode(raw).decode(),
        "base64url": base64.urlsafe_b64encode(raw).decode().rstrip("="),
        "basic-auth": base64.b64encode(f"{SMTP_USER}:{secret}".encode()).decode(),
    }


_B64_RUN = re.compile(r"[A-Za-z0-9+/_-]{12,}={0,2}")


def _decoded_runs(text: str) -> Iterator[str]:
    for m in _B64_RUN.finditer(text):
        run = m.group()
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            with contextlib.suppress(binascii.Error, ValueError):
                yield decode(run + "=" * (-len(run) % 4)).decode("utf-8", "replace")


@dataclass
class Place:
    name: str
    text: str


@dataclass
class Finding:
    secret: str
    form: str
    place: str


@dataclass
class Report:
    places: list[Place] = field(default_factory=list)
    used: dict[str, bool] = field(default_factory=dict)
    failed: dict[str, bool] = field(default_factory=dict)

    def scan(self) -> list[Finding]:
        found: list[Finding] = []
        for place in self.places:
            decoded = "\n".join(_decoded_runs(place.text))
            for label, secret in SECRETS.items():
                for form, spelled in forms(secret).items():
                    if spelled in place.text:
                        found.append(Finding(label, form, place.name))
                if secret in decoded:
                    found.append(Finding(label, "inside base64", place.name))
        return found

    def clean(self) -> dict[str, bool]:
        bad = {f.secret for f in self.scan()}
        return {label: label not in bad for label in SECRETS}


def _text(data: bytes) -> str:
    for attempt in (lambda d: zlib.decompress(d), lambda d: zlib.decompress(d, 47)):
        with contextlib.suppress(zlib.error):
            data = attempt(data)
            break
    return data.decode("utf-8", "replace")


def _files(root: Path) -> Iterator[Place]:
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        yield Place(f"file {path.relative_to(root.parent)}", _text(path.read_bytes()))


def _store_rows(home: Path) -> Place:
    store = open_store(f"sqlite:///{home / 'waikan.db'}")
    try:
        rows = []
        for row in store.dump():
            for k, v in row.items():
                if isinstance(v, bytes | bytearray):
                    row[k] = _text(bytes(v))
            rows.append(json.dumps(row, ensure_ascii=False, default=str))
    finally:
        store.close()
    return Place("store.dump()", "\n".join(rows))


@contextlib.contextmanager
def debug_log() -> Iterator[io.StringIO]:
    """Every logger of the process at DEBUG into one buffer, as an operator debugging would."""
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield buf
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


@contextlib.contextmanager
def redaction_off() -> Iterator[None]:
    """The protections switched off: the log filters and clamps, the error cleaner."""
    from waikan.publish import telegram
    from waikan.summarize import openai_compat

    names = ("openai", "httpx", "httpx2", "httpcore")
    levels = {n: logging.getLogger(n).level for n in names}
    filt = telegram._RedactToken.filter
    clean = openai_compat.OpenAICompatBackend._clean
    for n in names:
        logging.getLogger(n).setLevel(logging.NOTSET)
    telegram._RedactToken.filter = lambda self, record: True  # type: ignore[method-assign]
    openai_compat.OpenAICompatBackend._clean = lambda self, text: text  # type: ignore[method-assign]
    try:
        yield
    finally:
        for n, lvl in levels.items():
            logging.getLogger(n).setLevel(lvl)
        telegram._RedactToken.filter = filt  # type: ignore[method-assign]
        openai_compat.OpenAICompatBackend._clean = clean  # type: ignore[method-assign]


def _env(llm: FakeLLM) -> dict[str, str]:
    return {
        "WAIKAN_LLM_BASE_URL": llm.url,
        "WAIKAN_LLM_MODEL": MODEL,
        "WAIKAN_LLM_API_KEY": SECRETS["LLM API key"],
        "WAIKAN_TELEGRAM_BOT_TOKEN": SECRETS["Telegram bot token"],
        "WAIKAN_WEBHOOK_SECRET": SECRETS["webhook secret"],
        "WAIKAN_SMTP_PASSWORD": SECRETS["SMTP password"],
    }


def _config(home: Path, tg: TelegramServer, hook: WebhookReceiver, smtp: SmtpServer) -> None:
    write_config(
        home,
        {
            "tg": {"type": "telegram", "chat_id": CHAT, "api_base": tg.url, "min_interval": 0,
                   "timeout": 2, "max_retries": 0},
            "hook": {"type": "webhook", "url": hook.url, "timeout": 2, "retry_backoff": 0.01,
                     "max_retries": 0},
            "mail": {"type": "email", "smtp_host": "127.0.0.1", "smtp_port": smtp.port,
                     "security": "none", "username": SMTP_USER, "from": "waikan@example.org",
                     "to": ["a@example.org"], "schedule": "now"},
        },
        "[site]\nimages = false\n",  # the seed's lead image is on a public host
    )  # fmt: skip


def run(work: Path, *, protect: bool = True) -> Report:
    report = Report()
    home = work / "ws"
    outputs: list[tuple[str, Result]] = []

    def cmd(label: str, *args: str, env: dict[str, str]) -> Result:
        got = run_inproc(["--home", str(home), *args], env)
        outputs.append((label, got))
        return got

    ctx = contextlib.nullcontext() if protect else redaction_off()
    with ctx, debug_log() as log:
        # 1. every secret used successfully
        with (
            FakeLLM(api_key=SECRETS["LLM API key"], model=MODEL, answer=GOOD) as llm,
            TelegramServer(token=SECRETS["Telegram bot token"], chats={CHAT}) as tg,
            WebhookReceiver(secret=SECRETS["webhook secret"]) as hook,
            SmtpServer(user=SMTP_USER, password=SECRETS["SMTP password"]) as smtp,
        ):
            tg.hang_seconds = hook.hang_seconds = 2
            _config(home, tg, hook, smtp)
            env = _env(llm)
            cmd("add", "add", str(DATA / "reuters-blinken-wang.html"), env=env)
            cmd("summarize", "summarize", env=env)
            cmd("publish", "publish", env=env)
            cmd("build", "build", "--out", str(work / "site"), env=env)
            cmd("doctor", "doctor", env=env)
            report.used = {
                "LLM API key": any(r["auth_ok"] for r in llm.requests),
                "Telegram bot token": bool(tg.live()),
                "webhook secret": bool(hook.verified()),
                "SMTP password": bool(smtp.messages),
            }
        # 2. every secret refused
        with (
            FakeLLM(api_key="sk-other", model=MODEL, answer=GOOD) as llm,
            TelegramServer(token=SECRETS["Telegram bot token"], chats={CHAT}) as tg,
            WebhookReceiver(secret="another-secret") as hook,
            SmtpServer(user=SMTP_USER, password="another-password") as smtp,
        ):
            tg.hang_seconds = hook.hang_seconds = 2
            tg.fail("500", times=10)
            _config(home, tg, hook, smtp)
            env = _env(llm)
            from waikan import config as config_mod
            from waikan.workspace import Workspace

            ws = Workspace(config_mod.load(home, env={}))
            try:
                add_post(ws, 2)  # a new post for every destination
            finally:
                ws.close()
            page = work / "second.html"
            html = (DATA / "reuters-blinken-wang.html").read_text(encoding="utf-8")
            page.write_text(html.replace("Blinken", "Blinkin").replace("Wang", "Wung"), "utf-8")
            cmd("add 2", "add", str(page), env=env)
            cmd("summarize (401)", "summarize", env=env)
            cmd("publish (500/401/535)", "publish", env=env)
            cmd("doctor (401)", "doctor", env=env)
            report.failed = {
                "LLM API key": any(r["status"] == 401 for r in llm.requests),
                "Telegram bot token": any(r.get("status") == 500 for r in tg.requests),
                "webhook secret": any(r["status"] == 401 for r in hook.requests),
                "SMTP password": any(not ok for _, ok in smtp.logins),
            }
        report.places.append(Place("log (DEBUG)", log.getvalue()))
    for label, got in outputs:
        report.places.append(Place(f"{label} stdout", got.out))
        report.places.append(Place(f"{label} stderr", got.err))
    report.places.append(_store_rows(home))
    report.places += list(_files(home)) + list(_files(work / "site"))
    return report


def summary(report: Report) -> str:
    clean = report.clean()
    n = sum(clean.values())
    lines = [f"secrets: {n}/{len(clean)} clean ({len(report.places)} places scanned)"]
    seen: set[tuple[str, str, str]] = set()
    for f in report.scan():
        key = (f.secret, f.form, f.place)
        if key not in seen:
            seen.add(key)
            lines.append(f"  LEAK: {f.secret} ({f.form}) in {f.place}")
    return "\n".join(lines[:25])

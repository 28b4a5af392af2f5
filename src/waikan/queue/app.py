"""The Celery app: broker settings under which a dead worker's task comes back, and the tasks.

Settings that matter (see docs/deploying.md and ../shared/NOTES.md):

- ``task_acks_late`` + ``task_reject_on_worker_lost``: a task is acknowledged
  after it ran; a pool child killed mid-task puts it back at once, at the queue's
  front (:func:`requeue_at_the_front`).
- ``visibility_timeout`` (``queue.visibility_timeout``) with
  ``unacked_restore_interval=1`` and ``unacked_restore_throttle=1``: a whole
  worker killed with SIGKILL leaves its unacked tasks in Redis; another worker
  restores them after the timeout instead of Kombu's default hour.
  ``unacked_mutex_expire=10``: the restore's lock does not outlive a worker killed
  while holding it by Kombu's default 300 s.
- ``worker_prefetch_multiplier=1``: a worker holds one task per pool process.
- ``broker_connection_retry_on_startup=False``: an unreachable broker at start
  is an error, not an endless retry.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import uuid
from collections.abc import Callable
from typing import Any

from celery import Celery, Task
from celery.signals import worker_process_init
from celery.worker.consumer import Consumer
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from waikan.config import Config
from waikan.errors import ConfigError, StorageError, StoreError, WaikanError
from waikan.workspace import Workspace

__all__ = ["QUEUE", "TASKS", "DeadLetterConsumer", "broker_check", "make_app", "workspace"]

log = logging.getLogger(__name__)

QUEUE = "waikan"
UNDECODABLE = "application/x-waikan-undecodable"

_config: Config | None = None
_ws: tuple[int, Workspace] | None = None


def workspace() -> Workspace:
    """This process's workspace: each prefork child opens its own database connections."""
    global _ws
    if _config is None:
        raise WaikanError("the queue app was not configured: call make_app(config) first")
    if _ws is None or _ws[0] != os.getpid():
        _ws = (os.getpid(), Workspace(_config))
    return _ws[1]


def broker_url(config: Config) -> str:
    url = str(config["queue.url"])
    if not url:
        raise ConfigError(
            "queue.url is not set: the broker URL, e.g. WAIKAN_QUEUE_URL=redis://127.0.0.1:6379/0"
        )
    if not url.startswith(("redis://", "rediss://")):
        raise ConfigError(f"invalid value for queue.url: {safe_url(url)} (a redis:// URL)")
    return url


def safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path}"
    except ValueError:
        return "(invalid URL)"


def broker_check(config: Config, timeout: float = 3.0) -> None:
    """Fail with one line when the broker does not answer (no endless retry at start)."""
    import redis

    url = broker_url(config)
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        client.ping()
        client.close()
    except (redis.RedisError, OSError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise WaikanError(f"cannot reach the broker {safe_url(url)}: {first}") from None


def store_check(config: Config, ws: Workspace | None = None) -> None:
    """Open (and migrate) the store now, so an unreachable database fails at start.

    ``ws``: the caller's workspace, whose store is then opened once, not twice.
    """
    checked = ws or Workspace(config)
    try:
        if checked.store.engine.dialect.name != "postgresql":
            raise ConfigError(
                "the distributed runner needs a PostgreSQL store: set store.url "
                "(e.g. WAIKAN_STORE_URL=postgresql+psycopg://user@host/db)"
            )
    finally:
        if ws is None:
            checked.close()


class DeadLetterConsumer(Consumer):  # type: ignore[misc]
    """Celery's consumer, but messages that cannot run are kept as dead letters."""

    def _dead(self, kind: str, task: str | None, body: object, exc: object) -> None:
        from waikan.queue.dead import record_dead_letter

        try:
            record_dead_letter(workspace().store, kind, task, body, f"{exc}")
        except (WaikanError, SQLAlchemyError) as err:
            log.error("cannot record a dead letter (%s): %s", kind, err)

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        self._dead("undecodable", None, _raw_body(message), exc)
        message.ack()

    def on_unknown_message(self, body: Any, message: Any) -> None:
        self._dead("undecodable", None, body if body is not None else _raw_body(message), "no task")
        message.reject_log_error(log, self.connection_errors)

    def on_unknown_task(self, body: Any, message: Any, exc: Exception) -> None:
        name = (message.headers or {}).get("task")
        self._dead("unknown", name, body, f"unknown task {name!r}")
        message.reject_log_error(log, self.connection_errors)

    def on_invalid_task(self, body: Any, message: Any, exc: Exception) -> None:
        self._dead("invalid", (message.headers or {}).get("task"), body, exc)
        message.reject_log_error(log, self.connection_errors)


def _raw_body(message: Any) -> object:
    if message.content_type == UNDECODABLE:
        try:
            return base64.b64decode(message.body)
        except (ValueError, TypeError):
            pass
    return message.body


def _tolerant_loads(real: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Kombu's Redis transport parses each queue item as JSON and a bad one kills the
    worker: wrap it so garbage becomes a message the consumer dead-letters."""

    def loads(text: Any) -> Any:
        try:
            return real(text)
        except (ValueError, TypeError) as exc:
            raw = text.encode("utf-8", "replace") if isinstance(text, str) else bytes(text)
            log.error("undecodable queue item: %s", exc)
            return {
                "body": base64.b64encode(raw).decode("ascii"),
                "content-encoding": "binary",
                "content-type": UNDECODABLE,
                "headers": {},
                "properties": {
                    "body_encoding": "base64",
                    "delivery_tag": str(uuid.uuid4()),
                    "delivery_info": {"exchange": QUEUE, "routing_key": QUEUE},
                    "delivery_mode": 2,
                    "priority": 0,
                },
            }

    loads.__wrapped__ = real  # type: ignore[attr-defined]
    return loads


def install_tolerant_transport() -> None:
    import kombu.transport.redis as redis_transport

    real = getattr(redis_transport, "loads")  # noqa: B009 - kombu does not export it
    if not hasattr(real, "__wrapped__"):
        setattr(redis_transport, "loads", _tolerant_loads(real))  # noqa: B010


def requeue_at_the_front() -> None:
    """A task whose pool process died goes back to the FRONT of the queue, as a dead
    worker's tasks restored after ``visibility_timeout`` do.

    Kombu's Redis transport puts a rejected message back at the far end (its
    ``leftmost``: the queue is LPUSHed and BRPOPed), so with acks_late and
    task_reject_on_worker_lost a killed pool child's task waited behind the whole
    backlog: about 75 s behind 300 summaries on 4 processes, past the 60 s promise.
    """
    from kombu.transport.redis import QoS

    if getattr(QoS.reject, "_waikan", False):
        return

    def reject(self: Any, delivery_tag: Any, requeue: bool = False) -> None:
        if requeue:
            self.restore_by_tag(delivery_tag, leftmost=False)  # the end BRPOP takes next
        else:
            self._remove_from_indices(delivery_tag).execute()
        super(QoS, self).ack(delivery_tag)

    reject._waikan = True  # type: ignore[attr-defined]
    QoS.reject = reject  # type: ignore[method-assign]


def _broker_errors() -> tuple[type[Exception], ...]:
    import kombu.exceptions
    import redis

    return (redis.RedisError, kombu.exceptions.OperationalError)


_BROKER_AWAY = _broker_errors()


class InvalidArguments(WaikanError):
    pass


def _ids(name: str, args: tuple[Any, ...], kwargs: dict[str, Any], counts: range) -> list[int]:
    if (
        kwargs
        or len(args) not in counts
        or not all(isinstance(a, int) and not isinstance(a, bool) and a > 0 for a in args)
    ):
        many = f"{counts.start} to {counts.stop - 1}" if len(counts) > 1 else f"{counts.start}"
        raise InvalidArguments(
            f"{name} takes {many} positive integer id(s), got args={json.dumps(args)[:200]} "
            f"kwargs={json.dumps(kwargs)[:200]}"
        )
    return list(args)


def _wrap(name: str, fn: Callable[..., object], counts: range) -> Callable[..., object]:
    def run(self: Task, *args: Any, **kwargs: Any) -> object:
        try:
            ids = _ids(name, args, kwargs, counts)
        except InvalidArguments as exc:
            from waikan.queue.dead import record_dead_letter

            record_dead_letter(
                workspace().store, "invalid", name, {"args": args, "kwargs": kwargs}, str(exc)
            )
            return "invalid"
        retries = int(getattr(self.request, "retries", 0) or 0)
        deaths = _Deaths(self.request)
        if deaths.too_many():
            error = (
                f"its worker process died {deaths.count} times in a row running it "
                "(killed, out of memory?): not run again"
            )
            from waikan.queue.dead import record_dead_letter

            record_dead_letter(
                workspace().store, "poison", name, {"args": args, "kwargs": kwargs}, error
            )
            _crashed(name, ids, error)
            deaths.clear()
            return "poison"
        try:
            result = fn(workspace(), *ids)
        except StorageError as exc:  # a full or read-only store: no retry helps; the run
            _crashed(name, ids, _error_line(exc), retries, stops=True)  # stops, as inline
            raise
        except (OperationalError, StoreError) as exc:
            # The database went away (a restart): the work is idempotent, try again
            # soon; counted when it ends (a count now would meet the outage).
            global _ws
            if _ws is not None:
                _ws[1].close()
                _ws = None
            if retries >= RETRIES:  # given up: Celery raises the error itself
                _crashed(name, ids, _error_line(exc), retries)
            raise self.retry(exc=exc, countdown=1, max_retries=RETRIES) from None
        except Exception as exc:  # a bug or an error nobody foresaw: Celery logs it once
            _crashed(name, ids, _error_line(exc), retries)
            raise
        finally:
            deaths.clear()  # this delivery ended, whatever its result: its process lives
        failed = getattr(result, "error", None)  # tasks.Failed
        outcome = "failed" if failed is not None else _outcome(name, result)
        _record(name, outcome, ids, failed, retries=retries)
        return result

    run.__name__ = name.replace(".", "_")
    return run


MAX_DEATHS = 5  # deliveries in a row whose process died before the task ended


class _Deaths:
    """How many deliveries of one message in a row ended with their process dead.

    A message that kills its pool process (out of memory on one page, say) comes back
    at once (acks_late, task_reject_on_worker_lost) and would kill one process after
    another forever. Only a redelivered message is counted (Redis, one INCR; nothing
    for the first delivery), and a delivery that ends, whatever its result, clears
    the count: a slow task's copies, which end as "busy", never add up.
    """

    def __init__(self, request: Any) -> None:
        info = getattr(request, "delivery_info", None) or {}
        self.key = f"waikan:deaths:{getattr(request, 'id', None)}"
        self.counting = bool(info.get("redelivered")) and _config is not None
        self.count = 0

    def _client(self) -> Any:
        import redis

        assert _config is not None
        return redis.Redis.from_url(str(_config["queue.url"]), socket_timeout=5)

    def too_many(self) -> bool:
        if not self.counting:
            return False
        try:
            client = self._client()
            try:
                self.count, _ = client.pipeline().incr(self.key).expire(self.key, 86400).execute()
            finally:
                client.close()
        except _BROKER_AWAY:  # the broker away: run it (the count is a guard, not the work)
            return False
        return int(self.count) > MAX_DEATHS

    def clear(self) -> None:
        if not self.counting:
            return
        with contextlib.suppress(*_BROKER_AWAY):
            client = self._client()
            try:
                client.delete(self.key)
            finally:
                client.close()


RESTORE_LOCK_EXPIRE = 10  # seconds; a restore of a few messages takes milliseconds
RETRIES = 30  # tries, one a second, while the database or the broker is away

# What a task that found nothing to do returns: another worker's claim, a row already
# done or gone, a source made unusable since, an editor's change kept over an answer.
NOOPS = frozenset({"busy", "done", "gone", "broken", "kept"})


def _outcome(name: str, result: object) -> str:
    """ "failed" for a result whose work failed as foreseen (:class:`~waikan.queue.tasks.
    Partial`: the reason is on the row) or a run's stop; "noop" for nothing to do,
    including a summarize copy's plain "failed" (its article failed earlier in the run
    and was counted then); else "ok"."""
    from waikan.queue.tasks import Partial

    if isinstance(result, Partial) or result == "stopped":
        return "failed"
    if name == "waikan.summarize" and result == "failed":
        return "noop"
    return "noop" if isinstance(result, str) and result in NOOPS else "ok"


def secret_values(config: Config) -> list[str]:
    """What no stored error line nor worker log line may show: the secret settings, the
    store's and broker's URL passwords, each publisher's secret from the environment
    (longest first, so one inside another is blanked whole)."""
    from urllib.parse import unquote, urlsplit

    from waikan.config import SETTINGS
    from waikan.plugins import registry

    found = {str(config[s.name]) for s in SETTINGS if s.secret and config[s.name]}
    for key in ("store.url", "queue.url"):
        try:
            password = urlsplit(str(config[key] or "")).password
        except ValueError:
            password = None
        if password:
            found |= {password, unquote(password)}
    for factory in registry().publishers.values():
        if factory.secret_env and os.environ.get(factory.secret_env):
            found.add(os.environ[factory.secret_env])
    # As Celery's failure line (repr) and JSON would escape them, too.
    found |= {repr(v)[1:-1] for v in found} | {json.dumps(v)[1:-1] for v in found}
    return sorted((v for v in found if len(v) >= 4), key=len, reverse=True)


def blank(text: str, secrets: list[str]) -> str:
    for value in secrets:
        text = text.replace(value, "***")
    return text


class RedactSecrets(logging.Filter):
    """Blanks the workspace's secrets in every worker log line, tracebacks included: an
    error nobody foresaw may carry one, and Celery logs it whole."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
            clean = blank(message, self.secrets)
            if clean != message:
                record.msg, record.args = clean, ()
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = blank(record.exc_text, self.secrets)
        except Exception:  # a malformed log call: the handler reports it, as without us
            pass
        return True


def redact_worker_logs(config: Config) -> None:
    """Put :class:`RedactSecrets` on the handlers Celery sets up for the worker."""
    from celery.signals import after_setup_logger, after_setup_task_logger

    redact = RedactSecrets(secret_values(config))

    def install(logger: logging.Logger | None = None, **_kw: object) -> None:
        # billiard's own logger ("multiprocessing") does not propagate: its handlers too.
        loggers = [logging.getLogger(), logging.getLogger("multiprocessing"), logger]
        for handler in [h for lg in loggers if lg is not None for h in lg.handlers]:
            if redact not in handler.filters:
                handler.addFilter(redact)

    after_setup_logger.connect(install, weak=False)
    after_setup_task_logger.connect(install, weak=False)
    install()


def _error_line(exc: BaseException) -> str:
    """``Type: first line`` of an unexpected error, kept in the store and shown by ``waikan
    status``: URL secrets and the workspace's secrets blanked."""
    from waikan.store import safe_error

    line = safe_error(exc, "")
    if _config is not None:
        for key in ("store.url", "queue.url"):
            line = safe_error(WaikanError(line), str(_config[key] or ""))
        line = blank(line, secret_values(_config))
    name = type(exc).__name__
    return line if line == name else f"{name}: {line}"


def _crashed(
    name: str, ids: list[int], line: str, retries: int = 0, *, stops: bool = False
) -> None:
    """A task that ended without its work done: counted failed with its line, for its run
    (which reports it once, see coordinator.crashed); a summary's line goes where its
    run reads summaries' failures (``stops``: the run's later summaries make no call)."""
    _record(name, "failed", ids, line, retries=retries)
    if name == "waikan.summarize" and len(ids) > 1:
        from waikan.queue.tasks import _record_failure

        _record_failure(workspace(), ids[1], ids[0], f"article {ids[0]}: {line}", stops=stops)


def _record(
    name: str, outcome: str, ids: list[int], error: str | None = None, *, retries: int = 0
) -> None:
    """Count the task's outcome (and keep a failure's line, for the run that sent it: the
    second id of poll, fetch and summarize, the only one of dedupe and publish); a store
    that refuses it costs one log line, never the task (the count is for people)."""
    from waikan.queue.outcomes import record_outcome

    run = ids[1] if len(ids) > 1 else ids[0] if name in SERIAL else None
    try:
        record_outcome(workspace().store, name, outcome, ids[0], error, run=run, retries=retries)
    except Exception as exc:  # any failure of this optional write: logged, the task goes on
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        log.warning("%s %s: cannot record its outcome (%s): %s", name, ids[0], outcome, first)


def _tasks() -> dict[str, tuple[Callable[..., object], range]]:
    """Each task and how many ids it takes (poll, fetch, summarize: the row, then the run's
    token, which messages queued before the token was added lack)."""
    from waikan.queue import tasks

    one, run = range(1, 2), range(1, 3)
    return {
        "waikan.poll": (tasks.poll, run),
        "waikan.fetch": (tasks.fetch, run),
        "waikan.dedupe": (tasks.dedupe, one),
        "waikan.summarize": (tasks.summarize, run),
        "waikan.publish": (tasks.publish, one),
    }


# Tasks of a whole stage, one at a time: their one id is the run's token for the stage.
SERIAL = frozenset({"waikan.dedupe", "waikan.publish"})
TASKS = ("waikan.poll", "waikan.fetch", "waikan.dedupe", "waikan.summarize", "waikan.publish")


def make_app(config: Config) -> Celery:
    """The Celery app of one workspace's settings (broker ``queue.url``)."""
    global _config, _ws
    _config, _ws = config, None
    url = broker_url(config)
    vt = int(config["queue.visibility_timeout"])
    app = Celery("waikan", broker=url, set_as_current=False)
    app.conf.update(
        task_default_queue=QUEUE,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        worker_proc_alive_timeout=120,  # a pool process warms up before it says it is up
        worker_consumer="waikan.queue.app:DeadLetterConsumer",
        worker_hijack_root_logger=False,
        worker_send_task_events=False,  # nothing consumes them: 3 publishes a task saved
        broker_connection_retry_on_startup=False,
        broker_connection_retry=True,
        broker_connection_max_retries=30,
        broker_transport_options={
            "visibility_timeout": vt,
            "unacked_restore_interval": 1,
            "unacked_restore_throttle": 1,
            # The restore runs under a Redis lock; a worker killed holding it kept every
            # other worker from restoring for Kombu's default 300 s.
            "unacked_mutex_expire": RESTORE_LOCK_EXPIRE,
        },
    )
    for name, (fn, counts) in _tasks().items():
        app.task(name=name, bind=True, typing=False)(_wrap(name, fn, counts))
    worker_process_init.connect(_init_pool_process, weak=False)
    return app


WARM_PAGE = (
    "<html><head><title>Warm-up</title></head><body><article><h1>Warm-up</h1>"
    + "<p>This page starts the extraction worker before the first task needs it.</p>" * 8
    + "</article></body></html>"
)


def _init_pool_process(**_kwargs: object) -> None:
    """Each pool process, before its first task: allow children, then pay one-time costs.

    Warmed here (~2-3 s of CPU per process): the extraction fork server and its worker
    with their lazily loaded models, the tokenizer and the model client. Paid by the
    first fetch and summarize tasks instead, four fresh workers spent that CPU inside a
    run, on the same cores as the run's work. A failure here only logs: the task would
    meet (and report) the same error.
    """
    _allow_children()
    try:
        from waikan.extract.limited import Limits
        from waikan.queue.tasks import _process_backend
        from waikan.summarize.tokens import warm_up

        ws = workspace()
        Limits.from_config(ws.config).extract(WARM_PAGE, url="https://warm-up.invalid/")
        warm_up()
        _process_backend(ws)
    except Exception as exc:  # optional work: the first task meets (and reports) it again
        log.warning("pool process warm-up: %s", str(exc).splitlines()[0] if str(exc) else exc)
        return
    log.info("pool process %s warmed up", os.getpid())


def _allow_children() -> None:
    """Let a pool process start the extraction worker (:mod:`waikan.extract.limited`).

    Celery's pool processes are billiard processes, marked daemonic, and
    multiprocessing refuses children to those; the flag only means "terminate
    with the parent", and the extraction worker exits by itself when its pipe
    closes. Their authkey is billiard's type, which the forkserver cannot
    pickle: the same key as multiprocessing's type.
    """
    import multiprocessing.process

    key_type = getattr(multiprocessing.process, "AuthenticationString")  # noqa: B009 - private
    config = multiprocessing.current_process()._config  # type: ignore[attr-defined]
    config["daemon"] = False
    config["authkey"] = key_type(bytes(config["authkey"]))

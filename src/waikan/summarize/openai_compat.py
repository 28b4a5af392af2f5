"""Any OpenAI-compatible chat-completions endpoint (DeepSeek, Qwen, Ollama, vLLM…).

Uses the official ``openai`` SDK for the wire format, with its own retries
turned off: waikan retries itself (backoff with jitter, ``Retry-After``
honoured, 429/5xx/timeouts only), waits for the RPM/TPM limiter before each
request, and walks a fallback chain of models when one stays unavailable.
Errors become one-line :class:`SummarizeError` messages with the key removed,
since some servers echo request headers into their error bodies.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from waikan.config import Config
from waikan.errors import ConfigError, SummarizeError
from waikan.models import Summary
from waikan.plugins import Registry
from waikan.summarize.base import SummaryRequest, fullwidth_punctuation, split_paragraphs
from waikan.summarize.limits import RateLimiter, backoff_delay
from waikan.summarize.prompt import Prompt, load_prompt
from waikan.summarize.tokens import count_messages

if TYPE_CHECKING:
    import openai

# The SDK's HTTP client logs request lines; nothing of a request belongs in our logs.
for _name in ("openai", "httpx", "httpx2", "httpcore"):
    logging.getLogger(_name).setLevel(logging.WARNING)

_TITLE = re.compile(r"^\s*(?:标题|標題)\s*[:：]\s*(.+)$")
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}
_RETRYABLE = {408, 409, 429, 500, 502, 503, 504}


class EndpointDown(SummarizeError):
    """The endpoint cannot be reached or keeps timing out: later articles would fail too."""


class KeyRejected(SummarizeError):
    """401/403: no later request can succeed with this key."""


class OpenAICompatBackend:
    name = "openai"

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str,
        prompt: Prompt,
        temperature: float = 0.3,
        max_tokens: int = 1200,
        timeout: float = 120.0,
        max_retries: int = 2,
        fallback_models: Sequence[str] = (),
        limiter: RateLimiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.models = tuple(dict.fromkeys([model, *fallback_models]))
        self.prompt = prompt
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.max_retries = max_retries
        self.limiter = limiter or RateLimiter()
        self._sleep = sleep
        self._secret = api_key
        # Imported here, not at the top: the SDK costs ~0.5 s, which every ``waikan``
        # command paid (through the plugin registry) though few ever call a model.
        import openai

        self._client = openai.OpenAI(
            base_url=self.base_url,
            api_key=api_key or "not-needed",
            timeout=timeout,
            max_retries=0,
        )

    def messages(
        self, request: SummaryRequest, prompt: Prompt | None = None
    ) -> list[dict[str, str]]:
        return (prompt or self.prompt).messages(
            title=request.title,
            source=request.source,
            published=request.published,
            article="\n\n".join(request.paragraphs),
            glossary=request.glossary,
            feedback=request.feedback,
        )

    def summarize(self, request: SummaryRequest) -> Summary:
        content, model, tokens_in, tokens_out = self.complete(self.messages(request))
        title_zh, paragraphs = parse_answer(content)
        if not paragraphs:
            raise SummarizeError(f"LLM endpoint {self.base_url} returned an empty answer")
        return Summary(
            paragraphs=tuple(paragraphs),
            backend=self.name,
            model=model,
            prompt_version=self.prompt.version,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            title_zh=title_zh,
        )

    def complete(self, messages: list[dict[str, str]]) -> tuple[str, str, int, int]:
        """(answer, model that answered, prompt tokens, completion tokens), falling back
        along the model chain when a model is unknown or stays unavailable."""
        estimate = count_messages(messages) + self.max_tokens
        last: SummarizeError | None = None
        for model in self.models:
            try:
                return self._complete_with(model, messages, estimate)
            except (EndpointDown, KeyRejected):
                raise
            except SummarizeError as exc:
                last = exc
        assert last is not None
        raise last

    def _complete_with(
        self, model: str, messages: list[dict[str, str]], estimate: int
    ) -> tuple[str, str, int, int]:
        import openai  # loaded by __init__ already
        from openai.types.chat import ChatCompletion

        for attempt in range(self.max_retries + 1):
            self.limiter.acquire(estimate)
            retry_after: float | None = None
            try:
                # The SDK's own request path, errors and parsing, without ``create``'s
                # walk of the messages through its request types (~1 ms of CPU a call;
                # they are plain strings already).
                reply = self._client.post(
                    "/chat/completions",
                    cast_to=ChatCompletion,
                    body={
                        "model": model,
                        "messages": messages,
                        "temperature": self.temperature,
                        "max_tokens": self.max_tokens,
                    },
                )
            except openai.APIStatusError as exc:
                status = exc.status_code
                detail = f"HTTP {status}: {self._clean(_message(exc))}"
                if status in (401, 403):
                    raise KeyRejected(
                        f"LLM endpoint {self.base_url} rejected the API key ({detail})"
                    ) from None
                if status not in _RETRYABLE or attempt == self.max_retries:
                    raise SummarizeError(
                        f"LLM endpoint {self.base_url} answered {detail} (model {model})"
                    ) from None
                retry_after = _retry_after(exc)
            except openai.APITimeoutError:
                if attempt == self.max_retries:
                    raise EndpointDown(f"LLM endpoint {self.base_url} timed out") from None
            except openai.APIConnectionError:
                if attempt == self.max_retries:
                    raise EndpointDown(f"LLM endpoint {self.base_url} is unreachable") from None
            except Exception as exc:  # a 200 with a body that is not a chat completion
                raise SummarizeError(
                    f"LLM endpoint {self.base_url} sent a malformed answer: "
                    f"{self._clean(str(exc)) or type(exc).__name__}"
                ) from None
            else:
                return self._read(reply, model)
            self._sleep(backoff_delay(attempt, retry_after))
        raise SummarizeError("unreachable")  # pragma: no cover - the loop returns or raises

    def _read(self, reply: object, model: str) -> tuple[str, str, int, int]:
        try:
            choices = reply.choices  # type: ignore[attr-defined]
            content = (choices[0].message.content or "") if choices else ""
            usage = reply.usage  # type: ignore[attr-defined]
            answered = reply.model or model  # type: ignore[attr-defined]
            if not isinstance(content, str) or not isinstance(answered, str):
                raise TypeError("not a chat completion")
            tokens_in = int(usage.prompt_tokens) if usage else 0
            tokens_out = int(usage.completion_tokens) if usage else 0
        except (AttributeError, IndexError, TypeError, ValueError) as exc:
            raise SummarizeError(
                f"LLM endpoint {self.base_url} sent a malformed answer ({exc})"
            ) from None
        return content, answered, tokens_in, tokens_out

    def _clean(self, text: str) -> str:
        text = " ".join(text.split())[:300]
        return text.replace(self._secret, "***") if self._secret else text


def _retry_after(exc: openai.APIStatusError) -> float | None:
    try:
        value = exc.response.headers.get("retry-after")
        return float(value) if value is not None else None
    except (AttributeError, ValueError):
        return None


def _message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and "message" in err:
            return str(err["message"])
    return exc.message


def parse_answer(content: str) -> tuple[str | None, list[str]]:
    """Split a model answer into an optional ``标题：`` headline and the paragraphs."""
    paragraphs = split_paragraphs(content)
    title = None
    if paragraphs and (m := _TITLE.match(paragraphs[0])):
        title = m.group(1).strip()
        paragraphs = paragraphs[1:]
    return (
        fullwidth_punctuation(title) if title else None,
        [fullwidth_punctuation(p) for p in paragraphs],
    )


def from_config(config: Config) -> OpenAICompatBackend:
    base_url = str(config["llm.base_url"])
    model = str(config["llm.model"])
    key = str(config["llm.api_key"])
    if not base_url:
        raise ConfigError("llm.base_url is not set (WAIKAN_LLM_BASE_URL, ending in /v1)")
    if not model:
        raise ConfigError("llm.model is not set (WAIKAN_LLM_MODEL)")
    if not key and urlsplit(base_url).hostname not in _LOCAL_HOSTS:
        raise ConfigError("llm.api_key is not set: export WAIKAN_LLM_API_KEY")
    prompt_file = str(config["summarize.prompt_file"])
    prompt = load_prompt(config.home / prompt_file if prompt_file else None)
    fallbacks = [m.strip() for m in str(config["llm.fallback_models"]).split(",") if m.strip()]
    return OpenAICompatBackend(
        base_url=base_url,
        model=model,
        api_key=key,
        prompt=prompt,
        temperature=float(config["llm.temperature"]),
        max_tokens=int(config["llm.max_tokens"]),
        timeout=float(config["llm.timeout"]),
        max_retries=int(config["llm.max_retries"]),
        fallback_models=fallbacks,
        limiter=RateLimiter(int(config["llm.rpm"]), int(config["llm.tpm"])),
    )


def register(registry: Registry) -> None:
    registry.add_backend("openai", from_config)

"""Any OpenAI-compatible chat-completions endpoint (DeepSeek, Qwen, Ollama, vLLM…).

Uses the official ``openai`` SDK (retries with backoff, timeouts). Errors
become one-line :class:`SummarizeError` messages with the key removed, since
some servers echo request headers into their error bodies.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

import openai

from waikan.config import Config
from waikan.errors import ConfigError, SummarizeError
from waikan.models import Summary
from waikan.plugins import Registry
from waikan.summarize.base import SummaryRequest, fullwidth_punctuation, split_paragraphs
from waikan.summarize.prompt import Prompt, load_prompt

# The SDK's HTTP client logs request lines; nothing of a request belongs in our logs.
for _name in ("openai", "httpx", "httpx2", "httpcore"):
    logging.getLogger(_name).setLevel(logging.WARNING)

_TITLE = re.compile(r"^\s*(?:标题|標題)\s*[:：]\s*(.+)$")
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


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
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.prompt = prompt
        self.temperature = temperature
        self.max_tokens = max_tokens
        self._secret = api_key
        self._client = openai.OpenAI(
            base_url=self.base_url,
            api_key=api_key or "not-needed",
            timeout=timeout,
            max_retries=max_retries,
        )

    def summarize(self, request: SummaryRequest) -> Summary:
        messages = self.prompt.messages(
            title=request.title,
            source=request.source,
            published=request.published,
            article="\n\n".join(request.paragraphs),
        )
        try:
            reply = self._client.chat.completions.create(
                model=self.model,
                messages=messages,  # type: ignore[arg-type]
                temperature=self.temperature,
                max_tokens=self.max_tokens,
            )
        except openai.APIStatusError as exc:
            raise SummarizeError(
                f"LLM endpoint {self.base_url} answered HTTP {exc.status_code}: "
                f"{self._clean(_message(exc))}"
            ) from None
        except openai.APITimeoutError:
            raise SummarizeError(f"LLM endpoint {self.base_url} timed out") from None
        except openai.APIConnectionError:
            raise SummarizeError(f"LLM endpoint {self.base_url} is unreachable") from None
        except openai.OpenAIError as exc:
            raise SummarizeError(f"LLM call failed: {self._clean(str(exc))}") from None
        content = (reply.choices[0].message.content or "") if reply.choices else ""
        title_zh, paragraphs = parse_answer(content)
        if not paragraphs:
            raise SummarizeError(f"LLM endpoint {self.base_url} returned an empty answer")
        usage = reply.usage
        return Summary(
            paragraphs=tuple(paragraphs),
            backend=self.name,
            model=reply.model or self.model,
            prompt_version=self.prompt.version,
            tokens_in=usage.prompt_tokens if usage else 0,
            tokens_out=usage.completion_tokens if usage else 0,
            title_zh=title_zh,
        )

    def _clean(self, text: str) -> str:
        text = " ".join(text.split())[:300]
        return text.replace(self._secret, "***") if self._secret else text


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
    return OpenAICompatBackend(
        base_url=base_url,
        model=model,
        api_key=key,
        prompt=prompt,
        temperature=float(config["llm.temperature"]),
        max_tokens=int(config["llm.max_tokens"]),
        timeout=float(config["llm.timeout"]),
        max_retries=int(config["llm.max_retries"]),
    )


def register(registry: Registry) -> None:
    registry.add_backend("openai", from_config)

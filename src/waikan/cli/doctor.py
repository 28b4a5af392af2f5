"""``waikan doctor``: is the setup usable? Config, store, and the LLM endpoint.

The endpoint check spends nothing when the server lists its models
(``GET /models``: reachable, key accepted, model present); only a server
without that route gets one tiny completion (``max_tokens=1``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from waikan.cli._state import State
from waikan.errors import WaikanError

if TYPE_CHECKING:
    from waikan.summarize.openai_compat import OpenAICompatBackend


def check_endpoint(backend: OpenAICompatBackend) -> list[tuple[bool, str]]:
    import openai  # ~0.5 s: only this command's endpoint check needs the client

    client = openai.OpenAI(
        base_url=backend.base_url,
        api_key=backend._secret or "not-needed",
        timeout=min(
            15.0, backend._client.timeout if isinstance(backend._client.timeout, float) else 15.0
        ),
        max_retries=0,
    )
    out: list[tuple[bool, str]] = []
    try:
        listed = [m.id for m in client.models.list()]
    except openai.AuthenticationError:
        return [(True, f"endpoint {backend.base_url} reachable"), (False, "API key rejected")]
    except openai.PermissionDeniedError:
        return [(True, f"endpoint {backend.base_url} reachable"), (False, "API key rejected")]
    except openai.APIConnectionError:
        return [(False, f"endpoint {backend.base_url} unreachable")]
    except openai.APIStatusError:
        listed = []  # no /models route: fall back to one tiny request
    out.append((True, f"endpoint {backend.base_url} reachable"))
    for model in backend.models:
        if listed:
            ok = model in listed
            out.append((ok, f"model {model} {'listed' if ok else 'not offered by the endpoint'}"))
            continue
        try:
            client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=1
            )
            out.append((True, f"model {model} answers (1 tiny request)"))
        except openai.AuthenticationError:
            out.append((False, "API key rejected"))
        except openai.APIError as exc:
            out.append((False, f"model {model}: {backend._clean(str(exc))}"))
    if listed:
        out.insert(1, (True, "API key accepted"))
    return out


@click.command()
@click.pass_obj
def doctor(state: State) -> None:
    """Check config, database and the LLM endpoint (reachable, key, model); exit 1 on a problem."""
    from waikan.summarize import backend_for
    from waikan.summarize.openai_compat import OpenAICompatBackend

    results: list[tuple[bool, str]] = []
    try:
        ws = state.workspace()
        results.append((True, f"config {ws.home / 'waikan.toml'}"))
        ws.store.counts()
        results.append((True, "database opens and is migrated"))
        backend = backend_for(ws.config)
        if isinstance(backend, OpenAICompatBackend):
            results.extend(check_endpoint(backend))
        else:
            results.append((True, f"summary backend {backend.name} (offline, no endpoint)"))
    except WaikanError as exc:
        results.append((False, str(exc)))
    for ok, message in results:
        click.echo(f"{'ok  ' if ok else 'FAIL'}  {message}")
    bad = [m for ok, m in results if not ok]
    if bad:
        raise WaikanError(f"doctor found {len(bad)} problem(s): {bad[0]}")


def register(group: click.Group) -> None:
    group.add_command(doctor)

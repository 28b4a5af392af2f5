"""Self-test of the fake OpenAI-compatible server used by other tests."""

from __future__ import annotations

import httpx

try:
    from tests.servers.openai_server import FakeLLM, _peer_closed
except ModuleNotFoundError:  # plain `pytest`: project root not on sys.path
    from servers.openai_server import FakeLLM, _peer_closed  # type: ignore[no-redef]

KEY = "sk-test-123"
MODEL = "deepseek-chat"


def _body(content: str = "hello", model: str = MODEL) -> dict:
    return {
        "model": model,
        "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": content}],
    }


def test_auth_required() -> None:
    with FakeLLM(api_key=KEY, model=MODEL, answer="ok") as llm:
        r = httpx.post(llm.url + "/chat/completions", json=_body())
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "invalid_api_key"
        r = httpx.post(
            llm.url + "/chat/completions", json=_body(), headers={"Authorization": "Bearer wrong"}
        )
        assert r.status_code == 401
        assert llm.requests[0]["auth_ok"] is False
        assert "authorization" not in llm.requests[1]["headers"]


def test_success() -> None:
    with FakeLLM(api_key=KEY, model=MODEL, answer="这篇报道描述了……") as llm:
        r = httpx.post(
            llm.url + "/chat/completions", json=_body(), headers={"Authorization": f"Bearer {KEY}"}
        )
        assert r.status_code == 200
        data = r.json()
        assert data["object"] == "chat.completion"
        assert data["model"] == MODEL
        assert data["choices"][0]["message"] == {"role": "assistant", "content": "这篇报道描述了……"}
        assert data["choices"][0]["finish_reason"] == "stop"
        u = data["usage"]
        assert u["prompt_tokens"] > 0 and u["completion_tokens"] > 0
        assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"]
        assert llm.requests[0]["auth_ok"] is True
        assert llm.requests[0]["body"]["messages"][1]["content"] == "hello"
        assert llm.calls == 1
        m = httpx.get(llm.url + "/models", headers={"Authorization": f"Bearer {KEY}"})
        assert m.status_code == 200 and m.json()["data"][0]["id"] == MODEL


def test_callable_answer() -> None:
    with FakeLLM(
        api_key=KEY, model=MODEL, answer=lambda b: b["messages"][-1]["content"].upper()
    ) as llm:
        r = httpx.post(
            llm.url + "/chat/completions",
            json=_body("abc"),
            headers={"Authorization": f"Bearer {KEY}"},
        )
        assert r.json()["choices"][0]["message"]["content"] == "ABC"


def test_model_mismatch() -> None:
    with FakeLLM(api_key=KEY, model=MODEL, answer="ok") as llm:
        r = httpx.post(
            llm.url + "/chat/completions",
            json=_body(model="gpt-4o"),
            headers={"Authorization": f"Bearer {KEY}"},
        )
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "model_not_found"


def test_delimiters_enforced() -> None:
    h = {"Authorization": f"Bearer {KEY}"}
    with FakeLLM(
        api_key=KEY,
        model=MODEL,
        answer="ok",
        require_delimiters=("<article>", "</article>"),
        require_text="Wang Yi",
    ) as llm:
        url = llm.url + "/chat/completions"
        assert httpx.post(url, json=_body("Wang Yi met Blinken"), headers=h).status_code == 400
        assert (
            httpx.post(url, json=_body("Wang Yi <article>Blinken</article>"), headers=h).status_code
            == 400
        )
        assert (
            httpx.post(url, json=_body("<article>Wang Yi met Blinken"), headers=h).status_code
            == 400
        )
        ok = httpx.post(
            url, json=_body("Summarize:\n<article>\nWang Yi met Blinken\n</article>"), headers=h
        )
        assert ok.status_code == 200


def test_forced_status_and_delay() -> None:
    h = {"Authorization": f"Bearer {KEY}"}
    with FakeLLM(api_key=KEY, model=MODEL, answer="ok", status=503, retry_after=1) as llm:
        r = httpx.post(llm.url + "/chat/completions", json=_body(), headers=h)
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
    with FakeLLM(api_key=KEY, model=MODEL, answer="ok", delay=0.5) as llm:
        try:
            httpx.post(llm.url + "/chat/completions", json=_body(), headers=h, timeout=0.1)
        except httpx.TimeoutException:
            pass
        else:
            raise AssertionError("expected a timeout")


def test_timeline_tells_answered_calls_from_cut_ones() -> None:
    """A client that hangs up before the answer (as a killed process does) leaves a call
    marked cut and never answered; an answered call has its end time and client port.

    The hung-up call's answer waits until the test has closed its socket (not a race
    with the delay); the 10 s bound only keeps a broken server from hanging the test."""
    import json
    import socket
    import threading
    import time

    closed = threading.Event()

    def answer(body: dict) -> str:
        if body["messages"][-1]["content"] == "hung up":
            closed.wait(timeout=10)
        return "ok"

    with FakeLLM(api_key=KEY, model=MODEL, answer=answer, delay=0.3) as llm:
        with httpx.Client() as client:
            r = client.post(
                llm.url + "/chat/completions",
                json=_body("answered"),
                headers={"Authorization": f"Bearer {KEY}"},
            )
        assert r.status_code == 200
        raw = json.dumps(_body("hung up")).encode()
        with socket.create_connection(("127.0.0.1", llm.port)) as sock:
            port = sock.getsockname()[1]
            sock.sendall(
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                + f"Authorization: Bearer {KEY}\r\nContent-Length: {len(raw)}\r\n\r\n".encode()
                + raw
            )
            deadline = time.monotonic() + 10
            while len(llm.timeline) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
        closed.set()
        deadline = time.monotonic() + 10
        while llm.pending() and time.monotonic() < deadline:
            time.sleep(0.01)
        answered, cut = llm.timeline
        assert answered.prompt == "sys\nanswered" and not answered.cut
        assert answered.end is not None and answered.end >= answered.start + 0.3
        assert cut.prompt == "sys\nhung up" and cut.port == port
        assert cut.cut and cut.end is None
        assert llm.pending() == []


def test_peer_closed_is_eof_not_data() -> None:
    """Asked before the answer is written (a first write into a closed socket may pass)."""
    import socket

    a, b = socket.socketpair()
    with a, b:
        assert not _peer_closed(a)  # waiting client: nothing to read
        b.sendall(b"x")
        assert not _peer_closed(a)  # data pending is not a hang-up
        assert a.recv(1) == b"x"
        b.close()
        assert _peer_closed(a)


def test_peer_closed_on_a_descriptor_past_select_limit() -> None:
    """A long pytest process may hand the server fds >= 1024, where select() raises."""
    import fcntl
    import resource
    import socket

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2048:  # room for an fd past select()'s FD_SETSIZE
        resource.setrlimit(resource.RLIMIT_NOFILE, (2048, hard))
    a, b = socket.socketpair()
    with a, b:
        high = socket.socket(fileno=fcntl.fcntl(a.fileno(), fcntl.F_DUPFD_CLOEXEC, 1024))
        with high:
            assert high.fileno() >= 1024
            assert not _peer_closed(high)  # waiting client
            b.sendall(b"x")
            assert not _peer_closed(high)  # data pending
            assert high.recv(1) == b"x"
            b.close()
            assert _peer_closed(high)  # EOF

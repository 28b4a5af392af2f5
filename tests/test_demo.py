"""``waikan demo`` runs the whole path offline on the bundled samples."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from tests.conftest import ROOT, run_inproc

from waikan.summarize.extractive import EXCERPT_LABEL

SAMPLES = sorted((ROOT / "src" / "waikan" / "demo" / "samples").glob("*.html"))


def test_demo_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_connect = socket.socket.connect

    def no_network(sock: socket.socket, address: object) -> None:
        # Local Unix sockets (the extraction fork server) are not the network.
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return real_connect(sock, address)  # type: ignore[arg-type]
        raise AssertionError("the demo must not touch the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    result = run_inproc(["demo", "--keep", str(tmp_path / "demo")])
    assert result.code == 0, result.err
    assert len(SAMPLES) >= 4
    assert result.out.count(EXCERPT_LABEL) == len(SAMPLES)
    assert str(tmp_path / "demo") in result.out
    listed = run_inproc(["--home", str(tmp_path / "demo"), "list", "--json"])
    rows = [json.loads(line) for line in listed.out.splitlines()]
    assert len(rows) == len(SAMPLES)
    assert {r["status"] for r in rows} == {"summarized"}
    assert len({r["source"] for r in rows}) == len(SAMPLES)  # four different publishers

"""The ``site`` destination builds the site and runs the deploy command."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.conftest import assert_one_line_error
from tests.publish.conftest import add_post, write_config


def test_site_destination_builds_and_deploys(waikan, home: Path, open_ws, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "public"
    marker = tmp_path / "deployed.txt"
    script = "import sys; open(sys.argv[2], 'w').write(sys.argv[1])"
    deploy = f'{sys.executable} -c "{script}" {{site}} {marker}'
    write_config(home, {"web": {"type": "site", "path": str(out), "deploy": deploy}})
    ws = open_ws()
    ids = [add_post(ws, n) for n in (1, 2)]
    result = waikan("publish")
    assert result.code == 0, result.err
    assert (out / "index.html").exists()
    for i in ids:
        assert (out / "posts" / f"{i}.html").exists()
        assert ws.store.article(i).status == "published"  # type: ignore[union-attr]
    assert marker.read_text() == str(out)


def test_failing_deploy_is_reported_and_retried(
    waikan, home: Path, open_ws, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    write_config(
        home,
        {
            "web": {
                "type": "site",
                "path": str(tmp_path / "o"),
                "deploy": f"{sys.executable} -c 'raise SystemExit(4)'",
            }
        },
    )
    ws = open_ws()
    post = add_post(ws, 1)
    result = waikan("publish")
    assert_one_line_error(result)
    assert "deploy command exited 4" in result.err
    assert ws.store.article(post).status == "approved"  # type: ignore[union-attr]


def test_nul_in_a_deploy_error_is_kept_escaped(waikan, home: Path, open_ws, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A remote end's words go into the outbox: PostgreSQL text cannot hold NUL (a crash)."""
    script = 'import sys; sys.stderr.write("bad" + chr(0) + "news"); raise SystemExit(4)'
    deploy = f"{sys.executable} -c '{script}'"
    write_config(home, {"web": {"type": "site", "path": str(tmp_path / "o"), "deploy": deploy}})
    ws = open_ws()
    post = add_post(ws, 1)
    result = waikan("publish")
    assert_one_line_error(result)
    assert "deploy command exited 4: bad" in result.err, result.err
    errors = [r["error"] for r in ws.store.dump() if r["table"] == "outbox"]
    assert errors == ["deploy command exited 4: bad\\x00news"]
    assert ws.store.article(post).status == "approved"  # type: ignore[union-attr]


def test_bad_deploy_command_is_a_config_error(waikan, home: Path) -> None:  # type: ignore[no-untyped-def]
    write_config(home, {"web": {"type": "site", "deploy": "rsync 'unterminated"}})
    result = waikan("publish")
    assert_one_line_error(result)
    assert "publish.web.deploy" in result.err

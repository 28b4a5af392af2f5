"""Secrets suite (tests/security/secrets_suite.py): used, refused, and found nowhere."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from tests.security import secrets_suite as suite

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


def test_secrets_suite_all_clean(tmp_path: Path) -> None:
    report = suite.run(tmp_path)
    print("\n" + suite.summary(report))
    assert report.used == dict.fromkeys(suite.SECRETS, True), report.used
    assert report.failed == dict.fromkeys(suite.SECRETS, True), report.failed
    names = {p.name for p in report.places}
    assert {"log (DEBUG)", "store.dump()", "doctor stdout", "doctor (401) stderr"} <= names
    assert any(n.startswith("file site/") for n in names)
    assert report.scan() == [], suite.summary(report)


@pytest.mark.parametrize("form", ["raw", "url-encoded", "base64", "base64url", "basic-auth"])
def test_scanner_finds_each_form(form: str) -> None:
    """The scanner can fail: a secret planted in any form is found."""
    secret = suite.SECRETS["SMTP password"]
    planted = suite.forms(secret)[form]
    report = suite.Report(places=[suite.Place("log", f"DEBUG x={planted} y")])
    assert not report.clean()["SMTP password"]


def test_scanner_finds_base64_inside_a_longer_string() -> None:
    secret = suite.SECRETS["SMTP password"]
    auth_plain = base64.b64encode(f"\0digest\0{secret}".encode()).decode()
    report = suite.Report(places=[suite.Place("smtp log", f"AUTH PLAIN {auth_plain}")])
    assert not report.clean()["SMTP password"]

"""What an editor needs to see of a held summary: its guard findings."""

from __future__ import annotations

from waikan.store import Store

__all__ = ["current_findings"]


def current_findings(store: Store, article_id: int) -> list[tuple[str, str]]:
    """(kind, message) findings of the article's current summary; empty when it passed."""
    summary = store.current_summary(article_id)
    return [] if summary is None else store.findings_of(summary.id)

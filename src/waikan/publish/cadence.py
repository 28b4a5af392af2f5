"""Cadence: quiet hours and digest slots, in the destination's own time zone.

Readers of a Chinese channel live in ``Asia/Shanghai`` while the server may
run in UTC; every wall-clock rule is therefore evaluated in ``timezone`` of
the destination, never in the machine's zone.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from waikan.publish.config import Destination

__all__ = ["in_quiet_hours", "last_slot"]


def in_quiet_hours(dest: Destination, now: datetime) -> bool:
    """Whether ``now`` falls in the window; a window past midnight (23:00-07:00) wraps."""
    if dest.quiet_hours is None:
        return False
    start, end = dest.quiet_hours
    local = now.astimezone(dest.zone).time().replace(tzinfo=None)
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end


def last_slot(schedule: str, at: time, dest: Destination, now: datetime) -> datetime:
    """The latest scheduled instant at or before ``now`` (``hourly``, or ``daily`` at ``at``)."""
    local = now.astimezone(dest.zone)
    if schedule == "hourly":
        return local.replace(minute=at.minute, second=0, microsecond=0) - (
            timedelta(hours=1) if local.minute < at.minute else timedelta(0)
        )
    slot = local.replace(hour=at.hour, minute=at.minute, second=0, microsecond=0)
    return slot if slot <= local else slot - timedelta(days=1)

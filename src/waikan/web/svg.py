"""Charts drawn on the server as SVG: no chart library, no script, escaped labels."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

PALETTE = ("#2a5d8c", "#c0392b", "#27ae60", "#8e44ad", "#d35400", "#16a085", "#7f8c8d")
W, H, PAD = 640, 220, 32


def _frame(body: str, title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" role="img" '
        f'class="chart"><title>{escape(title)}</title>{body}</svg>'
    )


def stacked_bars(
    labels: Sequence[str], series: Mapping[str, Mapping[str, float]], title: str
) -> str:
    """One bar per label, stacked by series (e.g. articles per day per source)."""
    names = sorted(series)[: len(PALETTE)]
    totals = [sum(series[n].get(lab, 0) for n in names) for lab in labels]
    top = max(totals, default=0) or 1
    step = (W - 2 * PAD) / max(len(labels), 1)
    parts = [f'<text x="{PAD}" y="14" font-size="11">max {top:g}</text>']
    for i, lab in enumerate(labels):
        y: float = H - PAD
        for k, name in enumerate(names):
            v = series[name].get(lab, 0)
            h = (H - 2 * PAD) * v / top
            if h > 0:
                y -= h
                parts.append(
                    f'<rect x="{PAD + i * step + 2:.1f}" y="{y:.1f}" width="{step - 4:.1f}" '
                    f'height="{h:.1f}" fill="{PALETTE[k]}"><title>{escape(name)} {escape(lab)}: '
                    f"{v:g}</title></rect>"
                )
        if i % max(1, len(labels) // 7) == 0:
            x = PAD + i * step
            parts.append(f'<text x="{x:.1f}" y="{H - 12}" font-size="10">{escape(lab[5:])}</text>')
    for k, name in enumerate(names):
        parts.append(
            f'<text x="{W - 150}" y="{16 + 13 * k}" font-size="11" fill="{PALETTE[k]}">'
            f"■ {escape(name[:24])}</text>"
        )
    return _frame("".join(parts), title)


def bars(labels: Sequence[str], values: Sequence[float], title: str) -> str:
    return stacked_bars(labels, {title: dict(zip(labels, values, strict=True))}, title)


def histogram(values: Sequence[float], title: str, buckets: Sequence[float]) -> str:
    """Counts of ``values`` under each bucket's upper bound (the last is open)."""
    counts = [0] * (len(buckets) + 1)
    for v in values:
        i = next((k for k, b in enumerate(buckets) if v <= b), len(buckets))
        counts[i] += 1
    labels = [f"≤{b:g}" for b in buckets] + [f">{buckets[-1]:g}"]
    return bars(["0000-" + lab for lab in labels], counts, title)


def gauge(used: float, limit: float, title: str) -> str:
    """A half-circle budget gauge; no limit draws an empty arc with the spend."""
    share = min(used / limit, 1.0) if limit > 0 else 0.0
    colour = "#27ae60" if share < 0.7 else "#d35400" if share < 0.9 else "#c0392b"
    import math

    cx, cy, r = W / 2, H - 30, 150
    angle = math.pi * (1 - share)
    x, y = cx + r * math.cos(angle), cy - r * math.sin(angle)
    large = 0
    arc = (
        f'<path d="M {cx - r} {cy} A {r} {r} 0 {large} 1 {x:.1f} {y:.1f}" stroke="{colour}" '
        f'stroke-width="24" fill="none"/>'
        if share > 0
        else ""
    )
    label = f"{used:.2f} / {limit:.2f}" if limit > 0 else f"{used:.2f} (no limit)"
    body = (
        f'<path d="M {cx - r} {cy} A {r} {r} 0 0 1 {cx + r} {cy}" stroke="#ddd" '
        f'stroke-width="24" fill="none"/>{arc}'
        f'<text x="{cx}" y="{cy - 20}" text-anchor="middle" font-size="20">{escape(label)}</text>'
    )
    return _frame(body, title)

"""SVG geometry of every chart the pages draw (the templates only place what is computed here).

Each function takes plain numbers and returns coordinates in SVG user units; nothing here reads
the database or knows about requests.
"""

from __future__ import annotations

import math

from ranking.core.ratings import ICC_REFERENCES


def nice_step(raw: float) -> float:
    """The smallest of 1, 2, 5 × 10^k that is at least ``raw`` (axis tick spacing)."""
    if raw <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if raw <= m * exp:
            return m * exp
    return 10 * exp


def forest_plot(rows, *, width: int = 560, row_h: int = 18) -> dict:
    """Strengths with 95% CI whiskers, one row per leaderboard row (``rank``, ``name``, ``strength``,
    ``ci_low``, ``ci_high``)."""
    lows = [r.ci_low if r.ci_low is not None else r.strength for r in rows]
    highs = [r.ci_high if r.ci_high is not None else r.strength for r in rows]
    lo, hi = (min(lows), max(highs)) if rows else (-1.0, 1.0)
    if hi - lo < 1e-9:
        lo, hi = lo - 1, hi + 1
    pad_l, pad_r = 40, 20
    span = width - pad_l - pad_r

    def x(v: float) -> float:
        return pad_l + span * (v - lo) / (hi - lo)

    points = [
        {"y": 20 + i * row_h, "x": x(r.strength), "x0": x(lows[i]), "x1": x(highs[i]), "rank": r.rank,
         "label": f"#{r.rank} {r.name}: θ = {r.strength:.2f}" + (
             f" [{r.ci_low:.2f}, {r.ci_high:.2f}]" if r.ci_low is not None else "")}
        for i, r in enumerate(rows)
    ]
    ticks = []
    step = nice_step((hi - lo) / 5)
    t = math.ceil(lo / step) * step
    while t <= hi + 1e-12:
        ticks.append({"x": x(t), "label": f"{t:g}"})
        t += step
    return {"points": points, "ticks": ticks, "width": width, "height": 30 + len(rows) * row_h,
            "zero": x(0.0) if lo <= 0 <= hi else None, "axis_y": 24 + len(rows) * row_h}


def bar_chart(rows, *, title: str, x_label: str = "", y_label: str = "", width: int = 560,
              height: int = 180) -> dict:
    """A vertical bar chart of ``rows`` = [(label, value), ...]."""
    rows = list(rows)
    peak = max((v for _, v in rows), default=0) or 1
    pad_left, pad_bottom, pad_top = 40, 28, 10
    inner_w, inner_h = width - pad_left - 10, height - pad_bottom - pad_top
    n = max(len(rows), 1)
    bar_w = inner_w / n
    bars = [
        {
            "x": pad_left + i * bar_w + bar_w * 0.1,
            "w": max(bar_w * 0.8, 1),
            "h": inner_h * v / peak,
            "y": pad_top + inner_h - inner_h * v / peak,
            "label": label,
            "value": v,
            "show_label": n <= 24 or i % max(n // 12, 1) == 0,
            "cx": pad_left + i * bar_w + bar_w / 2,
        }
        for i, (label, v) in enumerate(rows)
    ]
    return {"bars": bars, "title": title, "width": width, "height": height, "peak": peak, "x_label": x_label,
            "y_label": y_label, "axis_y": pad_top + inner_h, "pad_left": pad_left, "pad_top": pad_top,
            "label_y": pad_top + inner_h + 16}


def likert_glyph(counts: list[int]) -> list[dict]:
    """A 50 × 18 mini histogram of one image's 1–5 scores (``counts[s - 1]`` ratings of score s)."""
    top = max(counts) or 1
    return [{"score": s, "n": c, "h": round(16 * c / top, 1), "y": round(17 - 16 * c / top, 1), "x": 10 * (s - 1)}
            for s, c in zip(range(1, 6), counts)]


def heatmap_chart(*, histogram: list[dict], width: int = 360, height: int = 140) -> dict:
    """Geometry of one correlation histogram (bins over [−1, 1]) as an SVG bar chart."""
    left, right, top, bottom = 30, 10, 10, 22
    span, plot_h = width - left - right, height - top - bottom
    peak = max([b["n"] for b in histogram] + [1])
    bw = span / max(len(histogram), 1)
    bars = [{"x": left + i * bw + 1, "w": bw - 2, "h": plot_h * b["n"] / peak,
             "y": top + plot_h - plot_h * b["n"] / peak, "n": b["n"], "low": b["low"], "high": b["high"]}
            for i, b in enumerate(histogram)]
    ticks = [{"x": left + span * (t + 1) / 2, "label": f"{t:g}"} for t in (-1.0, -0.5, 0.0, 0.5, 1.0)]
    return {"width": width, "height": height, "left": left, "bars": bars, "ticks": ticks, "peak": peak,
            "axis_y": top + plot_h, "right_x": width - right}


def icc_chart(*, likert: list[dict], width: int = 760) -> dict:
    """Geometry of the horizontal ICC chart (0–1 axis) with the crowd and lab reference lines."""
    left, right, row_h, top = 230, 30, 26, 24
    span = width - left - right
    bars = []
    for i, dim in enumerate(likert):
        for j, key in enumerate(("icc1", "icc1k")):
            form = dim.get(key)
            if not form:
                continue
            y = top + (2 * i + j) * row_h
            v = max(0.0, min(1.0, form["value"]))
            bars.append({"label": f"{dim['label']} {'ICC(1,1)' if key == 'icc1' else 'ICC(1,k)'}", "y": y,
                         "w": span * v, "value": form["value"],
                         "ci_x1": left + span * max(0.0, form["ci_low"]), "ci_x2": left + span * min(1.0, form["ci_high"]),
                         "cy": y + 8})
    height = top + max(len(bars), 1) * row_h + 24
    refs = [{"x": left + span * r["value"], "label": r["label"]} for r in ICC_REFERENCES]
    ticks = [{"x": left + span * t / 5, "label": f"{t / 5:.1f}"} for t in range(6)]
    return {"width": width, "height": height, "left": left, "span": span, "bars": bars, "refs": refs,
            "ticks": ticks, "axis_y": height - 20, "top": top}



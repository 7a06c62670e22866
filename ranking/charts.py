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
    return {"bars": bars, "all_zero": bool(rows) and not any(v for _, v in rows), "title": title, "width": width,
            "height": height, "peak": peak, "x_label": x_label,
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


def histogram(*, counts, edges, width: int = 260, height: int = 100, tick_values=None) -> dict:
    """Geometry of a histogram: ``counts[k]`` values in ``[edges[k], edges[k + 1])``; the x axis is
    labelled at ``tick_values`` if given, else at its two ends and, when 0 lies well inside, at 0."""
    counts = [int(c) for c in counts]
    edges = [float(e) for e in edges]
    left, right, top, bottom = 34, 8, 8, 20
    span, plot_h = width - left - right, height - top - bottom
    peak = max(counts, default=0) or 1
    lo, hi = (edges[0], edges[-1]) if len(edges) >= 2 else (0.0, 1.0)
    if hi - lo <= 0:
        lo, hi = lo - 0.5, hi + 0.5

    def x(v: float) -> float:
        return left + span * (v - lo) / (hi - lo)

    bars = [{"x": round(x(a), 2), "w": round(max(x(b) - x(a) - 1, 1), 2), "h": round(plot_h * c / peak, 2),
             "y": round(top + plot_h - plot_h * c / peak, 2), "n": c, "low": a, "high": b}
            for a, b, c in zip(edges[:-1], edges[1:], counts)]
    if tick_values is not None:
        ticks = [{"x": round(x(float(t)), 2), "label": f"{float(t):.4g}", "anchor": "middle"} for t in tick_values]
    else:
        ticks = [{"x": round(x(lo), 2), "label": f"{lo:.4g}", "anchor": "start"},
                 {"x": round(x(hi), 2), "label": f"{hi:.4g}", "anchor": "end"}]
        if lo < 0 < hi and 0.15 < (0 - lo) / (hi - lo) < 0.85:
            ticks.append({"x": round(x(0.0), 2), "label": "0", "anchor": "middle"})
    return {"width": width, "height": height, "left": left, "bars": bars, "ticks": ticks, "peak": peak,
            "axis_y": top + plot_h, "right_x": width - right, "top": top, "label_y": height - 5}


def accuracy_forest(rows: list[dict], *, ceiling: float | None, width: int = 640, row_h: int = 22) -> dict:
    """Metric accuracies (``rows``: ``name``, ``value``, ``low``, ``high``) with CI whiskers on a 0–1 axis
    (zoomed to the data), a 50 % chance line and the human ceiling."""
    values = [v for r in rows for v in (r["value"], r["low"], r["high"]) if v is not None]
    values += [0.5] + ([ceiling] if ceiling is not None else [])
    lo = max(0.0, math.floor(min(values) * 20) / 20) if values else 0.0
    hi = min(1.0, math.ceil(max(values) * 20) / 20) if values else 1.0
    if hi - lo < 0.1:
        lo, hi = max(0.0, lo - 0.05), min(1.0, hi + 0.05)
    left, right, top = 170, 20, 16
    span = width - left - right

    def x(v: float) -> float:
        return left + span * (v - lo) / (hi - lo)

    points = []
    for i, r in enumerate(rows):
        if r["value"] is None:
            continue
        points.append({"y": top + i * row_h + row_h / 2, "x": x(r["value"]), "name": r["name"],
                       "x0": x(r["low"]) if r["low"] is not None else x(r["value"]),
                       "x1": x(r["high"]) if r["high"] is not None else x(r["value"]),
                       "label": f"{r['name']}: {r['value']:.3f}" + (
                           f" [{r['low']:.3f}, {r['high']:.3f}]" if r["low"] is not None else "")})
    step = nice_step((hi - lo) / 5)
    ticks, t = [], math.ceil(lo / step) * step
    while t <= hi + 1e-12:
        ticks.append({"x": x(t), "label": f"{t:.2f}"})
        t += step
    height = top + max(len(rows), 1) * row_h + 28
    return {"width": width, "height": height, "left": left, "points": points, "ticks": ticks,
            "axis_y": height - 22, "top": top, "chance": x(0.5) if lo <= 0.5 <= hi else None,
            "ceiling": x(ceiling) if ceiling is not None and lo <= ceiling <= hi else None}


def reliability_chart(*, predicted: list, observed: list, count: list, size: int = 180) -> dict:
    """A reliability diagram: observed frequency against mean predicted probability per bin, with the
    diagonal (perfect calibration); dot area grows with the bin's count."""
    pad = 26
    span = size - 2 * pad
    peak = max([c for c in count if c] + [1])
    dots = [{"x": pad + span * p, "y": pad + span * (1 - o), "r": 2 + 5 * math.sqrt(c / peak), "n": c,
             "label": f"predicted {p:.2f}, observed {o:.2f}, n = {c}"}
            for p, o, c in zip(predicted, observed, count) if c and p is not None and o is not None]
    return {"size": size, "pad": pad, "span": span, "dots": dots, "end": pad + span,
            "ticks": [{"v": pad + span * t, "label": f"{t:g}"} for t in (0, 0.5, 1)]}


def gate_chart(*, threshold: list, precision: list, recall: list, chosen: float | None,
               width: int = 360, height: int = 170) -> dict:
    """Precision and recall of a pass gate as its threshold moves (metric units on x, 0–1 on y)."""
    left, right, top, bottom = 34, 10, 10, 26
    xs = [t for t in threshold if t is not None]
    lo, hi = (min(xs), max(xs)) if xs else (0.0, 1.0)
    if hi - lo < 1e-12:
        lo, hi = lo - 1, hi + 1
    span_x, span_y = width - left - right, height - top - bottom

    def x(v):
        return left + span_x * (v - lo) / (hi - lo)

    def y(v):
        return top + span_y * (1 - v)

    def line(values):
        return " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in zip(threshold, values) if t is not None and v is not None)

    return {"width": width, "height": height, "left": left, "top": top, "axis_y": top + span_y,
            "right_x": width - right, "precision": line(precision), "recall": line(recall),
            "chosen": x(chosen) if chosen is not None and lo <= chosen <= hi else None,
            "x_ticks": [{"x": x(lo), "label": f"{lo:.3g}"}, {"x": x(hi), "label": f"{hi:.3g}"}],
            "y_ticks": [{"y": y(v), "label": f"{v:g}"} for v in (0, 0.5, 1)]}


def drift_chart(*, accuracy: list, low: list, high: list, labels: list, ticks: list | None = None, width: int = 360,
                height: int = 150) -> dict:
    """Accuracy per time window with CI whiskers (windows left to right, oldest first). ``ticks``: short x-axis
    labels, one per window (e.g. round numbers; at most about twelve are written)."""
    left, right, top, bottom = 34, 10, 10, 26
    values = [v for v in accuracy + low + high if v is not None] or [0.5]
    lo, hi = max(0.0, min(values) - 0.05), min(1.0, max(values) + 0.05)
    span_x, span_y = width - left - right, height - top - bottom
    n = max(len(accuracy), 1)

    def y(v):
        return top + span_y * (hi - v) / max(hi - lo, 1e-9)

    every = -(-n // 12)
    points = [{"x": left + span_x * (i + 0.5) / n, "y": y(a), "y0": y(lv if lv is not None else a),
               "y1": y(hv if hv is not None else a), "label": f"{labels[i] if i < len(labels) else i + 1}: {a:.3f}",
               "tick": str(ticks[i]) if ticks and i < len(ticks) and (n - 1 - i) % every == 0 else ""}
              for i, (a, lv, hv) in enumerate(zip(accuracy, low, high)) if a is not None]
    return {"width": width, "height": height, "left": left, "points": points, "axis_y": top + span_y,
            "right_x": width - right, "y_ticks": [{"y": y(v), "label": f"{v:.2f}"} for v in (lo, (lo + hi) / 2, hi)]}


def diverging_colour(p: float | None) -> str:
    """A fill for a win rate: red below ½, white at ½, blue above (grey when unknown); light enough at the
    extremes (at most 55 % of the full colour) for dark text to stay readable on it."""
    if p is None:
        return "#f1f3f5"
    t = 0.55 * max(-1.0, min(1.0, 2 * (p - 0.5)))
    if t >= 0:
        r, g, b = (int(255 - t * (255 - c)) for c in (59, 91, 219))
    else:
        r, g, b = (int(255 + t * (255 - c)) for c in (201, 42, 42))
    return f"#{r:02x}{g:02x}{b:02x}"

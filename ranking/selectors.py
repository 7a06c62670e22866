"""Reads for the ranking app: leaderboards, fit history, personal rankings."""

from __future__ import annotations

import math
from dataclasses import dataclass

from django.db.models import QuerySet

from annotator.models import Project, Rater
from ranking.models import FitModel, FitRun, FitStatus, ItemScore, RaterItemOffset

ELO_BASE = 1500.0
ELO_PER_LOGIT = 400 / math.log(10)


def elo(strength: float) -> float:
    """Strength θ (natural log-odds) on an Elo-like scale: 1500 + 400·θ / ln 10."""
    return ELO_BASE + ELO_PER_LOGIT * strength


def fit_latest(*, project: Project, model: str = FitModel.BT) -> FitRun | None:
    return FitRun.objects.filter(project=project, model=model, status=FitStatus.SUCCEEDED).order_by("-id").first()


def fit_runs(*, project: Project, limit: int = 50) -> QuerySet[FitRun]:
    return FitRun.objects.filter(project=project).order_by("-id")[:limit]


@dataclass(frozen=True)
class LeaderboardRow:
    rank: int
    item_id: int
    name: str
    prompt: str
    source_model: str
    strength: float
    elo: float
    se: float | None
    ci_low: float | None
    ci_high: float | None
    wins: float
    losses: float
    ties: float
    n_judgments: int


def leaderboard(*, fit: FitRun) -> list[LeaderboardRow]:
    scores = ItemScore.objects.filter(fit=fit).select_related("item").order_by("rank")
    return [
        LeaderboardRow(rank=s.rank, item_id=s.item_id, name=s.item.original_name, prompt=s.item.prompt,
                       source_model=s.item.source_model, strength=s.strength, elo=elo(s.strength), se=s.se,
                       ci_low=s.ci_low, ci_high=s.ci_high, wins=s.wins, losses=s.losses, ties=s.ties,
                       n_judgments=s.n_judgments)
        for s in scores
    ]


def forest_plot(rows: list[LeaderboardRow], *, width: int = 560, row_h: int = 18) -> dict:
    """Coordinates for an SVG plot of strengths with 95% CI whiskers, one row per item."""
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
    step = _nice_step((hi - lo) / 5)
    t = math.ceil(lo / step) * step
    while t <= hi + 1e-12:
        ticks.append({"x": x(t), "label": f"{t:g}"})
        t += step
    return {"points": points, "ticks": ticks, "width": width, "height": 30 + len(rows) * row_h,
            "zero": x(0.0) if lo <= 0 <= hi else None, "axis_y": 24 + len(rows) * row_h}


def _nice_step(raw: float) -> float:
    if raw <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if raw <= m * exp:
            return m * exp
    return 10 * exp


def personal_ranking(*, fit: FitRun, rater: Rater) -> list[dict]:
    """A rater's personal strengths (θ + u_r) next to the population's, for the items they judged."""
    offsets = dict(RaterItemOffset.objects.filter(fit=fit, rater=rater).values_list("item_id", "offset"))
    scores = ItemScore.objects.filter(fit=fit, item_id__in=offsets).select_related("item")
    rows = [{"item_id": s.item_id, "name": s.item.original_name, "population": s.strength,
             "population_rank": s.rank, "personal": s.strength + offsets[s.item_id], "offset": offsets[s.item_id]}
            for s in scores]
    rows.sort(key=lambda r: -r["personal"])
    for i, row in enumerate(rows, start=1):
        row["personal_rank"] = i
    return rows


def hbt_raters(*, fit: FitRun) -> QuerySet[Rater]:
    return Rater.objects.filter(pk__in=RaterItemOffset.objects.filter(fit=fit).values("rater_id")).order_by(
        "-n_judgments")

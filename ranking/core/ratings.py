"""Agreement of ratings on single images: Likert scores, checklist answers, heatmap correlations.

Pure numpy (no Django). Inputs are compact arrays (image index per rating) and plain rows built by
:mod:`ranking.loaders`; outputs are JSON-ready dicts stored in agreement reports.

Crowd designs give different raters to different images, so the one-way ICC forms apply; ICC
needs complete rows and uses the first k ratings of images with ≥ k, k the most common count (≥ 2).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from ranking.core import agreement
from ranking.core.pairwise import modal_fleiss_table, slot_matrix, try_statistic

ICC_REFERENCES = ({"label": "crowd ≈ 0.40", "value": 0.40}, {"label": "lab ≈ 0.94", "value": 0.94})
HEATMAP_BINS = 10  # correlation histogram over [-1, 1], bins of 0.2
LIKERT_IMAGES_SHOWN = 50
OPINION_SORTS = ("controversy", "n", "agreement")


def likert_agreement(*, item_index: np.ndarray, scores: np.ndarray, n_items: int) -> dict:
    """One Likert dimension: one-way ICC(1,1)/ICC(1,k), ordinal alpha, RichHF shares, histogram.

    Crowd designs give different raters to different items, so the one-way forms apply. ICC needs
    complete rows: it uses the first k ratings of items with ≥ k, k the most common count (≥ 2).
    """
    out: dict = {"n_ratings": int(scores.size), "icc1": None, "icc1k": None, "k": None, "n_targets_icc": 0,
                 "alpha_ordinal": None, "shares": None, "histogram": [], "reason": None}
    out["histogram"] = [(str(v), int((scores == v).sum())) for v in range(1, 6)]
    slots = slot_matrix(unit=item_index, values=scores.astype(float), n_units=n_items)
    if slots.shape[0] < 2:
        out["reason"] = "no image has two or more ratings yet"
        return out
    out["alpha_ordinal"], _ = try_statistic(agreement.krippendorff_alpha, slots, "ordinal")
    shares, _ = try_statistic(agreement.likert_agreement_shares, slots.T)
    if shares is not None:
        out["shares"] = {"perfect": shares.perfect, "within_one": shares.within_one, "n_targets": shares.n_targets}
    per_item = (~np.isnan(slots)).sum(axis=0)
    eligible = per_item[per_item >= 2]
    k = int(Counter(eligible.tolist()).most_common(1)[0][0])
    matrix = slots[:k, per_item >= k].T
    res, reason = try_statistic(agreement.icc, matrix)
    if res is None:
        out["reason"] = reason
    else:
        out.update(k=k, n_targets_icc=int(res.n_targets), icc1=icc_dict(res["ICC1"]), icc1k=icc_dict(res["ICC1k"]))
    return out


def icc_dict(form) -> dict:
    return {"value": float(form.value), "ci_low": float(form.ci_low), "ci_high": float(form.ci_high),
            "p": float(form.p)}


def checklist_agreement(*, item_index: np.ndarray, answers: np.ndarray, n_items: int) -> dict:
    """One yes/no question: yes-rate, Fleiss' kappa (modal-count subsample) and Gwet's AC1."""
    out: dict = {"n_answers": int(answers.size), "yes_rate": float(answers.mean()) if answers.size else None,
                 "kappa": None, "ac1": None, "reason": None}
    slots = slot_matrix(unit=item_index, values=answers.astype(float), n_units=n_items)
    if slots.shape[0] < 2:
        out["reason"] = "no image has two or more answers yet"
        return out
    out["ac1"], out["reason"] = try_statistic(agreement.gwet_ac1, slots)
    table, _ = modal_fleiss_table(unit=item_index, category=answers.astype(np.int64), n_units=n_items,
                                   n_categories=2)
    if table is not None and table.shape[0]:
        out["kappa"], _ = try_statistic(agreement.fleiss_kappa, table)
    return out


def heatmap_agreement_summary(*, correlations: list[float | None], n_marked: int, n_images: int) -> dict:
    """Distribution over images of the leave-one-out correlation between raters' disk maps (one kind).

    ``correlations``: one value per image with ≥ 2 raters, None where undefined (no rater, or only one,
    marked anything of the kind). ``n_marked`` of ``n_images`` rich-feedback images have a mark by anyone.
    """
    values = np.array([c for c in correlations if c is not None], dtype=float)
    counts, edges = np.histogram(values, bins=HEATMAP_BINS, range=(-1.0, 1.0))
    return {
        "n_images": len(correlations), "n_defined": int(values.size),
        "share_defined": values.size / len(correlations) if correlations else None,
        "mean": float(values.mean()) if values.size else None,
        "median": float(np.median(values)) if values.size else None,
        "histogram": [{"low": float(edges[i]), "high": float(edges[i + 1]), "n": int(counts[i])}
                      for i in range(HEATMAP_BINS)],
        "n_marked": n_marked, "n_rich_images": n_images,
        "marked_share": n_marked / n_images if n_images else None,
    }


def likert_image_row(*, item_id: int, name: str, values: list[int]) -> dict:
    """One image's ratings on one 1–5 dimension: counts per score, mean, SD and spread (max − min)."""
    arr = np.array(values, dtype=float)
    counts = [int((arr == s).sum()) for s in range(1, 6)]
    return {
        "item_id": item_id, "item": name, "n": int(arr.size),
        "counts": counts, "text": ", ".join(f"{c}×{s}" for s, c in zip(range(1, 6), counts) if c),
        "mean": float(arr.mean()), "sd": float(arr.std(ddof=1)) if arr.size > 1 else None,
        "spread": float(arr.max() - arr.min()),
    }


def likert_image_opinions(*, rows: list[dict], sort: str = "controversy", limit: int = LIKERT_IMAGES_SHOWN) -> dict:
    """Per-image Likert rows of one dimension in ``sort`` order: ``controversy`` (largest max − min, then
    largest SD, then most ratings), ``n`` (most ratings first) or ``agreement`` (smallest spread first)."""
    def sd(r):
        return r["sd"] if r["sd"] is not None else 0.0

    keys = {
        "n": lambda r: (-r["n"], -r["spread"], -sd(r), r["item_id"]),
        "agreement": lambda r: (r["spread"], sd(r), -r["n"], r["item_id"]),
        "controversy": lambda r: (-r["spread"], -sd(r), -r["n"], r["item_id"]),
    }
    if sort not in keys:
        sort = "controversy"
    ordered = sorted(rows, key=keys[sort])[:limit]
    return {"sort": sort, "n_images": len(rows), "rows": ordered, "shown": len(ordered)}


def spread_counts(rows: list[dict]) -> dict:
    """Images with ≥ 2 ratings by spread (max − min): 0, 1, 2 or more."""
    multi = [r["spread"] for r in rows if r["n"] >= 2]
    return {"n_multi": len(multi), "zero": sum(1 for v in multi if v == 0), "one": sum(1 for v in multi if v == 1),
            "two_plus": sum(1 for v in multi if v >= 2)}



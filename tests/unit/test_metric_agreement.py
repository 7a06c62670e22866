"""The calibration report's content (ranking/core/metric_agreement.py) on simulated studies. No database."""

import numpy as np
import pytest

from ranking.core import calibration as cal
from ranking.core.metric_agreement import JudgmentArrays, MetricColumn, metric_agreement


def simulate(n_items=60, n_judgments=3000, seed=0, tie_share=0.1):
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=n_items)
    a = rng.integers(0, n_items, n_judgments)
    b = (a + rng.integers(1, n_items, n_judgments)) % n_items
    p_a = 1 / (1 + np.exp(-(theta[a] - theta[b])))
    u = rng.random(n_judgments)
    outcome = np.where(u < tie_share, 0, np.where(rng.random(n_judgments) < p_a, 1, -1))
    pair = np.minimum(a, b) * n_items + np.maximum(a, b)
    judgments = JudgmentArrays(outcome=outcome, item_a=a, item_b=b, pair=pair,
                               rater=rng.integers(0, 40, n_judgments), prompt=a % 12,
                               rater_groups={"expertise": np.where(rng.random(n_judgments) < 0.5, "artist", "layperson")})
    return theta, judgments, rng


def test_a_metric_that_tracks_the_humans_beats_noise_and_lower_is_better_is_flipped():
    theta, judgments, rng = simulate()
    good = MetricColumn("good", "1", "higher", "overall", theta + rng.normal(scale=0.2, size=theta.size))
    flipped = MetricColumn("good_low", "1", "lower", "overall", -good.values)
    noise = MetricColumn("noise", "1", "higher", "overall", rng.normal(size=theta.size))
    shape = MetricColumn("aspect", "1", "none", "technical", rng.random(theta.size))
    result = metric_agreement(judgments=judgments, metrics=[good, flipped, noise, shape],
                              signals={"bt": theta}, strengths=theta)
    rows = {r["name"]: r for r in result["metrics"]}
    g, n = rows["good"]["pairwise"], rows["noise"]["pairwise"]
    assert g["headline"] > n["headline"] + 0.15
    assert g["ci"][0] < g["accuracy"]["acc_eq"] <= g["ci"][1] or g["tie"]["epsilon"] > 0
    assert rows["good_low"]["pairwise"]["accuracy"] == g["accuracy"]  # direction handled by the sign
    assert rows["aspect"]["pairwise"]["reason"].startswith("a descriptive metric")
    assert rows["good"]["signals"]["bt"]["tau_b"] > 0.8 > abs(rows["noise"]["signals"]["bt"]["tau_b"]) + 0.5
    # Clusters: the two equivalent good metrics share rank 1, noise comes after.
    assert rows["good"]["cluster"] == rows["good_low"]["cluster"] == 1 < rows["noise"]["cluster"]
    assert result["clusters"]["metrics"] == ["good", "good_low", "noise"]
    # The headline is the held-out accuracy, the in-sample one is never lower.
    assert g["tie"]["in_sample"] >= g["tie"]["held_out"] - 1e-12 and g["headline"] == g["tie"]["held_out"]
    # Ceiling and its share; per-group accuracies exist for both groups.
    assert 0 < result["ceiling"]["accuracy"] <= 1 and g["ceiling_share"] == pytest.approx(
        g["headline"] / result["ceiling"]["accuracy"])
    assert {r["value"] for r in g["groups"]["expertise"]} == {"artist", "layperson"}
    blend = result["clusters"]["blend"]  # 12 prompts: a nested-CV blend of the three is reported
    assert len(blend["weights"]) == 3 and all(w >= 0 for w in blend["weights"]) and 0 <= blend["p"] <= 1


def test_accuracies_equal_the_core_functions_on_the_scored_judgments():
    theta, judgments, rng = simulate(seed=3)
    values = theta + rng.normal(scale=0.5, size=theta.size)
    values[:10] = np.nan  # ten images without a score: their judgments do not count
    col = MetricColumn("m", "1", "higher", "overall", values)
    row = metric_agreement(judgments=judgments, metrics=[col], signals={}, strengths=None)["metrics"][0]
    scored = np.isfinite(values[judgments.item_a]) & np.isfinite(values[judgments.item_b])
    d = values[judgments.item_a[scored]] - values[judgments.item_b[scored]]
    y = judgments.outcome[scored]
    assert row["pairwise"]["n_judgments"] == int(scored.sum()) < judgments.outcome.size
    for convention in cal.CONVENTIONS:
        assert row["pairwise"]["accuracy"][convention] == pytest.approx(cal.pairwise_accuracy(y, d, convention=convention))
    assert row["gate"]["reason"].startswith("no human pass label")  # no fit, no ratings: no gate


def test_gate_threshold_is_in_the_metric_units_and_meets_the_precision_target():
    theta, judgments, rng = simulate(n_items=200, seed=5)
    values = 10 - (theta + rng.normal(scale=0.3, size=theta.size))  # lower is better, offset units
    col = MetricColumn("loss", "1", "lower", "overall", values)
    gate = metric_agreement(judgments=judgments, metrics=[col], signals={}, strengths=theta)["metrics"][0]["gate"]
    passed = values <= gate["threshold"]  # lower is better: pass at or below the threshold
    human = theta >= np.median(theta)
    assert (passed & human).sum() / passed.sum() == pytest.approx(gate["precision"])
    assert gate["precision"] >= 0.8 and gate["ci"][0] <= gate["precision"] <= gate["ci"][1]


def test_too_few_judgments_are_reported_not_computed():
    theta, judgments, _ = simulate(n_judgments=8)
    col = MetricColumn("m", "1", "higher", "overall", theta)
    row = metric_agreement(judgments=judgments, metrics=[col], signals={}, strengths=None)["metrics"][0]
    assert row["pairwise"]["reason"].startswith("only 8 judgments")


def test_a_gate_per_human_label_likert_and_checklist_included():
    theta, judgments, rng = simulate(n_items=120, seed=7)
    likert = np.clip(np.round(3 + theta + rng.normal(scale=0.5, size=theta.size)), 1, 5)
    likert[:5] = np.nan  # five images without ratings
    yes_rate = (theta + rng.normal(scale=0.3, size=theta.size) > 0).astype(float)
    col = MetricColumn("m", "1", "higher", "overall", theta + rng.normal(scale=0.3, size=theta.size))
    row = metric_agreement(judgments=judgments, metrics=[col],
                           signals={"likert:overall": likert, "checklist:hands": yes_rate},
                           strengths=theta)["metrics"][0]
    assert set(row["gates"]) == {"bt", "likert:overall", "checklist:hands"} and row["gate_label"] == "bt"
    g = row["gates"]["likert:overall"]
    passed = col.values >= g["threshold"]
    human = likert >= 3
    known = np.isfinite(likert)
    assert g["n_items"] == int(known.sum())
    assert (passed & human & known).sum() / (passed & known).sum() == pytest.approx(g["precision"])
    assert g["precision"] >= 0.8

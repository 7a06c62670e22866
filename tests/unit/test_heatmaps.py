"""Tests of ranking.core.heatmaps: disk maps, consolidation, keyword/score consolidation, saliency metrics.

No database, no Django: the module under test is pure numpy.
"""

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ranking.core import heatmaps as hm

REPO_ROOT = Path(__file__).resolve().parents[2]


def covered(m):
    """Set of (row, col) pixels that are 1 in a map."""
    return {(int(r), int(c)) for r, c in zip(*np.nonzero(m))}


# ----------------------------------------------------------------------------------------------------
# disk_map
# ----------------------------------------------------------------------------------------------------


def test_single_disk_pixel_count_close_to_pi_r_squared():
    r = 512 / 20  # 25.6
    m = hm.disk_map([[256.0, 256.0]], 512, 512, r)
    assert m.shape == (512, 512)
    assert m.dtype == np.float32
    assert set(np.unique(m)) == {0.0, 1.0}
    area = math.pi * r * r
    assert abs(m.sum() - area) / area < 0.01


def test_pixel_centre_rule_radius_one_on_4x4_by_hand():
    # point (x, y) = (2.0, 2.0); pixel centres (c + .5, r + .5). Within distance 1 only the four centres
    # (1.5, 1.5), (2.5, 1.5), (1.5, 2.5), (2.5, 2.5) at distance sqrt(0.5); the next ones, e.g. (0.5, 1.5),
    # are at sqrt(2.5) > 1.
    m = hm.disk_map(np.array([[2.0, 2.0]]), 4, 4, 1.0)
    assert covered(m) == {(1, 1), (1, 2), (2, 1), (2, 2)}


def test_pixel_centre_rule_radius_1_6_on_4x4_by_hand():
    # distances from (2, 2): inner four sqrt(0.5); edge-adjacent eight, e.g. centre (0.5, 1.5) -> sqrt(2.5)
    # = 1.581 <= 1.6 (inside); corners, e.g. (0.5, 0.5) -> sqrt(4.5) = 2.12 (outside).
    m = hm.disk_map([[2.0, 2.0]], 4, 4, 1.6)
    expected = {
        (0, 1), (0, 2),
        (1, 0), (1, 1), (1, 2), (1, 3),
        (2, 0), (2, 1), (2, 2), (2, 3),
        (3, 1), (3, 2),
    }
    assert covered(m) == expected


def test_distance_equal_to_radius_is_inside():
    # point on the centre of pixel (row 1, col 1); its 4 neighbours' centres are at distance exactly 1.
    m = hm.disk_map([[1.5, 1.5]], 4, 4, 1.0)
    assert covered(m) == {(1, 1), (0, 1), (2, 1), (1, 0), (1, 2)}


def test_non_square_image_uses_x_for_columns_y_for_rows():
    m = hm.disk_map([[5.5, 1.5]], 3, 8, 0.5)
    assert covered(m) == {(1, 5)}


def test_empty_points_give_zeros():
    for empty in ([], np.empty((0, 2)), np.zeros((0, 2))):
        m = hm.disk_map(empty, 6, 7, 2.0)
        assert m.shape == (6, 7) and not m.any()


def test_overlapping_disks_of_one_rater_are_a_union_not_a_sum():
    m = hm.disk_map([[10.0, 10.0], [10.5, 10.0]], 20, 20, 3.0)
    assert m.max() == 1.0


def test_border_point_is_clipped_to_half_and_quarter_disk():
    r = 25.6
    area = math.pi * r * r
    edge = hm.disk_map([[256.0, 0.0]], 512, 512, r)  # on the top edge
    corner = hm.disk_map([[0.0, 0.0]], 512, 512, r)  # on the top-left corner
    assert abs(edge.sum() - area / 2) / (area / 2) < 0.02
    assert abs(corner.sum() - area / 4) / (area / 4) < 0.03


def test_point_exactly_at_width_height_works():
    r = 25.6
    m = hm.disk_map([[512.0, 512.0]], 512, 512, r)
    assert m[511, 511] == 1.0 and m[0, 0] == 0.0
    area = math.pi * r * r
    assert abs(m.sum() - area / 4) / (area / 4) < 0.03
    # equals the mirror image of the corner at the origin
    np.testing.assert_array_equal(m, hm.disk_map([[0.0, 0.0]], 512, 512, r)[::-1, ::-1])


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        (dict(points=[[1.0, 1.0]], height=4, width=4, radius=0.0), "radius"),
        (dict(points=[[1.0, 1.0]], height=4, width=4, radius=-1.0), "radius"),
        (dict(points=[[1.0, 1.0]], height=4, width=4, radius=float("nan")), "radius"),
        (dict(points=[1.0, 1.0], height=4, width=4, radius=1.0), "points"),
        (dict(points=[[1.0, 1.0, 1.0]], height=4, width=4, radius=1.0), "points"),
        (dict(points=[[5.0, 1.0]], height=4, width=4, radius=1.0), "points"),
        (dict(points=[[1.0, -0.1]], height=4, width=4, radius=1.0), "points"),
        (dict(points=[[1.0, float("nan")]], height=4, width=4, radius=1.0), "points"),
        (dict(points=[[1.0, 1.0]], height=0, width=4, radius=1.0), "height"),
        (dict(points=[[1.0, 1.0]], height=4, width=2.5, radius=1.0), "width"),
    ],
)
def test_disk_map_validation_names_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        hm.disk_map(**kwargs)


def test_normalised_to_pixels():
    out = hm.normalised_to_pixels([[0.0, 0.0], [1.0, 1.0], [0.25, 0.5]], 200, 400)
    np.testing.assert_array_equal(out, [[0, 0], [400, 200], [100, 100]])
    with pytest.raises(ValueError, match="points01"):
        hm.normalised_to_pixels([[1.2, 0.5]], 200, 400)


# ----------------------------------------------------------------------------------------------------
# consolidation
# ----------------------------------------------------------------------------------------------------


def test_consolidate_fractions_of_raters():
    spot = [[10.0, 10.0]]
    other = [[40.0, 40.0]]
    m = hm.consolidate([spot, spot, other], 50, 50, 3.0)
    assert m.dtype == np.float32
    assert m[9, 9] == pytest.approx(2 / 3)  # two of three marked the spot
    assert m[39, 39] == pytest.approx(1 / 3)  # one of three
    assert m[25, 25] == 0.0  # none
    assert m.max() == pytest.approx(2 / 3)
    everyone = hm.consolidate([spot, spot, spot], 50, 50, 3.0)
    assert everyone[10, 10] == 1.0


def test_consolidate_rater_with_no_points_counts_as_zeros():
    m = hm.consolidate([[[10.0, 10.0]], [], np.empty((0, 2))], 20, 20, 2.0)
    assert m[9, 9] == pytest.approx(1 / 3)


def test_consolidate_empty_input_gives_zeros():
    assert not hm.consolidate([], 8, 9, 2.0).any()
    assert hm.consolidate([], 8, 9, 2.0).shape == (8, 9)
    assert not hm.consolidate([[], []], 8, 9, 2.0).any()


def _random_point_sets(rng, n_images, height, width, max_raters=3, lam=4):
    sets = []
    for _ in range(n_images):
        n_raters = int(rng.integers(0, max_raters + 1))
        raters = []
        for _ in range(n_raters):
            n = int(rng.poisson(lam))
            pts = np.column_stack([rng.uniform(0, width, n), rng.uniform(0, height, n)])
            raters.append(pts)
        sets.append(raters)
    # border and corner cases, exact pixel centres and an exact (width, height) point
    sets.append([[[0.0, 0.0], [width, height]], [[width, 0.0]], []])
    sets.append([[[0.5, 0.5], [3.5, 2.5]], [[0.0, height]]])
    return sets


def test_batched_path_equals_simple_path():
    rng = np.random.default_rng(20261122)
    height, width, radius = 37, 53, 4.7
    sets = _random_point_sets(rng, 150, height, width)
    batched = hm.consolidate_many(sets, height, width, radius, chunk_size=7)
    simple = np.stack([hm.consolidate(s, height, width, radius) for s in sets])
    assert batched.dtype == np.float32
    np.testing.assert_array_equal(batched, simple)


def test_batched_path_keeps_the_distance_equal_to_radius_rule_and_clipping():
    sets = [[[[1.5, 1.5]]], [[[0.0, 0.0], [4.0, 4.0]]], [[[4.0, 0.0]], []]]
    batched = hm.consolidate_many(sets, 4, 4, 1.0)
    assert covered(batched[0]) == {(1, 1), (0, 1), (2, 1), (1, 0), (1, 2)}
    for got, point_sets in zip(batched, sets):
        np.testing.assert_array_equal(got, hm.consolidate(point_sets, 4, 4, 1.0))


def test_batched_path_with_many_raters_uses_several_bit_planes():
    rng = np.random.default_rng(3)
    height, width, radius = 30, 30, 6.0
    # 11 raters, some overlapping their own disks, on 4 images
    sets = [
        [rng.uniform(0, 30, size=(int(rng.integers(0, 4)), 2)) for _ in range(11)] for _ in range(4)
    ]
    batched = hm.consolidate_many(sets, height, width, radius, chunk_size=3)
    simple = np.stack([hm.consolidate(s, height, width, radius) for s in sets])
    np.testing.assert_array_equal(batched, simple)


def test_iter_consolidated_counts_and_flat_api():
    points = np.array([[5.0, 5.0], [5.0, 5.0], [5.2, 5.0], [15.0, 15.0]])
    image_index = np.array([1, 1, 1, 0])
    rater_index = np.array([0, 1, 1, 2])
    args = (points, image_index, rater_index, [3, 2, 4], 20, 20, 2.0)
    chunks = list(hm.iter_consolidated(*args, chunk_size=2, counts=True))
    assert [start for start, _ in chunks] == [0, 2]
    counts = np.concatenate([c for _, c in chunks])
    assert counts.dtype == np.uint8 and counts.shape == (3, 20, 20)
    assert counts[1, 4, 4] == 2  # rater 1's two overlapping disks count once
    assert counts[0, 14, 14] == 1
    assert not counts[2].any()  # an image with raters but no points
    heat = np.concatenate([c for _, c in hm.iter_consolidated(*args)])
    assert heat[1, 4, 4] == 1.0 and heat[0, 14, 14] == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        (dict(image_index=[0, 0, 0]), "image_index"),
        (dict(rater_index=[0, 5]), "rater_index"),
        (dict(image_index=[0, 9]), "image_index"),
        (dict(chunk_size=0), "chunk_size"),
        (dict(radius=0), "radius"),
    ],
)
def test_iter_consolidated_validation(kwargs, name):
    args = dict(
        points=[[1.0, 1.0], [2.0, 2.0]], image_index=[0, 1], rater_index=[0, 1], n_raters=[2, 2],
        height=8, width=8, radius=1.0,
    )
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        list(hm.iter_consolidated(**args))


# ----------------------------------------------------------------------------------------------------
# keywords, scores
# ----------------------------------------------------------------------------------------------------


def test_keyword_majority_and_tie_rule():
    votes = np.array([[1, 1, 0, 0], [1, 0, 1, 0], [0, 0, 1, 0]], dtype=bool)
    np.testing.assert_array_equal(hm.keyword_majority(votes), [True, False, True, False])
    np.testing.assert_allclose(hm.vote_share(votes), [2 / 3, 1 / 3, 2 / 3, 0])
    # exactly half is a tie: not a majority
    two = np.array([[1, 1, 0], [0, 1, 0]], dtype=bool)
    np.testing.assert_array_equal(hm.keyword_majority(two), [False, True, False])
    four = np.array([[1], [1], [0], [0]])
    assert not hm.keyword_majority(four)[0]
    with pytest.raises(ValueError, match="votes"):
        hm.keyword_majority([1, 0, 1])
    with pytest.raises(ValueError, match="votes"):
        hm.keyword_majority([[2, 0]])


def test_score_summary_with_missing_values():
    scores = np.array([[5, 4, 1, np.nan], [3, 4, np.nan, np.nan], [4, 1, np.nan, np.nan]], dtype=float)
    s = hm.score_summary(scores)
    np.testing.assert_allclose(s.mean[:3], [4.0, 3.0, 1.0])
    assert np.isnan(s.mean[3])
    np.testing.assert_allclose(s.std[:2], [1.0, math.sqrt(3.0)])
    assert np.isnan(s.std[2]) and np.isnan(s.std[3])  # fewer than two scores
    np.testing.assert_allclose(s.min[:3], [3, 1, 1])
    np.testing.assert_allclose(s.max[:3], [5, 4, 1])
    assert np.isnan(s.min[3]) and np.isnan(s.max[3])
    np.testing.assert_array_equal(s.n_scores, [3, 3, 1, 0])
    np.testing.assert_array_equal(s.per_rater, scores)  # per-rater values kept
    with pytest.raises(ValueError, match="scores"):
        hm.score_summary([1, 2, 3])


# ----------------------------------------------------------------------------------------------------
# heatmap agreement
# ----------------------------------------------------------------------------------------------------


def test_leave_one_out_correlation_identical_and_undefined():
    a = hm.disk_map([[10.0, 10.0]], 30, 30, 4.0)
    b = hm.disk_map([[20.0, 20.0]], 30, 30, 4.0)
    assert hm.leave_one_out_correlation([a, a, a]) == pytest.approx(1.0)
    # a rater who marked nothing has a constant map: skipped; the other two compare against
    # mean(a, 0) and mean(a, 0) -> still perfectly correlated with a
    r = hm.leave_one_out_correlations([a, a, np.zeros_like(a)])
    assert np.isnan(r[2]) and r[0] == pytest.approx(1.0) and r[1] == pytest.approx(1.0)
    assert hm.leave_one_out_correlation([a, a, np.zeros_like(a)]) == pytest.approx(1.0)
    assert math.isnan(hm.leave_one_out_correlation([np.zeros_like(a)] * 3))
    # disjoint disks are negatively correlated
    assert hm.leave_one_out_correlation([a, b]) < 0
    with pytest.raises(ValueError, match="maps"):
        hm.leave_one_out_correlation([a])


def test_leave_one_out_matches_reference():
    rng = np.random.default_rng(7)
    maps = (rng.random((4, 12, 9)) > 0.6).astype(float)
    expected = []
    for k in range(4):
        others = np.delete(maps, k, axis=0).mean(axis=0)
        expected.append(np.corrcoef(maps[k].ravel(), others.ravel())[0, 1])
    np.testing.assert_allclose(hm.leave_one_out_correlations(maps), expected, rtol=1e-12)
    assert hm.leave_one_out_correlation(maps) == pytest.approx(np.mean(expected))


# ----------------------------------------------------------------------------------------------------
# saliency metrics: hand-computed values
# ----------------------------------------------------------------------------------------------------


def test_cc_identical_negated_and_hand_value():
    m = np.array([[0.0, 1.0], [2.0, 5.0]])
    assert hm.cc(m, m) == pytest.approx(1.0)
    assert hm.cc(m, 3 * m + 1) == pytest.approx(1.0)
    assert hm.cc(-m, m) == pytest.approx(-1.0)
    # x = (1, 2, 3, 4), y = (1, 3, 2, 4): deviations (-1.5, -.5, .5, 1.5) and (-1.5, .5, -.5, 1.5);
    # sum of products = 2.25 - .25 - .25 + 2.25 = 4; sums of squares 5 and 5 -> r = 0.8
    assert hm.cc([[1, 2], [3, 4]], [[1, 3], [2, 4]]) == pytest.approx(0.8)
    assert math.isnan(hm.cc(np.ones((2, 2)), m))
    with pytest.raises(ValueError, match="same shape"):
        hm.cc(np.ones((2, 2)), np.ones((2, 3)))


def test_nss_hand_value():
    # pred = (0, 0, 0, 4): mean 1, sample std sqrt((1+1+1+9)/3) = 2; z = (-.5, -.5, -.5, 1.5)
    pred = np.array([[0.0, 0.0], [0.0, 4.0]])
    assert hm.nss(pred, [[0, 0], [0, 1]]) == pytest.approx(1.5)
    assert hm.nss(pred, [[1, 0], [0, 1]]) == pytest.approx(0.5)  # mean of -0.5 and 1.5
    assert hm.nss(pred, [[1, 1], [0, 0]]) == pytest.approx(-0.5)
    assert math.isnan(hm.nss(pred, np.zeros((2, 2))))
    assert math.isnan(hm.nss(np.ones((2, 2)), [[1, 0], [0, 0]]))


@pytest.mark.parametrize("value", [0.3, 1 / 3, 0.1, 7.7, 1e-200])
def test_constant_maps_of_any_value_give_nan(value):
    # 0.3 and 1/3 are not dyadic: subtracting the rounded mean leaves ~1e-17 noise per pixel, which
    # once normalised gave NSS of ±0.996 and correlations of ±1 or 1e-16 instead of NaN.
    rng = np.random.default_rng(2)
    const = np.full((23, 31), value)
    other = rng.random((23, 31))
    fix = np.zeros((23, 31))
    fix[3, 4] = fix[10, 20] = 1
    assert math.isnan(hm.nss(const, fix))
    assert math.isnan(hm.cc(const, other)) and math.isnan(hm.cc(other, const))
    r = hm.leave_one_out_correlations([const, const, const])
    assert np.all(np.isnan(r))
    assert math.isnan(hm.leave_one_out_correlation([const, const, const]))
    # the others' mean is constant for rater 0 only when both others are constant
    r = hm.leave_one_out_correlations([other, const, other])
    assert r[0] == pytest.approx(1.0) and np.isnan(r[1]) and r[2] == pytest.approx(1.0)


def test_tiny_but_real_variation_is_not_constant():
    # A map varying at 1e-12 of its level, or at a tiny absolute scale, is not constant.
    base = np.full((4, 4), 0.3)
    bump = np.zeros((4, 4))
    bump[1, 2] = 1.0
    assert hm.nss(base + 1e-12 * bump, bump) == pytest.approx(hm.nss(bump, bump), rel=1e-3)
    assert hm.cc(1e-200 * bump, bump) == pytest.approx(1.0)


def test_kld_identical_and_hand_value():
    m = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert hm.kld(m, m) == pytest.approx(0.0, abs=1e-12)
    assert hm.kld(m, 5 * m) == pytest.approx(0.0, abs=1e-12)  # both normalised to sum 1
    # gt = (1/2, 1/2, 0, 0), pred = (1/4, 1/4, 1/4, 1/4): KLD = 2 * 1/2 * log(2) = log 2
    gt = np.array([[1.0, 1.0], [0.0, 0.0]])
    pred = np.ones((2, 2))
    assert hm.kld(pred, gt) == pytest.approx(math.log(2), rel=1e-12)
    # gt = (1/4, 3/4), pred = (1/2, 1/2): 1/4 log(1/2) + 3/4 log(3/2)
    expected = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    assert hm.kld([[1.0, 1.0]], [[1.0, 3.0]]) == pytest.approx(expected, rel=1e-12)
    # where pred is 0 and gt is not, the eps regulariser bounds the penalty: 1 * log(eps + 1/eps)
    assert hm.kld([[1.0, 0.0]], [[0.0, 1.0]]) == pytest.approx(math.log(hm.EPS + 1 / hm.EPS))
    with pytest.raises(ValueError, match="pred"):
        hm.kld([[-1.0, 1.0]], [[1.0, 1.0]])


def test_sim_identical_disjoint_and_hand_value():
    m = np.array([[0.1, 0.2], [0.3, 0.4]])
    assert hm.sim(m, m) == pytest.approx(1.0)
    assert hm.sim([[1.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 1.0]]) == pytest.approx(0.0)
    # after min-max and sum normalisation: (0, 1/3, 2/3) vs (0, 1, 0)/1 -> sum of minima = 1/3
    assert hm.sim([[0.0, 1.0, 2.0]], [[0.0, 1.0, 0.0]]) == pytest.approx(1 / 3)
    assert math.isnan(hm.sim(np.full((2, 2), 0.5), m))


def test_auc_judd_perfect_and_worked_example():
    # perfect: fixations exactly where the map is highest
    pred = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.3]])
    fix = np.array([[1, 0, 0], [0, 1, 0]])
    assert hm.auc_judd(pred, fix, jitter=False) == pytest.approx(1.0)
    assert hm.auc_judd(pred, fix, jitter=True, random_state=0) == pytest.approx(1.0)

    # worked example: pixel values (.9, .1, .5, .7, .3, .0), fixations at the values .9 and .3.
    # N_pixels = 6, N_fix = 2; after min-max scaling (by .9) the ordering is unchanged.
    # threshold .9: pixels >= .9 -> 1; tp = 1/2, fp = (1 - 1) / 4 = 0
    # threshold .3: pixels >= .3 -> .9, .5, .7, .3 = 4; tp = 2/2, fp = (4 - 2) / 4 = 1/2
    # curve (0,0), (0, .5), (.5, 1), (1, 1): area = 0 + .5 * (.5 + 1) / 2 + .5 * 1 = .875
    pred = np.array([[0.9, 0.1, 0.5], [0.7, 0.3, 0.0]])
    fix = np.array([[1, 0, 0], [0, 1, 0]])
    assert hm.auc_judd(pred, fix, jitter=False) == pytest.approx(0.875)
    assert hm.auc_judd(pred, fix, random_state=1) == pytest.approx(0.875, abs=1e-6)

    assert math.isnan(hm.auc_judd(pred, np.zeros_like(fix)))
    assert math.isnan(hm.auc_judd(np.ones((2, 3)), fix, jitter=False))


def test_auc_judd_jitter_is_reproducible_with_random_state():
    rng = np.random.default_rng(11)
    pred = (rng.random((20, 20)) > 0.5).astype(float)  # many ties
    fix = rng.random((20, 20)) > 0.9
    a = hm.auc_judd(pred, fix, random_state=5)
    b = hm.auc_judd(pred, fix, random_state=5)
    assert a == b


# ----------------------------------------------------------------------------------------------------
# saliency metrics: independent straightforward reference implementations on random maps
# ----------------------------------------------------------------------------------------------------


def ref_cc(p, g):
    p, g = p.ravel(), g.ravel()
    n = len(p)
    mp, mg = sum(p) / n, sum(g) / n
    cov = sum((a - mp) * (b - mg) for a, b in zip(p, g))
    vp = sum((a - mp) ** 2 for a in p)
    vg = sum((b - mg) ** 2 for b in g)
    return cov / math.sqrt(vp * vg)


def ref_nss(p, f):
    vals = p.ravel().tolist()
    n = len(vals)
    mean = sum(vals) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1))
    picked = [(v - mean) / sd for v, fx in zip(vals, f.ravel().tolist()) if fx]
    return sum(picked) / len(picked)


def ref_kld(p, g, eps=2.2204e-16):
    p, g = p.ravel().tolist(), g.ravel().tolist()
    sp, sg = sum(p), sum(g)
    return sum((b / sg) * math.log(eps + (b / sg) / ((a / sp) + eps)) for a, b in zip(p, g))


def ref_sim(p, g):
    def norm(m):
        m = m.ravel().tolist()
        lo, hi = min(m), max(m)
        m = [(v - lo) / (hi - lo) for v in m]
        s = sum(m)
        return [v / s for v in m]

    return sum(min(a, b) for a, b in zip(norm(p), norm(g)))


def ref_auc_judd(p, f):
    s = p.ravel().tolist()
    lo, hi = min(s), max(s)
    s = [(v - lo) / (hi - lo) for v in s]
    fix = [v for v, fx in zip(s, f.ravel().tolist()) if fx]
    n_fix, n_pix = len(fix), len(s)
    tp, fp = [0.0], [0.0]
    for i, t in enumerate(sorted(fix, reverse=True), start=1):
        above = sum(1 for v in s if v >= t)
        tp.append(i / n_fix)
        fp.append((above - i) / (n_pix - n_fix))
    tp.append(1.0)
    fp.append(1.0)
    return sum((fp[k + 1] - fp[k]) * (tp[k + 1] + tp[k]) / 2 for k in range(len(tp) - 1))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_saliency_metrics_match_reference_on_random_maps(seed):
    rng = np.random.default_rng(seed)
    shape = (13, 17)
    pred = rng.gamma(2.0, size=shape)
    gt = rng.gamma(2.0, size=shape)
    fix = rng.random(shape) > 0.85
    assert hm.cc(pred, gt) == pytest.approx(ref_cc(pred, gt), rel=1e-10)
    assert hm.nss(pred, fix) == pytest.approx(ref_nss(pred, fix), rel=1e-10)
    assert hm.kld(pred, gt) == pytest.approx(ref_kld(pred, gt), rel=1e-10)
    assert hm.sim(pred, gt) == pytest.approx(ref_sim(pred, gt), rel=1e-10)
    # continuous maps have no ties, so jitter off matches the reference exactly
    assert hm.auc_judd(pred, fix, jitter=False) == pytest.approx(ref_auc_judd(pred, fix), rel=1e-12)
    # and jitter of < 1e-7 barely moves it
    assert hm.auc_judd(pred, fix, random_state=seed) == pytest.approx(ref_auc_judd(pred, fix), abs=1e-3)


def test_metrics_on_consolidated_heatmaps_behave():
    # a prediction equal to the human heatmap beats a prediction elsewhere on every metric
    human = hm.consolidate([[[20.0, 20.0]], [[22.0, 20.0]], [[60.0, 50.0]]], 64, 80, 6.4)
    good = human.copy()
    bad = hm.consolidate([[[70.0, 10.0]]], 64, 80, 6.4)
    fix = human > 0.5
    assert hm.cc(good, human) > hm.cc(bad, human)
    assert hm.nss(good, fix) > hm.nss(bad, fix)
    assert hm.kld(good, human) < hm.kld(bad, human)
    assert hm.sim(good, human) > hm.sim(bad, human)
    assert hm.auc_judd(good, fix, random_state=0) > hm.auc_judd(bad, fix, random_state=0)


# ----------------------------------------------------------------------------------------------------
# the pure-core boundary
# ----------------------------------------------------------------------------------------------------


def test_importing_heatmaps_does_not_import_django():
    code = (
        "import sys; import ranking.core.heatmaps; "
        "bad = [m for m in sys.modules if m == 'django' or m.startswith('django.')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT)},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- coverage counts and 8-bit maps (the release's RichHF path) ------------------------------------


def _summed_disk_maps(point_sets, height, width, radius):
    return sum((hm.disk_map(p, height, width, radius) for p in point_sets), np.zeros((height, width), np.float32))


@pytest.mark.parametrize("seed", range(5))
def test_coverage_counts_equal_the_sum_of_disk_maps(seed):
    rng = np.random.default_rng(seed)
    height, width, radius = 61, 47, 6.3
    # overlapping points of one rater (counted once), points on the border and corners, empty raters
    point_sets = [np.column_stack([rng.uniform(0, width, n), rng.uniform(0, height, n)])
                  for n in rng.integers(0, 5, size=12)]
    point_sets.append(np.array([[0.0, 0.0], [width, height], [1.0, 1.5]]))
    counts = hm.coverage_counts(point_sets, height, width, radius)
    assert counts.dtype == np.uint8
    np.testing.assert_array_equal(counts, _summed_disk_maps(point_sets, height, width, radius))
    np.testing.assert_array_equal(hm.consolidate(point_sets, height, width, radius),
                                  _summed_disk_maps(point_sets, height, width, radius) / np.float32(len(point_sets)))


def test_coverage_counts_widen_the_dtype_past_255_raters():
    point_sets = [np.array([[5.0, 5.0]])] * 300
    counts = hm.coverage_counts(point_sets, 10, 10, 2.0)
    assert counts.dtype == np.uint16 and counts[5, 5] == 300 and counts[0, 0] == 0


def test_coverage_counts_name_the_bad_rater():
    with pytest.raises(ValueError, match=r"point_sets\[1\] must lie inside the image"):
        hm.coverage_counts([[[1, 1]], [[50, 1]]], 10, 10, 2.0)


@pytest.mark.parametrize("n_raters", [1, 3, 7, 20, 255])
def test_heatmap_8bit_equals_rounding_the_float_map(n_raters):
    rng = np.random.default_rng(n_raters)
    point_sets = [rng.uniform(0, 40, size=(int(rng.integers(0, 4)), 2)) for _ in range(n_raters)]
    counts = hm.coverage_counts(point_sets, 40, 40, 5.0)
    expected = np.clip(np.rint(hm.consolidate(point_sets, 40, 40, 5.0) * 255), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(hm.heatmap_8bit(counts, n_raters), expected)


def test_heatmap_8bit_of_no_raters_is_black_and_bad_counts_are_refused():
    assert not hm.heatmap_8bit(np.zeros((3, 3), np.uint8), 0).any()
    with pytest.raises(ValueError, match="counts must lie in 0 … n_raters"):
        hm.heatmap_8bit(np.full((2, 2), 4, np.uint8), 3)

"""Benchmark PrefLab's agreement statistics against the reference packages.

Run from the repository root::

    python bench/bench_agreement.py

Seeded synthetic Likert data (1-5, per-target effect, per-rater offset, noise).  Each timing is the
best of a few repeats of one call; the long-format DataFrame that pingouin needs is built once,
outside its timing.  The target from DESIGN.md is ICC / Krippendorff alpha on 18,000 x 3 ratings in
at most 1 s on the 2-core machine.  Timings on a shared machine are noisy: compare ratios within a run.
"""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ranking.core.agreement import icc, krippendorff_alpha

TARGET_SECONDS = 1.0


def likert(rng, n_targets, n_raters, missing=0.0):
    truth = rng.normal(0, 1, size=(n_targets, 1))
    offset = rng.normal(0, 0.4, size=(1, n_raters))
    scores = np.clip(np.round(truth + offset + rng.normal(0, 0.8, (n_targets, n_raters)) + 3), 1, 5)
    if missing:
        scores[rng.random(scores.shape) < missing] = np.nan
    return scores


def best_time(fn, repeats):
    best, value = np.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def main() -> None:
    import krippendorff
    import pandas as pd
    import pingouin

    rng = np.random.default_rng(20261122)
    rows = []  # (case, method, seconds, value, reference value or None, has target)

    # ICC, 18,000 targets x 3 raters, complete data.
    ratings = likert(rng, 18_000, 3)
    n, k = ratings.shape
    long = pd.DataFrame(
        {"target": np.repeat(np.arange(n), k), "rater": np.tile(np.arange(k), n), "score": ratings.ravel()}
    )  # built outside the timing
    t_ours, ours = best_time(lambda: icc(ratings), 5)
    t_ref, ref = best_time(
        lambda: pingouin.intraclass_corr(long, targets="target", raters="rater", ratings="score"), 2
    )
    ref_icc2 = float(ref.set_index("Type").loc["ICC(A,1)", "ICC"])
    rows.append(("ICC 18,000x3 (ICC2)", "preflab icc", t_ours, ours["ICC2"].value, ref_icc2, True))
    rows.append(("ICC 18,000x3 (ICC2)", "pingouin.intraclass_corr", t_ref, ref_icc2, None, False))

    # Krippendorff alpha, ordinal, 18,000 units x 3 raters, 10 % missing.
    data = likert(rng, 18_000, 3, missing=0.10).T
    t_ours, ours = best_time(lambda: krippendorff_alpha(data, "ordinal"), 5)
    t_ref, ref = best_time(lambda: krippendorff.alpha(data, level_of_measurement="ordinal"), 3)
    rows.append(("alpha ordinal 18,000x3", "preflab krippendorff_alpha", t_ours, ours, ref, True))
    rows.append(("alpha ordinal 18,000x3", "krippendorff.alpha", t_ref, ref, None, False))

    # Krippendorff alpha, 100,000 units x 5 raters, 20 % missing, ordinal and interval.
    data = likert(rng, 100_000, 5, missing=0.20).T
    for level in ("ordinal", "interval"):
        t_ours, ours = best_time(lambda level=level: krippendorff_alpha(data, level), 3)
        t_ref, ref = best_time(lambda level=level: krippendorff.alpha(data, level_of_measurement=level), 1)
        case = f"alpha {level} 100,000x5"
        rows.append((case, "preflab krippendorff_alpha", t_ours, ours, ref, False))
        rows.append((case, "krippendorff.alpha", t_ref, ref, None, False))

    print(f"python {platform.python_version()}, numpy {np.__version__}, pingouin {pingouin.__version__}")
    print("pingouin timing excludes building its long-format DataFrame; best of repeats")
    header = f"{'case':<26} {'method':<28} {'seconds':>9} {'ratio':>8} {'value':>12} {'|diff|':>9}  <=1s"
    print(header)
    print("-" * len(header))
    for i in range(0, len(rows), 2):
        ours_row, ref_row = rows[i], rows[i + 1]
        ratio = ref_row[2] / ours_row[2]
        for case, method, seconds, value, ref_value, has_target in (ours_row, ref_row):
            is_ours = ref_value is not None
            diff = f"{abs(value - ref_value):9.1e}" if is_ours else f"{'':>9}"
            ratio_txt = f"{ratio:7.1f}x" if is_ours else f"{'1.0x':>8}"
            verdict = ""
            if has_target:
                verdict = "PASS" if seconds <= TARGET_SECONDS else "MISS"
            print(f"{case:<26} {method:<28} {seconds:9.4f} {ratio_txt:>8} {value:12.8f} {diff}  {verdict}")
    print("ratio = reference seconds / preflab seconds (higher is faster for preflab)")


if __name__ == "__main__":
    main()

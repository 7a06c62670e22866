"""Benchmark: importing 1,000,000 metric score rows into PostgreSQL, against a naive peer.

Target (issue 9): 1,000,000 score rows import in ≤ 60 s on the 2-core machine.

Set-up (not timed): a fresh PostgreSQL database (``DATABASE_URL``, default
``postgres://postgres@127.0.0.1:5432/preflab_bench_metrics``, dropped and re-created here), migrated, one
project with 100,000 items bulk-loaded with COPY, ten metrics, and two score files of 1,000,000 rows
(100,000 images × 10 metrics, images named by file name): ``scores.csv`` and ``scores.jsonl``.

Measured, each in its own fresh subprocess that first does the same imports and ``django.setup()``, with the
score table emptied before each (``TRUNCATE``, not timed):

* ``csv`` / ``jsonl`` — ``ranking.services.metric_scores.metric_scores_import`` (pyarrow's CSV/JSON reader,
  vectorised checks, images resolved through a dictionary, PostgreSQL ``COPY``, one transaction);
* ``naive`` — the peer: the ``csv`` module, the same checks row by row in Python (image by a dict, finite
  value, duplicate (image, metric), known metric), then ``MetricScore`` objects written with
  ``bulk_create(batch_size=5000)`` in one transaction;
* ``baseline`` — the imports, ``django.setup()`` and one query, nothing else.

Time is the wall time of the import call alone. Peak memory is the growth of the process's peak resident
set: ``VmHWM`` of the measured process minus ``VmHWM`` of the baseline process (as in
``bench_export.py``). Each import's stored row count is checked.

Run from the repository root: ``python bench/bench_metrics_import.py [--n-items N] [--naive-rows N] [--keep]``.

Output of a run on 2026-12-04, on the 2-core machine (shared with other work during the run, load average
about 3, so timings are pessimistic; a separate in-process profile of the CSV import's phases took about 20 s: read
0.6 s, checks 1.7 s, COPY 5.5 s, commit 12.8 s — the commit checks the three deferred foreign keys of every
row)::

    PrefLab metric import benchmark — 3.11.7 on x86_64, 2 CPU(s), PostgreSQL at 127.0.0.1
    set-up: COPY of 100,000 items, 10 metrics, score files of 1,000,000 rows (CSV 45 MB, JSONL 75 MB) in 7.3 s (not timed below)
    baseline process (imports + django.setup + 1 query): peak RSS (VmHWM) 356 MB
    method                                               rows     stored  seconds  peak MB arrow MB
    metric_scores_import, CSV (pyarrow + COPY)      1,000,000  1,000,000     27.7      339      112
    metric_scores_import, JSONL (pyarrow + COPY)    1,000,000  1,000,000     29.0      315       98
    naive csv module + bulk_create                  1,000,000  1,000,000    100.6      216        0
    peak MB = peak RSS (VmHWM) of the measured process − that of the baseline process; arrow MB = pyarrow memory pool peak
    CSV import vs naive: 3.6× faster; naive's peak memory growth is 0.6× the import's
    metric_scores_import, CSV (pyarrow + COPY): 27.7 s for 1,000,000 rows (target ≤ 60 s for 1,000,000): PASS
    metric_scores_import, JSONL (pyarrow + COPY): 29.0 s for 1,000,000 rows (target ≤ 60 s for 1,000,000): PASS
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_export import database_drop, database_recreate, django_setup, peak_rss_mb  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/preflab_bench_metrics"
TARGET_SECONDS = 60.0
SLUG = "bench-metrics"
N_METRICS = 10


# Set-up ------------------------------------------------------------------------------------------


def setup(*, url: str, n_items: int, folder: Path) -> dict:
    """The project, its items (COPY), the metrics, and the two score files."""
    import numpy as np
    import psycopg
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    from django.contrib.auth import get_user_model

    from annotator import services
    from annotator.models import Item
    from ranking.models import Metric

    owner, _ = get_user_model().objects.get_or_create(username="bench-researcher")
    project = services.project_create(owner=owner, name="Bench metrics", overlap=1)
    project.slug = SLUG
    project.save(update_fields=["slug"])
    names = [f"img{i:07d}.png" for i in range(n_items)]
    table = pa.table({
        "project_id": pa.array(np.full(n_items, project.pk)),
        "image": pa.array([f"items/{project.pk}/{n}" for n in names]),
        "original_name": pa.array(names),
        "prompt": pa.array([f"prompt {i // 4}" for i in range(n_items)]),
        "source_model": pa.array([f"model-{i % 7}" for i in range(n_items)]),
        "metadata": pa.array(["{}"] * n_items),
        "width": pa.array(np.full(n_items, 512)), "height": pa.array(np.full(n_items, 512)),
        "image_format": pa.array(["PNG"] * n_items),
        "sha256": pa.array([f"{i:064x}" for i in range(n_items)]),
        "created_at": pa.array(["2026-12-01T00:00:00+00:00"] * n_items),
    })
    sink = pa.BufferOutputStream()
    pa_csv.write_csv(table, sink, write_options=pa_csv.WriteOptions(include_header=False))
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY {Item._meta.db_table} ({', '.join(table.column_names)}) FROM STDIN WITH (FORMAT csv)") as copy:
            copy.write(sink.getvalue().to_pybytes())
        conn.commit()
    for k in range(N_METRICS):
        Metric.objects.create(project=project, name=f"metric_{k}", dimension="aesthetics")

    rng = np.random.default_rng(0)
    n = n_items * N_METRICS
    item_col = np.repeat(np.array(names, dtype=object), N_METRICS)
    metric_col = np.tile(np.array([f"metric_{k}" for k in range(N_METRICS)], dtype=object), n_items)
    values = rng.normal(size=n)
    order = rng.permutation(n)  # rows in no particular order, as a real export might be
    scores = pa.table({"item": pa.array(item_col[order], pa.string()),
                       "metric": pa.array(metric_col[order], pa.string()), "value": pa.array(values[order])})
    with open(folder / "scores.csv", "wb") as f:
        pa_csv.write_csv(scores, f)
    with open(folder / "scores.jsonl", "w") as f:
        for item, metric, value in zip(item_col[order], metric_col[order], values[order].tolist()):
            f.write(json.dumps({"item": item, "metric": metric, "value": value}) + "\n")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return {"items": n_items, "rows": n}


def truncate_scores(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE ranking_metricscore")


# Measured children --------------------------------------------------------------------------------


def naive_import(*, project, path: Path, rows: int | None) -> int:
    """The peer: csv module + row-by-row checks + bulk_create, all or nothing."""
    import csv
    import math

    from django.db import transaction

    from annotator.models import Item
    from ranking.models import Metric, MetricRun, MetricScore

    items = dict(Item.objects.filter(project=project).values_list("original_name", "id"))
    metrics = {m.name: m for m in Metric.objects.filter(project=project)}
    parsed, seen, problems = [], set(), []
    with open(path, newline="") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            if rows is not None and len(parsed) >= rows:
                break
            item_id, metric = items.get(row["item"]), metrics.get(row["metric"])
            try:
                value = float(row["value"])
            except ValueError:
                value = math.nan
            if item_id is None or metric is None or not math.isfinite(value) or (item_id, metric.pk) in seen:
                problems.append(line)
                continue
            seen.add((item_id, metric.pk))
            parsed.append((item_id, metric.pk, value))
    if problems:
        raise SystemExit(f"naive: {len(problems)} bad rows")
    with transaction.atomic():
        run = MetricRun.objects.create(project=project, source="imported", status="succeeded", file_name=path.name)
        run.metrics.set(metrics.values())
        for start in range(0, len(parsed), 5000):
            MetricScore.objects.bulk_create([MetricScore(run=run, item_id=i, metric_id=m, value=v)
                                             for i, m, v in parsed[start:start + 5000]])
    return len(parsed)


def child(*, mode: str, url: str, folder: str, rows: int | None) -> dict:
    """Run in a fresh process: the same imports for every mode, then the measured work."""
    import csv  # noqa: F401

    import pyarrow as pa

    django_setup(url=url)
    from annotator.imports import Upload
    from annotator.models import Project
    from ranking.models import MetricScore
    from ranking.services.metric_scores import metric_scores_import

    project = Project.objects.get(slug=SLUG)
    result: dict = {"mode": mode}
    start = time.perf_counter()
    if mode in ("csv", "jsonl"):
        path = Path(folder) / f"scores.{mode}"
        with open(path, "rb") as f:
            run = metric_scores_import(project=project, upload=Upload(name=path.name, stream=f,
                                                                      size=path.stat().st_size))
        result["rows"] = run.counts["rows"]
    elif mode == "naive":
        result["rows"] = naive_import(project=project, path=Path(folder) / "scores.csv", rows=rows)
    else:
        result["rows"] = MetricScore.objects.values_list("id")[:1].count()
    result["seconds"] = time.perf_counter() - start
    result["stored"] = MetricScore.objects.count()
    result["maxrss_mb"] = peak_rss_mb()
    result["arrow_peak_mb"] = pa.default_memory_pool().max_memory() / 2**20
    return result


def run_child(*, mode: str, url: str, folder: str, rows: int | None = None) -> dict:
    truncate_scores(url)
    cmd = [sys.executable, __file__, "--child", mode, "--folder", folder]
    if rows is not None:
        cmd += ["--naive-rows", str(rows)]
    done = subprocess.run(cmd, env={**os.environ, "DATABASE_URL": url}, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"bench child {mode} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-items", type=int, default=100_000, help=f"Images; rows = images × {N_METRICS}.")
    parser.add_argument("--naive-rows", type=int, default=None, help="Rows for the naive peer (default: all).")
    parser.add_argument("--keep", action="store_true", help="Keep the database afterwards.")
    parser.add_argument("--child", choices=["csv", "jsonl", "naive", "baseline"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", DEFAULT_URL)

    if args.child:
        print(json.dumps(child(mode=args.child, url=url, folder=args.folder, rows=args.naive_rows)))
        return

    print(f"PrefLab metric import benchmark — {platform.python_version()} on {platform.machine()}, "
          f"{os.cpu_count()} CPU(s), PostgreSQL at {urlsplit(url).hostname}")
    database_recreate(url=url)
    try:
        django_setup(url=url)
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        with tempfile.TemporaryDirectory(prefix="preflab-metrics-") as tmp:
            start = time.perf_counter()
            loaded = setup(url=url, n_items=args.n_items, folder=Path(tmp))
            sizes = {fmt: (Path(tmp) / f"scores.{fmt}").stat().st_size / 2**20 for fmt in ("csv", "jsonl")}
            print(f"set-up: COPY of {loaded['items']:,} items, {N_METRICS} metrics, score files of {loaded['rows']:,} "
                  f"rows (CSV {sizes['csv']:.0f} MB, JSONL {sizes['jsonl']:.0f} MB) in "
                  f"{time.perf_counter() - start:.1f} s (not timed below)")
            base = run_child(mode="baseline", url=url, folder=tmp)
            results = [("metric_scores_import, CSV (pyarrow + COPY)", run_child(mode="csv", url=url, folder=tmp)),
                       ("metric_scores_import, JSONL (pyarrow + COPY)", run_child(mode="jsonl", url=url, folder=tmp)),
                       ("naive csv module + bulk_create" + (" [subset]" if args.naive_rows else ""),
                        run_child(mode="naive", url=url, folder=tmp, rows=args.naive_rows))]
        print(f"baseline process (imports + django.setup + 1 query): peak RSS (VmHWM) {base['maxrss_mb']:.0f} MB")
        print(f"{'method':<46} {'rows':>10} {'stored':>10} {'seconds':>8} {'peak MB':>8} {'arrow MB':>8}")
        for label, r in results:
            growth = r["maxrss_mb"] - base["maxrss_mb"]
            print(f"{label:<46} {r['rows']:>10,} {r['stored']:>10,} {r['seconds']:>8.1f} {growth:>8.0f} "
                  f"{r['arrow_peak_mb']:>8.0f}")
            assert r["stored"] == r["rows"], (label, r)
        print("peak MB = peak RSS (VmHWM) of the measured process − that of the baseline process; "
              "arrow MB = pyarrow memory pool peak")
        fast, naive = results[0][1], results[2][1]
        if naive["rows"] == fast["rows"]:
            ratio = (naive["maxrss_mb"] - base["maxrss_mb"]) / max(fast["maxrss_mb"] - base["maxrss_mb"], 1)
            print(f"CSV import vs naive: {naive['seconds'] / fast['seconds']:.1f}× faster; naive's peak memory "
                  f"growth is {ratio:.1f}× the import's")
        for label, r in results[:2]:
            ok = r["seconds"] <= TARGET_SECONDS and r["rows"] >= 1_000_000
            print(f"{label}: {r['seconds']:.1f} s for {r['rows']:,} rows (target ≤ {TARGET_SECONDS:.0f} s for "
                  f"1,000,000): {'PASS' if ok else 'MISS'}")
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            database_drop(url=url)


if __name__ == "__main__":
    main()

"""Benchmark: writing a dataset release of 1,000,000 judgments + 100,000 annotations, beside the judgments export.

Target (issue #14): the release (``ranking.services.releases.release_write``: judgments, rankings,
annotations, items, fits and RichHF tables + the README card; no zip, no images) of a project with
1,000,000 judgments and 100,000 rich-feedback annotations is written in ≤ 60 s with ≤ 500 MB peak memory.

Set-up (not timed): a fresh PostgreSQL database (``--database-url``, default
``postgres://postgres@127.0.0.1:5432/preflab_bench_release``, dropped and re-created here), migrated, then
the same project as ``bench_export.py`` bulk-loaded with its helpers (``project_setup``, ``bulk_load``: 5,000
items, 2,000 raters with demographics, 200,000 pairwise tasks × 5 raters, 1,000,000 assignments and
judgments), then 100,000 rich-feedback annotations added with COPY: one ``rich`` task per item
(``item_b`` null), each answered by ``n_annotations / n_items`` distinct raters (one answered assignment
per annotation, ``left_item`` = the item, ``right_item`` null), 0–3 points (``artifact`` or
``misalignment``, x and y fractions in [0, 1]), ``misaligned_words`` ``[0]`` or ``[]``, the four default
1–5 scores, the current instruction version. Foreign keys, unique keys and checks stay on during the load.

Measured, each in its own fresh subprocess that first does the same imports and ``django.setup()``:

* ``release`` — ``release_write(project, root, params=_params(k=5), salt="bench", cutoffs=<max ids>)`` into
  a new folder. Each table writer (and ``demographic_table``) is wrapped, in that process only, to time it
  and read the process's peak RSS and Arrow's peak after it: the per-table breakdown.
* ``export`` — ``annotator.exports.judgments_export(fmt="parquet")`` of the same project to a file: the
  existing export, the side-by-side peer of the release's judgments table.
* ``baseline`` — the imports, ``django.setup()`` and one query, nothing else.

Time is the wall time of the measured call alone. Peak memory is the growth of the process's peak resident
set: ``VmHWM`` of the measured process minus ``VmHWM`` of the baseline process (as in ``bench_export.py``).
Arrow's own peak (``pyarrow.default_memory_pool().max_memory()``) is printed too.

Run from the repository root: ``python bench/bench_release.py [--n-judgments N] [--n-annotations N] [--keep] [--reuse]``.

Output of a run on 2026-12-05, on the 2-core machine (another job's tests running beside it), on the database
kept by an earlier ``--keep`` run (``--reuse``; that run's set-up loaded it in 97.0 s). Before this run the same
measurement gave 71.9 s (richhf 37.8 s: per-rater full-size disk maps and Pillow's PNG encoder; judgments
30.4 s: per-row Python for pseudonyms and demographics, with the cyclic GC running) and an absolute peak of
715 MB (the imports pulled in torch):

    PrefLab release benchmark — 3.11.7 on x86_64, 2 CPU(s), PostgreSQL at 127.0.0.1
    set-up (reused): COPY of 5,000 items, 2,000 raters + demographics, 200,000 pairwise tasks, 1,000,000 judgments; 5,000 rich tasks, 100,000 annotations (20 raters per item, 149,773 points) in 0.6 s (not timed below)
    baseline process (imports + django.setup + 1 query): peak RSS (VmHWM) 220 MB
    method                                               rows  seconds  peak MB arrow MB   out MB
    release_write (6 tables + card, folder)         1,110,000     31.4      246       25     58.6
    judgments_export (Parquet, zstd, file)          1,000,000     11.5      167       34     36.9
    peak MB = peak RSS (VmHWM) of the measured process − that of the baseline process; arrow MB = pyarrow memory pool peak
    absolute peak RSS of the release process: 467 MB (of which the baseline's 220 MB: the imports and django.setup)
    release, step by step (peak MB = VmHWM after the step − baseline; monotone):
      step                 rows  seconds  share  peak MB arrow MB  file MB
      demographics                   0.0     0%        1        0
      judgments       1,000,000      7.8    25%      198       25     34.3
      rankings                0      0.0     0%      198       25
      annotations       100,000      2.2     7%      246       25      2.5
      items               5,000      0.0     0%      246       25      0.1
      fits                    0      0.0     0%      246       25
      richhf              5,000     21.3    68%      246       25     21.7
      card + rest                    0.1     0%
    release vs export of the same judgments: 7.8 s for the release's judgments table vs 11.5 s for judgments_export
    time   31.4 s  (target ≤ 60 s): PASS
    memory 246 MB (target ≤ 500 MB): PASS
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

sys.path.insert(0, str(Path(__file__).parent))
import bench_export  # also puts the repository root on sys.path

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/preflab_bench_release"
TARGET_SECONDS = 60.0
TARGET_MB = 500.0
SLUG = "bench-release"
TABLES = ("judgments", "rankings", "annotations", "items", "fits", "richhf")


# Set-up: rich-feedback annotations with COPY --------------------------------------------------------


def annotations_load(*, url: str, project, n_annotations: int, seed: int = 1) -> dict:
    """COPY one rich task per item, and ``n_annotations`` answered assignments + annotations spread evenly
    over the items (each task answered by distinct raters). Returns the counts."""
    import numpy as np
    import psycopg
    import pyarrow as pa

    from annotator import selectors
    from annotator.models import Annotation, Assignment, Task

    rng = np.random.default_rng(seed)
    instruction = selectors.instruction_current(project=project)
    dims = [d["name"] for d in project.likert_dimensions]
    t0 = 1_795_500_000_000_000  # after the judgments, in microseconds
    with psycopg.connect(url) as conn:
        item_ids = np.array([r[0] for r in conn.execute(
            "SELECT id FROM annotator_item WHERE project_id = %s ORDER BY id", [project.pk])], dtype=np.int64)
        rater_ids = np.array([r[0] for r in conn.execute(
            "SELECT id FROM annotator_rater WHERE project_id = %s ORDER BY id", [project.pk])], dtype=np.int64)
        n_items, n_raters = item_ids.size, rater_ids.size
        per_item = -(-n_annotations // n_items)
        if per_item > n_raters:
            raise SystemExit("bench: more annotations per item than raters.")
        task0, assignment0, annotation0 = _next_ids(conn, Task, Assignment, Annotation)

        # One rich task per item; annotation a answers task a % n_items, the (a // n_items)-th of its raters.
        task_ids = np.arange(task0, task0 + n_items, dtype=np.int64)
        a = np.arange(n_annotations, dtype=np.int64)
        item_of = a % n_items
        slot = a // n_items
        counts = np.bincount(item_of, minlength=n_items)
        _copy(conn, Task, n_items, {
            "id": pa.array(task_ids), "project": project.pk, "kind": "rich",
            "item_a": pa.array(item_ids), "item_b": pa.nulls(n_items, pa.int64()),
            "n_assigned": pa.array(counts), "n_judgments": pa.array(counts),
            "max_raters": pa.array(np.maximum(counts, 1)),
            "shuffle_key": pa.array(rng.integers(0, 2**31 - 1, n_items)),
            "created_at": bench_export._timestamps(np.full(n_items, t0)),
        })
        rater_of = rater_ids[(item_of * 7 + slot) % n_raters]  # distinct per task while slot < n_raters
        shown = t0 + a * 1_000_000
        submitted = shown + rng.integers(2_000_000, 60_000_000, n_annotations)
        assignment_ids = np.arange(assignment0, assignment0 + n_annotations, dtype=np.int64)
        _copy(conn, Assignment, n_annotations, {
            "id": pa.array(assignment_ids), "task": pa.array(task_ids[item_of]), "rater": pa.array(rater_of),
            "project": project.pk, "left_item": pa.array(item_ids[item_of]), "right_item": pa.nulls(n_annotations, pa.int64()),
            "state": "answered",
            "shown_at": bench_export._timestamps(shown), "answered_at": bench_export._timestamps(submitted),
        })
        n_points = rng.integers(0, 4, n_annotations)
        xy = np.round(rng.random((n_annotations, 3, 2)), 4)
        kinds = rng.random((n_annotations, 3)) < 0.7
        points = [json.dumps([{"x": float(xy[i, k, 0]), "y": float(xy[i, k, 1]),
                               "kind": "artifact" if kinds[i, k] else "misalignment"} for k in range(n_points[i])])
                  for i in range(n_annotations)]
        scores = rng.integers(1, 6, (n_annotations, len(dims)))
        _copy(conn, Annotation, n_annotations, {
            "id": pa.array(np.arange(annotation0, annotation0 + n_annotations, dtype=np.int64)),
            "idempotency_key": bench_export._uuids(rng, n_annotations),
            "project": project.pk, "task": pa.array(task_ids[item_of]), "assignment": pa.array(assignment_ids),
            "rater": pa.array(rater_of), "instruction_version": instruction.pk, "item": pa.array(item_ids[item_of]),
            "kind": "rich",
            "points": pa.array(points),
            "misaligned_words": pa.array(np.where(rng.random(n_annotations) < 0.3, "[0]", "[]")),
            "scores": pa.array([json.dumps(dict(zip(dims, map(int, row)))) for row in scores]),
            "answers": "{}",
            "response_time_ms": pa.array((submitted - shown) // 1000),
            "shown_at": bench_export._timestamps(shown), "submitted_at": bench_export._timestamps(submitted),
        })
        # An annotation counts in the rater's n_judgments, as annotator.services.answers does.
        conn.execute(
            "UPDATE annotator_rater r SET n_judgments = r.n_judgments + c.n FROM (SELECT rater_id, COUNT(*) AS n "
            "FROM annotator_annotation WHERE project_id = %s GROUP BY rater_id) c WHERE r.id = c.rater_id",
            [project.pk],
        )
        bench_export._sync_sequences(conn, [Task, Assignment, Annotation])
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return {"tasks": n_items, "annotations": n_annotations, "per_item": per_item,
            "points": int(n_points.sum())}


def _copy(conn, model, n_rows, columns):
    bench_export._copy(conn=conn, model=model, columns=columns, n_rows=n_rows)


def _next_ids(conn, *models):
    return [bench_export._next_id(conn, m) for m in models]


def _cutoffs(url: str, project_id: int) -> dict:
    import psycopg

    with psycopg.connect(url) as conn:
        judgment = conn.execute("SELECT MAX(id) FROM annotator_judgment WHERE project_id = %s", [project_id]).fetchone()[0]
        annotation = conn.execute("SELECT MAX(id) FROM annotator_annotation WHERE project_id = %s",
                                  [project_id]).fetchone()[0]
    return {"judgment": judgment, "annotation": annotation, "ranking": None}


# Measured children ----------------------------------------------------------------------------------


def _folder_mb(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 2**20
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def child(*, mode: str, url: str, out: str, cutoffs: dict) -> dict:
    """Run in a fresh process: the same imports for every mode, then the measured work."""
    import pandas  # noqa: F401
    import pyarrow as pa
    import pyarrow.parquet as pq  # noqa: F401

    bench_export.django_setup(url=url)
    from annotator.exports import judgments_export
    from annotator.models import Judgment, Project
    from ranking import release_files
    from ranking.services import releases

    peak = bench_export.peak_rss_mb
    pool = pa.default_memory_pool()
    project = Project.objects.get(slug=SLUG)
    result: dict = {"mode": mode}
    if mode == "release":
        steps: dict = {}

        def timed(name, fn):
            def wrapper(*args, **kwargs):
                t = time.perf_counter()
                value = fn(*args, **kwargs)
                steps[name] = {"seconds": time.perf_counter() - t, "hwm_mb": peak(),
                               "arrow_mb": pool.max_memory() / 2**20,
                               "rows": value.get("rows") if isinstance(value, dict) and name in TABLES else None}
                return value
            return wrapper

        release_files.demographic_table = timed("demographics", release_files.demographic_table)
        for name in TABLES:
            setattr(release_files, f"write_{name}", timed(name, getattr(release_files, f"write_{name}")))
        result["hwm_before_mb"] = peak()
    start = time.perf_counter()
    if mode == "release":
        manifest = releases.release_write(project=project, root=Path(out), params=releases._params(k=5),
                                          salt="bench", cutoffs=cutoffs)
        result["rows"] = sum(t["rows"] for t in manifest["tables"].values())
        result["tables"] = {name: t["rows"] for name, t in manifest["tables"].items()}
        result["steps"] = steps
    elif mode == "export":
        with open(out, "wb") as f:
            report = judgments_export(project=project, fmt="parquet", out=f)
        result["rows"] = report.n_rows
    else:
        result["rows"] = Judgment.objects.filter(project=project).order_by("id").values_list("id")[:1].count()
    result["seconds"] = time.perf_counter() - start
    result["maxrss_mb"] = peak()
    result["arrow_peak_mb"] = pool.max_memory() / 2**20
    if mode != "baseline":
        result["out_mb"] = _folder_mb(Path(out))
    if mode == "release":
        result["table_mb"] = {p.parent.name: p.stat().st_size / 2**20 for p in Path(out).glob("*/*.parquet")}
    return result


def run_child(*, mode: str, url: str, out: str, cutoffs: dict | None = None) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, "--out", out, "--database-url", url,
           "--cutoffs", json.dumps(cutoffs or {})]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"bench child {mode} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _project(slug: str):
    from annotator.models import Project

    return Project.objects.get(slug=slug)


def _counts(slug: str) -> tuple[dict, dict]:
    """The set-up figures of a kept database (``--reuse``), counted from its tables."""
    from annotator.models import Annotation, Item, Judgment, Rater, Task

    project = _project(slug)
    annotations = Annotation.objects.filter(project=project)
    n_items = Item.objects.filter(project=project).count()
    n_annotations = annotations.count()
    loaded = {"items": n_items, "raters": Rater.objects.filter(project=project).count(),
              "tasks": Task.objects.filter(project=project, item_b__isnull=False).count(),
              "judgments": Judgment.objects.filter(project=project).count()}
    n_points = sum(len(p or []) for p in annotations.values_list("points", flat=True).iterator(chunk_size=10_000))
    rich = {"tasks": Task.objects.filter(project=project, item_b__isnull=True).count(),
            "annotations": n_annotations, "per_item": n_annotations // max(n_items, 1), "points": n_points}
    return loaded, rich


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-judgments", type=int, default=1_000_000)
    parser.add_argument("--n-annotations", type=int, default=100_000)
    parser.add_argument("--database-url", default=DEFAULT_URL,
                        help="PostgreSQL database to drop, re-create and fill (its name must contain 'bench').")
    parser.add_argument("--keep", action="store_true", help="Keep the database afterwards.")
    parser.add_argument("--reuse", action="store_true",
                        help="Reuse a database kept by an earlier --keep run (same sizes) instead of loading it again.")
    parser.add_argument("--child", choices=["release", "export", "baseline"], help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--cutoffs", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    url = args.database_url
    if "bench" not in urlsplit(url).path:
        raise SystemExit("bench: the database is dropped and re-created; its name must contain 'bench'.")

    if args.child:
        print(json.dumps(child(mode=args.child, url=url, out=args.out, cutoffs=json.loads(args.cutoffs))))
        return

    print(f"PrefLab release benchmark — {platform.python_version()} on {platform.machine()}, "
          f"{os.cpu_count()} CPU(s), PostgreSQL at {urlsplit(url).hostname}")
    if not args.reuse:
        bench_export.database_recreate(url=url)
    try:
        bench_export.django_setup(url=url)
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        start = time.perf_counter()
        if args.reuse:
            loaded, rich = _counts(SLUG)
        else:
            project = bench_export.project_setup(slug=SLUG)
            loaded = bench_export.bulk_load(url=url, project=project, n_judgments=args.n_judgments)
            project.refresh_from_db()
            rich = annotations_load(url=url, project=project, n_annotations=args.n_annotations)
        project = _project(SLUG)
        print(f"set-up{' (reused)' if args.reuse else ''}: COPY of {loaded['items']:,} items, {loaded['raters']:,} raters + demographics, "
              f"{loaded['tasks']:,} pairwise tasks, {loaded['judgments']:,} judgments; {rich['tasks']:,} rich "
              f"tasks, {rich['annotations']:,} annotations ({rich['per_item']} raters per item, "
              f"{rich['points']:,} points) in {time.perf_counter() - start:.1f} s (not timed below)")
        cutoffs = _cutoffs(url, project.pk)
        with tempfile.TemporaryDirectory(prefix="preflab-release-") as tmp:
            base = run_child(mode="baseline", url=url, out=os.devnull)
            release = run_child(mode="release", url=url, out=f"{tmp}/release", cutoffs=cutoffs)
            export = run_child(mode="export", url=url, out=f"{tmp}/judgments.parquet")
        assert release["tables"]["judgments"] == loaded["judgments"], release["tables"]
        assert release["tables"]["annotations"] == rich["annotations"], release["tables"]
        assert export["rows"] == loaded["judgments"], export["rows"]

        b = base["maxrss_mb"]
        print(f"baseline process (imports + django.setup + 1 query): peak RSS (VmHWM) {b:.0f} MB")
        print(f"{'method':<46} {'rows':>10} {'seconds':>8} {'peak MB':>8} {'arrow MB':>8} {'out MB':>8}")
        for label, r in (("release_write (6 tables + card, folder)", release),
                         ("judgments_export (Parquet, zstd, file)", export)):
            print(f"{label:<46} {r['rows']:>10,} {r['seconds']:>8.1f} {r['maxrss_mb'] - b:>8.0f} "
                  f"{r['arrow_peak_mb']:>8.0f} {r['out_mb']:>8.1f}")
        print("peak MB = peak RSS (VmHWM) of the measured process − that of the baseline process; "
              "arrow MB = pyarrow memory pool peak")
        print(f"absolute peak RSS of the release process: {release['maxrss_mb']:.0f} MB (of which the baseline's "
              f"{b:.0f} MB: the imports and django.setup)")
        print("release, step by step (peak MB = VmHWM after the step − baseline; monotone):")
        print(f"  {'step':<14} {'rows':>10} {'seconds':>8} {'share':>6} {'peak MB':>8} {'arrow MB':>8} {'file MB':>8}")
        total = release["seconds"]
        rest = total
        for name in ("demographics", *TABLES):
            s = release["steps"].get(name)
            if s is None:
                continue
            rest -= s["seconds"]
            rows = "" if s["rows"] is None else f"{s['rows']:,}"
            mb = release["table_mb"].get(name)
            line = (f"  {name:<14} {rows:>10} {s['seconds']:>8.1f} {s['seconds'] / total:>6.0%} "
                    f"{s['hwm_mb'] - b:>8.0f} {s['arrow_mb']:>8.0f} {'' if mb is None else f'{mb:.1f}':>8}")
            print(line.rstrip())
        print(f"  {'card + rest':<14} {'':>10} {rest:>8.1f} {rest / total:>6.0%}")
        growth = release["maxrss_mb"] - b
        ok_time, ok_mem = release["seconds"] <= TARGET_SECONDS, growth <= TARGET_MB
        print(f"release vs export of the same judgments: {release['steps']['judgments']['seconds']:.1f} s for the "
              f"release's judgments table vs {export['seconds']:.1f} s for judgments_export")
        print(f"time   {release['seconds']:.1f} s  (target ≤ {TARGET_SECONDS:.0f} s): {'PASS' if ok_time else 'FAIL'}")
        print(f"memory {growth:.0f} MB (target ≤ {TARGET_MB:.0f} MB): {'PASS' if ok_mem else 'FAIL'}")
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            bench_export.database_drop(url=url)


if __name__ == "__main__":
    main()

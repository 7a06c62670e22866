"""Benchmark: exporting 1,000,000 judgments to Parquet, streamed, against a naive peer.

Target (DESIGN.md): ≤ 30 s and peak memory ≤ 300 MB on the 2-core machine.

Set-up (not timed): a fresh PostgreSQL database (``DATABASE_URL``, default
``postgres://postgres@127.0.0.1:5432/preflab_bench``, dropped and re-created here), migrated, then one
project bulk-loaded with PostgreSQL COPY: 5,000 items, 2,000 raters with demographics, 200,000 pairwise
tasks judged by 5 raters each, one answered assignment per judgment and 1,000,000 judgments, all
consistent with the schema's constraints (foreign keys, unique keys and checks stay on during the load).

Measured, each in its own fresh subprocess that first does the same imports and ``django.setup()``:

* ``streamed`` — ``annotator.exports.judgments_export(fmt="parquet")`` to a file (keyset pages of
  50,000 ids, one query per page with every related field joined, zstd).
* ``naive`` — the peer: ``pandas.DataFrame(list(qs.values(...)))`` over the same columns and joins,
  then ``DataFrame.to_parquet`` (pyarrow engine).
* ``baseline`` — the imports, ``django.setup()`` and one query, nothing else.

Time is the wall time of the export call alone. Peak memory is the growth of the process's peak
resident set: ``VmHWM`` (``/proc/self/status``) of the measured process minus ``VmHWM`` of the baseline
process. (Not ``ru_maxrss``: on Linux it survives ``execve``, so a child of the large loader process
starts with the loader's peak.) Arrow's own peak (``pyarrow.default_memory_pool().max_memory()``) is
printed too.

Run from the repository root: ``python bench/bench_export.py [--n-judgments N] [--naive-rows N] [--keep]``.

Output of a run on 2026-11-22, on the 2-core machine (shared with other work during the run, so timings
are pessimistic):

    PrefLab export benchmark — 3.11.7 on x86_64, 2 CPU(s), PostgreSQL at 127.0.0.1
    set-up: COPY of 5,000 items, 2,000 raters + demographics, 200,000 tasks, 1,000,000 assignments and judgments in 123.4 s (not timed below)
    baseline process (imports + django.setup + 1 query): peak RSS (VmHWM) 146 MB
    method                                             rows  seconds  peak MB arrow MB  file MB
    streamed judgments_export (Parquet, zstd)     1,000,000     14.2      165       34     36.9
    naive pandas.DataFrame(list(values()))        1,000,000     36.0     3022      345     26.0
    peak MB = peak RSS (VmHWM) of the measured process − that of the baseline process; arrow MB = pyarrow memory pool peak
    streamed vs naive: 2.5× faster, 18× less peak memory
    time   14.2 s  (target ≤ 30 s): PASS
    memory 165 MB (target ≤ 300 MB): PASS
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/preflab_bench"
TARGET_SECONDS = 30.0
TARGET_MB = 300.0
SLUG = "bench-export"


# Database set-up ----------------------------------------------------------------------------------


def database_recreate(*, url: str) -> None:
    """Drop and create the database named in ``url``, connected to the server's ``postgres`` database."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def database_drop(*, url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parts.path.lstrip("/")}" WITH (FORCE)')


def django_setup(*, url: str) -> None:
    """Configure Django from the environment the way production does (DEBUG off) and set it up."""
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ.setdefault("SECRET_KEY", "bench-" + os.urandom(24).hex())
    os.environ["DEBUG"] = "0"
    os.environ.setdefault("PREFLAB_VAR_DIR", tempfile.mkdtemp(prefix="preflab-bench-"))
    os.environ.setdefault("CELERY_BROKER_URL", "memory://")
    import django

    django.setup()


# Bulk load with COPY ------------------------------------------------------------------------------


def _copy(*, conn, model, columns: dict, n_rows: int, chunk_rows: int = 200_000) -> None:
    """COPY ``n_rows`` rows into ``model``'s table.

    ``columns`` maps field names to pyarrow arrays (length ``n_rows``) or constants. Concrete fields
    not given get their model default, or "" for a text field that may be blank (so a new field does not
    break the load).
    """
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    arrays, names = [], []
    for field in model._meta.concrete_fields:
        if field.name in columns:
            value = columns[field.name]
        elif field.attname in columns:
            value = columns[field.attname]
        elif field.null:
            value = None
        elif field.has_default():
            value = field.get_default()
        elif field.blank and field.empty_strings_allowed:
            value = ""  # a text field that may be blank (e.g. a reason only set later)
        else:
            raise SystemExit(f"bench: no value for {model.__name__}.{field.name}; update the loader.")
        if not isinstance(value, (pa.Array, pa.ChunkedArray)):
            if isinstance(value, (list, dict)):
                value = json.dumps(value)
            value = pa.nulls(n_rows, pa.string()) if value is None else pa.repeat(value, n_rows)
        if len(value) != n_rows:
            raise SystemExit(f"bench: {model.__name__}.{field.name} has {len(value)} values, not {n_rows}.")
        arrays.append(value)
        names.append(field.column)
    table = pa.table(arrays, names=names)
    sql = f'COPY {model._meta.db_table} ({", ".join(names)}) FROM STDIN WITH (FORMAT csv)'
    options = pa_csv.WriteOptions(include_header=False)
    with conn.cursor() as cur, cur.copy(sql) as copy:
        for start in range(0, n_rows, chunk_rows):
            sink = pa.BufferOutputStream()
            pa_csv.write_csv(table.slice(start, chunk_rows), sink, write_options=options)
            copy.write(sink.getvalue().to_pybytes())


def _next_id(conn, model) -> int:
    return conn.execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {model._meta.db_table}").fetchone()[0]


def _sync_sequences(conn, models) -> None:
    for model in models:
        table = model._meta.db_table
        conn.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT COALESCE(MAX(id), 1) FROM {table}))"
        )


def _uuids(rng, n: int):
    import pyarrow as pa

    hexed = rng.bytes(16 * n).hex()
    return pa.array([hexed[i:i + 32] for i in range(0, 32 * n, 32)], pa.string())


def _timestamps(micros):
    import pyarrow as pa

    return pa.array(micros, pa.int64()).cast(pa.timestamp("us", tz="UTC"))


def bulk_load(
    *, url: str, project, n_judgments: int, n_items: int = 5_000, n_raters: int = 2_000, overlap: int = 5,
    seed: int = 0,
) -> dict:
    """COPY items, raters (+ demographics), tasks, answered assignments and judgments into ``project``.

    Each task is judged by ``overlap`` distinct raters (one assignment and one judgment each), so there
    are ``n_judgments // overlap`` tasks, all full (``n_assigned == overlap``). Returns the row counts.
    """
    import numpy as np
    import psycopg
    import pyarrow as pa

    from annotator import selectors
    from annotator.models import Assignment, Demographics, Item, Judgment, Rater, Task

    rng = np.random.default_rng(seed)
    n_tasks = n_judgments // overlap
    n_judgments = n_tasks * overlap
    if n_raters < overlap:
        raise SystemExit("bench: need at least `overlap` raters.")
    instruction = selectors.instruction_current(project=project)
    consent = selectors.consent_current(project=project)
    t0 = 1_795_000_000_000_000  # 2026-11-18, in microseconds
    with psycopg.connect(url) as conn:
        item0, rater0 = _next_id(conn, Item), _next_id(conn, Rater)
        task0, assignment0, judgment0 = _next_id(conn, Task), _next_id(conn, Assignment), _next_id(conn, Judgment)
        demo0 = _next_id(conn, Demographics)

        item_ids = np.arange(item0, item0 + n_items, dtype=np.int64)
        sha = [f"{(item0 + i) * 2654435761 % (1 << 64):016x}" * 4 for i in range(n_items)]
        _copy(conn=conn, model=Item, n_rows=n_items, columns={
            "id": pa.array(item_ids),
            "project": project.pk,
            "image": pa.array([f"items/{project.pk}/{s[:2]}/{s}.png" for s in sha]),
            "original_name": pa.array([f"img{i:06d}.png" for i in range(n_items)]),
            "prompt": pa.array([f"prompt {i // 4}" for i in range(n_items)]),
            "source_model": pa.array([f"model-{i % 7}" for i in range(n_items)]),
            "metadata": "{}",
            "width": 512, "height": 512, "image_format": "PNG",
            "sha256": pa.array(sha),
            "created_at": _timestamps(np.full(n_items, t0)),
        })

        rater_ids = np.arange(rater0, rater0 + n_raters, dtype=np.int64)
        crowd = np.arange(n_raters) % 2 == 0
        _copy(conn=conn, model=Rater, n_rows=n_raters, columns={
            "id": pa.array(rater_ids),
            "project": project.pk,
            "public_id": pa.array([f"b{project.pk}x{rater0 + i:09d}" for i in range(n_raters)]),
            "source": pa.array(np.where(crowd, "prolific", "invite")),
            "prolific_pid": pa.array([f"PID{rater0 + i:010d}" if c else "" for i, c in enumerate(crowd)]),
            "study_id": pa.array(np.where(crowd, "STUDY1", "")),
            "session_id": pa.array(np.where(crowd, "SESSION1", "")),
            "consent_version": consent.pk if consent else None,
            "consented_at": _timestamps(np.full(n_raters, t0)),
            "acknowledged_instruction": instruction.pk,
            "acknowledged_at": _timestamps(np.full(n_raters, t0)),
            "n_judgments": pa.array(np.full(n_raters, 0, dtype=np.int64)),  # fixed below
            "created_at": _timestamps(np.full(n_raters, t0)),
        })
        choices = {name: [v for v, _ in Demographics._meta.get_field(name).choices] + [""]
                   for name in ("age_band", "gender", "expertise", "colour_vision", "device")}
        _copy(conn=conn, model=Demographics, n_rows=n_raters, columns={
            "id": pa.array(np.arange(demo0, demo0 + n_raters, dtype=np.int64)),
            "rater": pa.array(rater_ids),
            "country": pa.array(rng.choice(["Portugal", "Kenya", "India", "Brazil", "prefer_not", ""], n_raters)),
            "languages": pa.array(rng.choice(["en", "pt, en", "hi, en", ""], n_raters)),
            **{name: pa.array(rng.choice(values, n_raters)) for name, values in choices.items()},
            "submitted_at": _timestamps(np.full(n_raters, t0)),
        })

        # Distinct pairs (a < b) of items for the tasks.
        codes = np.empty(0, dtype=np.int64)
        while codes.size < n_tasks:
            a = rng.integers(0, n_items, size=int(n_tasks * 1.2) + 10)
            b = rng.integers(0, n_items, size=a.size)
            keep = a != b
            lo, hi = np.minimum(a, b)[keep], np.maximum(a, b)[keep]
            codes = np.unique(np.concatenate([codes, lo * n_items + hi]))
        codes = rng.permutation(codes)[:n_tasks]
        item_a, item_b = item_ids[codes // n_items], item_ids[codes % n_items]
        task_ids = np.arange(task0, task0 + n_tasks, dtype=np.int64)
        _copy(conn=conn, model=Task, n_rows=n_tasks, columns={
            "id": pa.array(task_ids),
            "project": project.pk,
            "kind": "pairwise",
            "item_a": pa.array(item_a), "item_b": pa.array(item_b),
            "n_assigned": pa.array(np.full(n_tasks, overlap, dtype=np.int64)),
            "n_judgments": pa.array(np.full(n_tasks, overlap, dtype=np.int64)),
            "shuffle_key": pa.array(rng.integers(0, 2**31 - 1, n_tasks)),
            "created_at": _timestamps(np.full(n_tasks, t0)),
        })

        # Judgment j answers task j // overlap; its rater is (task + j % overlap) mod n_raters, distinct per task.
        j = np.arange(n_judgments, dtype=np.int64)
        task_of = j // overlap
        rater_of = rater_ids[(task_of + j % overlap) % n_raters]
        swap = rng.random(n_judgments) < 0.5
        left = np.where(swap, item_b[task_of], item_a[task_of])
        right = np.where(swap, item_a[task_of], item_b[task_of])
        u = rng.random(n_judgments)
        choice = np.where(u < 0.45, "left", np.where(u < 0.9, "right", "tie"))
        is_tie = choice == "tie"
        winner = np.where(choice == "left", left, right)
        loser = np.where(choice == "left", right, left)
        shown = t0 + j * 250_000  # one judgment every 0.25 s
        submitted = shown + rng.integers(500_000, 20_000_000, n_judgments)
        assignment_ids = np.arange(assignment0, assignment0 + n_judgments, dtype=np.int64)
        _copy(conn=conn, model=Assignment, n_rows=n_judgments, columns={
            "id": pa.array(assignment_ids),
            "task": pa.array(task_ids[task_of]),
            "rater": pa.array(rater_of),
            "project": project.pk,
            "left_item": pa.array(left), "right_item": pa.array(right),
            "state": "answered",
            "shown_at": _timestamps(shown), "answered_at": _timestamps(submitted),
        })
        _copy(conn=conn, model=Judgment, n_rows=n_judgments, columns={
            "id": pa.array(np.arange(judgment0, judgment0 + n_judgments, dtype=np.int64)),
            "idempotency_key": _uuids(rng, n_judgments),
            "project": project.pk,
            "task": pa.array(task_ids[task_of]),
            "assignment": pa.array(assignment_ids),
            "rater": pa.array(rater_of),
            "instruction_version": instruction.pk,
            "left_item": pa.array(left), "right_item": pa.array(right),
            "choice": pa.array(choice),
            "winner": pa.array(winner, mask=is_tie), "loser": pa.array(loser, mask=is_tie),
            "is_tie": pa.array(is_tie),
            "flags": pa.array(np.where(rng.random(n_judgments) < 0.05, '["both bad"]', "[]")),
            "response_time_ms": pa.array((submitted - shown) // 1000),
            "shown_at": _timestamps(shown), "submitted_at": _timestamps(submitted),
        })
        conn.execute(
            "UPDATE annotator_rater r SET n_judgments = c.n FROM (SELECT rater_id, COUNT(*) AS n FROM "
            "annotator_judgment WHERE project_id = %s GROUP BY rater_id) c WHERE r.id = c.rater_id",
            [project.pk],
        )
        _sync_sequences(conn, [Item, Rater, Demographics, Task, Assignment, Judgment])
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return {"items": n_items, "raters": n_raters, "tasks": n_tasks, "judgments": n_judgments,
            "rater_ids": (int(rater_ids[0]), int(rater_ids[-1]))}


def project_setup(*, slug: str, overlap: int = 5, username: str = "bench-researcher"):
    """A project with consent and instructions, made through the services."""
    from django.contrib.auth import get_user_model

    from annotator import services

    owner, _ = get_user_model().objects.get_or_create(username=username)
    project = services.project_create(owner=owner, name="Bench", overlap=overlap)
    project.slug = slug
    project.pairwise_flags = ["both bad"]
    project.save(update_fields=["slug", "pairwise_flags"])
    services.consent_version_create(project=project, text="You agree to take part.")
    services.instruction_version_create(project=project, text="Pick the better image.", created_by=owner)
    return project


def peak_rss_mb() -> float:
    """This process's peak resident set size since it was exec'd (VmHWM), in MiB.

    Not ``ru_maxrss``: on Linux that survives ``execve`` and so starts at the parent's size when the
    parent is larger (as the loader is here), hiding the child's own peak.
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# Measured children --------------------------------------------------------------------------------


def child(*, mode: str, url: str, out: str, rows: int | None) -> dict:
    """Run in a fresh process: the same imports for every mode, then the measured work."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq  # noqa: F401

    django_setup(url=url)
    from annotator.exports import COLUMNS, judgments_export
    from annotator.models import Judgment, Project

    project = Project.objects.get(slug=SLUG)
    result: dict = {"mode": mode}
    start = time.perf_counter()
    if mode == "streamed":
        with open(out, "wb") as f:
            report = judgments_export(project=project, fmt="parquet", out=f)
        result["rows"] = report.n_rows
    elif mode == "naive":
        plain = {"flags_json": "flags", "submitted_at_us": "submitted_at", "shown_at_us": "shown_at"}
        lookups = [plain.get(lookup, lookup) for _, lookup, _ in COLUMNS]
        qs = Judgment.objects.filter(project=project).order_by("id").values(*lookups)
        if rows is not None:
            qs = qs[:rows]
        frame = pd.DataFrame(list(qs))
        frame["flags"] = frame["flags"].map(json.dumps)
        frame.to_parquet(out, engine="pyarrow", compression="zstd", index=False)
        result["rows"] = len(frame)
    else:
        result["rows"] = Judgment.objects.filter(project=project).order_by("id").values_list("id")[:1].count()
    result["seconds"] = time.perf_counter() - start
    result["maxrss_mb"] = peak_rss_mb()
    result["arrow_peak_mb"] = pa.default_memory_pool().max_memory() / 2**20
    if mode != "baseline":
        result["file_mb"] = os.path.getsize(out) / 2**20
    return result


def run_child(*, mode: str, url: str, out: str, rows: int | None = None) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, "--out", out]
    if rows is not None:
        cmd += ["--naive-rows", str(rows)]
    env = {**os.environ, "DATABASE_URL": url}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"bench child {mode} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-judgments", type=int, default=1_000_000)
    parser.add_argument("--naive-rows", type=int, default=None, help="Rows for the naive peer (default: all).")
    parser.add_argument("--keep", action="store_true", help="Keep the database afterwards.")
    parser.add_argument("--child", choices=["streamed", "naive", "baseline"], help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", DEFAULT_URL)

    if args.child:
        print(json.dumps(child(mode=args.child, url=url, out=args.out, rows=args.naive_rows)))
        return

    print(f"PrefLab export benchmark — {platform.python_version()} on {platform.machine()}, "
          f"{os.cpu_count()} CPU(s), PostgreSQL at {urlsplit(url).hostname}")
    database_recreate(url=url)
    try:
        django_setup(url=url)
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        project = project_setup(slug=SLUG)
        start = time.perf_counter()
        loaded = bulk_load(url=url, project=project, n_judgments=args.n_judgments)
        print(f"set-up: COPY of {loaded['items']:,} items, {loaded['raters']:,} raters + demographics, "
              f"{loaded['tasks']:,} tasks, {loaded['judgments']:,} assignments and judgments "
              f"in {time.perf_counter() - start:.1f} s (not timed below)")
        with tempfile.TemporaryDirectory(prefix="preflab-export-") as tmp:
            base = run_child(mode="baseline", url=url, out=os.devnull)
            streamed = run_child(mode="streamed", url=url, out=f"{tmp}/streamed.parquet")
            import pyarrow.parquet as pq

            meta = pq.ParquetFile(f"{tmp}/streamed.parquet").metadata
            assert meta.num_rows == loaded["judgments"], (meta.num_rows, loaded["judgments"])
            naive = run_child(mode="naive", url=url, out=f"{tmp}/naive.parquet", rows=args.naive_rows)
        print(f"baseline process (imports + django.setup + 1 query): peak RSS (VmHWM) {base['maxrss_mb']:.0f} MB")
        print(f"{'method':<44} {'rows':>10} {'seconds':>8} {'peak MB':>8} {'arrow MB':>8} {'file MB':>8}")
        for label, r in (("streamed judgments_export (Parquet, zstd)", streamed),
                         ("naive pandas.DataFrame(list(values()))" + (" [subset]" if args.naive_rows else ""),
                          naive)):
            growth = r["maxrss_mb"] - base["maxrss_mb"]
            print(f"{label:<44} {r['rows']:>10,} {r['seconds']:>8.1f} {growth:>8.0f} {r['arrow_peak_mb']:>8.0f} "
                  f"{r['file_mb']:>8.1f}")
        print("peak MB = peak RSS (VmHWM) of the measured process − that of the baseline process; "
              "arrow MB = pyarrow memory pool peak")
        growth = streamed["maxrss_mb"] - base["maxrss_mb"]
        if naive["rows"] == streamed["rows"]:
            print(f"streamed vs naive: {naive['seconds'] / streamed['seconds']:.1f}× faster, "
                  f"{(naive['maxrss_mb'] - base['maxrss_mb']) / max(growth, 1):.0f}× less peak memory")
        ok_time, ok_mem = streamed["seconds"] <= TARGET_SECONDS, growth <= TARGET_MB
        print(f"time   {streamed['seconds']:.1f} s  (target ≤ {TARGET_SECONDS:.0f} s): {'PASS' if ok_time else 'MISS'}")
        print(f"memory {growth:.0f} MB (target ≤ {TARGET_MB:.0f} MB): {'PASS' if ok_mem else 'MISS'}")
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            database_drop(url=url)


if __name__ == "__main__":
    main()

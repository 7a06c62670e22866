"""Benchmark: judgment submission and next-task requests over HTTP, gunicorn + PostgreSQL.

Targets (DESIGN.md), on the 2-core machine:

* submission: ≥ 300 judgments/s sustained, p99 ≤ 100 ms, none lost or doubled;
* next-task request with 1,000,000 judgments stored: p99 ≤ 50 ms.

Set-up (not timed): a fresh PostgreSQL database ``preflab_bench_http`` (``DATABASE_URL`` overrides it;
dropped and re-created here), migrated; one project (overlap 5) with 400 items (COPY) and 6,000 random
pairwise tasks (``services.tasks_generate_random``); raters who joined, consented, answered demographics
and read the instructions through the services, then ``VACUUM ANALYZE`` of the tables that hold rows (planner
statistics as autovacuum leaves them; until 2026-12-05 evening every table, the empty answer tables too —
``--analyze-empty`` — see the last runs below); one Django database session per rater holding
``SESSION_RATERS = {project id: rater id}``, whose key is the client's ``sessionid`` cookie; a generated
32-character ``csrftoken`` cookie sent back in ``X-CSRFToken``.

Server: ``gunicorn config.wsgi:application -w 4 -k sync`` (the Dockerfile's shape, without its access log; before
2026-12-05 the default was ``-w 3 -k gthread --threads 4``; ``--workers``, ``--worker-class``, ``--threads`` change
it) on a free loopback port, with
``DEBUG=0``, production settings except ``SECURE_SSL_REDIRECT`` / secure cookies off (plain http on
loopback), the submit and next-task throttles raised out of the way, cache and Celery broker on Redis database 13.

Load: ``--clients`` threads (one rater each, keep-alive ``http.client.HTTPConnection``), each looping
GET ``/r/<slug>/api/next/`` then POST ``/r/<slug>/api/judgments/`` with a fresh UUID idempotency key,
for a warm-up then a fixed measured window; they stop by themselves. Latency is per request, measured
by the client (it shares the 2 cores with gunicorn and PostgreSQL, so it is pessimistic).

Checks afterwards, in the database: judgments stored = 201 responses, every 201's key stored once, no
idempotency key twice; then 1,000 already-acknowledged (key, assignment) pairs are sent again by their
raters and must all get 200 with nothing new stored.

Scenario 2: 1,000,000 judgments (5,000 more items, 2,000 raters, 200,000 full tasks, one answered
assignment each) are COPYed into the same project (``bench_export.bulk_load``), then fresh raters run
the same loop and the next-task GET's latency is reported.

Run from the repository root (needs PostgreSQL and Redis on 127.0.0.1):
``python bench/bench_http.py [--clients 16] [--seconds 40] [--warmup 5]`` (40 s so that at this machine's
rate there are more than 1,000 acknowledged submissions to resend).

Output of a run on 2026-11-22, on the 2-core machine (the load generator runs on the same 2 cores as the
server and the database), after the acknowledgement of an answer began to carry the next task and the
open-slot index on tasks was added (the run before those changes: 32 judgments/s, POST p99 773 ms,
next-task p99 1,244 ms with 1M judgments stored):

    PrefLab HTTP benchmark — Python 3.11.7, 2 CPU(s), gunicorn -w 3 -k gthread --threads 4, 16 client threads on the same machine
    set-up: 400 items, 6,000 tasks (overlap 5), 16 ready raters with sessions

    Scenario 1 — submit loop as the browser runs it (each POST's reply carries the next task), 5 s warm-up + 40 s measured, no stored judgments before
      judgments/s sustained        76
      POST /api/judgments/         n=  3021  p50  159.2 ms  p95  506.8 ms  p99  557.1 ms  max   635.1 ms
      GET  /api/next/              n=     0  p50    nan ms  p95    nan ms  p99    nan ms  max     nan ms
      responses (whole run)        {'next 200': 16, 'post 201': 3322}
      stored check                 201 responses 3,322, judgments stored 3,322, distinct keys stored 3,322, acknowledged keys missing 0, unacknowledged stored 0, keys stored twice 0: OK
      replay check                 resent 1,000: responses {200: 1000}, judgments before 3,322, after 3,322: OK

    Scenario 2 — 1,000,000 judgments COPYed into the project in 96 s (1,003,322 stored in all, 206,000 tasks); 16 fresh raters, GET /api/next/ before every answer
      judgments/s sustained        50
      GET  /api/next/              n=  1995  p50   62.4 ms  p95  315.8 ms  p99  426.7 ms  max   658.1 ms
      POST /api/judgments/         n=  1986  p50  171.7 ms  p95  449.7 ms  p99  551.8 ms  max   740.7 ms
      responses (whole run)        {'next 200': 2199, 'post 201': 2199}

    MISS  judgments/s 76 (target ≥ 300)
    MISS  POST p99 557 ms (target ≤ 100 ms)
    PASS  none lost or doubled, replays stored nothing
    MISS  next-task p99 with 1.0M judgments stored 427 ms (target ≤ 50 ms)

A second run of the same code a few minutes later gave 58 judgments/s, POST p99 894 ms and next-task
p99 503 ms (p50 60 ms): run-to-run spread on this shared machine is about ±15%.

CPU-ms per answer (since 2026-12-05): ``/proc/<pid>/stat`` utime + stime of the gunicorn master and workers
and of the PostgreSQL backends connected to the benchmark's database, read at the start and the end of
the measured window, divided by the answers stored in it — the figure that stays put on a shared machine
where judgments/s and p99 do not. ``--no-loaded`` runs scenario 1 only; ``BENCH_REDIS_URL`` picks the
Redis database (flushed). Scenario 1 before and after the hot-path work (fewer statements per exchange:
the rater, its project and its flow state in one query, the session's rater map cached, the replay and
instruction checks folded into the assignment lock, the refit request cache-gated, the new assignment
built from the claim query), same command (``--no-loaded --seconds 30``), 2-core machine shared with
other work:

    before:  judgments/s 29   POST p50 385.6 ms  p99 1518.4 ms
             CPU per answer 33.6 ms (gunicorn 27.0 ms + PostgreSQL backends 6.6 ms; 889 answers)
    after:   judgments/s 46   POST p50 215.2 ms  p99  773.9 ms
             CPU per answer 24.8 ms (gunicorn 19.8 ms + PostgreSQL backends 4.9 ms; 1,397 answers)

Runs on 2026-12-05 (after quality checks and the Prolific webhook landed; the machine quieter than in the
runs above, and the CPU per answer lower with it — contention inflates CPU time too), default server shape,
``--seconds 30`` (scenario 1, then scenario 2 with 1M judgments), two runs back to back: the code as
committed, and the same with the never-given-before probe of ``selectors.tasks_available_to`` without
``is_repeat=False`` (so without the unique index of first showings):

                                    committed                    probe without is_repeat=False
    scenario 1 judgments/s          153                          154
      POST p50 / p99                138.1 / 266.4 ms             53.4 / 303.3 ms
      CPU per answer                11.8 ms (9.0 + 2.8)          12.2 ms (9.3 + 2.9)
    scenario 2 judgments/s          98                           101
      GET /api/next/ p50 / p99      46.4 / 190.4 ms              46.3 / 128.3 ms
      CPU per answer                19.0 ms (14.9 + 4.1)         18.3 ms (14.2 + 4.1)

The probe change makes no difference the benchmark can see (its fresh raters hold few assignments; the
index matters for a rater with thousands). Server shape, same day, ``--no-loaded --seconds 20``:
``-k gthread -w 3 --threads 4`` 162/s, POST p99 275 ms, 11.6 ms CPU per answer; ``-k sync -w 4`` (the shape
of the Dockerfile, one worker more) 150/s, POST p99 133 ms, 12.4 ms. In-process (Django test client, no
HTTP server, 4 raters in turn) one answer + next-task exchange costs 7 ms of Python CPU and 12 SQL
statements taking about 2.7 ms in PostgreSQL; the biggest Python costs are building the ORM queries (the
rater with its project and flow state, the locked assignment with its replay and instruction look-ups, the
task claim). With the load generator on the same two cores, 300/s needs about 5 ms of server and database
CPU per answer in all.

Reading those runs: correctness held under load, but throughput and latency missed by about 2× — one exchange
was 12 SQL statements and about 7 ms of Python, most of it the ORM building queries.

Runs on 2026-12-05, after the rater hot path went to hand-written SQL (``annotator/sql.py``: the session's
rater with its project and flow state, the locked assignment, the answer's ``INSERT … RETURNING``, the counters,
the task claim with ``ON CONFLICT DO NOTHING`` instead of a savepoint, the open assignment — each checked against
the ORM query it replaces in ``tests/integration/test_hot_sql.py``) and PostgreSQL began to prepare repeated
statements (server-side binding, ``DATABASE_PREPARE_THRESHOLD``, default 5 — at first for every query; since the
runs below, only for those hand-written statements, as server-side binding limits a query to 65,535
parameters). One exchange is now 14 statements
with BEGIN/COMMIT (the two transactions of before: the answer, then the claim); in-process (WSGI handler called
directly, no HTTP server) it costs 3.2 ms of Python CPU where it cost 11 ms the same morning. Same machine,
same day, ``--no-loaded --seconds 20`` unless stated:

                                        judgments/s   POST p50 / p99      CPU per answer (gunicorn + PostgreSQL)
    before (gthread 3×4)                114           120.1 / 301.5 ms    16.8 ms (13.2 + 3.6)
    hand-written SQL (gthread 3×4)      230            66.3 / 129.3 ms     8.2 ms (4.9 + 3.3)
    + prepared statements (gthread 3×4) 273            68.8 / 122.1 ms     6.4 ms (4.3 + 2.2)
    same code, gthread 2×4              268            57.8 / 101.3 ms     6.7 ms (4.5 + 2.2)
    same code, sync -w 3                238            65.6 /  94.3 ms     7.2 ms (4.5 + 2.7)
    same code, sync -w 4                251            62.7 /  84.4 ms     7.3 ms (4.7 + 2.6)

The full benchmark with the default shape (sync -w 4), ``--seconds 30``:

    Scenario 1 — submit loop as the browser runs it (each POST's reply carries the next task), 5 s warm-up + 30 s measured, no stored judgments before
      judgments/s sustained        245
      POST /api/judgments/         n=  7364  p50   64.0 ms  p95   78.5 ms  p99   87.6 ms  max   108.9 ms
      CPU per answer                 7.5 ms  (gunicorn 4.7 ms + PostgreSQL backends 2.7 ms; 55.2 CPU-s in 30 s, 7,380 answers)
      stored check                 201 responses 8,618, judgments stored 8,618, distinct keys stored 8,618, acknowledged keys missing 0, unacknowledged stored 0, keys stored twice 0: OK
      replay check                 resent 1,000: responses {200: 1000}, judgments before 8,618, after 8,618: OK

    Scenario 2 — 1,000,000 judgments COPYed into the project in 87 s (1,008,618 stored in all, 206,000 tasks); 16 fresh raters, GET /api/next/ before every answer
      judgments/s sustained        236
      GET  /api/next/              n=  7075  p50   30.3 ms  p95   37.3 ms  p99   40.6 ms  max    59.5 ms
      POST /api/judgments/         n=  7076  p50   36.8 ms  p95   44.8 ms  p99   48.7 ms  max    80.7 ms
      CPU per answer                 7.5 ms  (gunicorn 5.5 ms + PostgreSQL backends 2.0 ms; 53.1 CPU-s in 30 s, 7,084 answers)

    MISS  judgments/s 245 (target ≥ 300)
    PASS  POST p99 88 ms (target ≤ 100 ms)
    PASS  none lost or doubled, replays stored nothing
    PASS  next-task p99 with 1.0M judgments stored 41 ms (target ≤ 50 ms)

A second full run later the same day, after answer receipts were built without a ModelSerializer and the
rater throttles began counting per fixed window (the sliding-window throttle rewrote a list of every request's
time, about 900 entries per rater at this benchmark's pace): scenario 1 258 judgments/s, POST p50 / p99
62.5 / 86.2 ms, 7.1 ms CPU per answer (4.2 + 2.9); scenario 2 227/s, GET /api/next/ p50 / p99 31.7 / 44.1 ms,
POST p99 52.1 ms, 7.8 ms per answer; nothing lost or doubled. (On a busier host the same hour, sync -w 4 gave
189/s with p99 123 ms and 9.8 ms per answer: contention inflates CPU time too.)

Two more full runs in the next half hour, after prepared statements were limited to the hand-written ones
and place releases began to track the places an assignment holds, on a busier host (the same code's
in-process cost was unchanged, 2.9–3.1 ms of Python per exchange in an interleaved A/B with the code before):
scenario 1 240 and 227 judgments/s, POST p99 104.6 and 105.8 ms, 7.7 and 8.1 ms CPU per answer; scenario 2
GET /api/next/ p99 50.6 and 60.1 ms (p50 34.6 and 40.0 ms). Across the four full runs: 227–258/s, POST p99
86–106 ms, next-task p99 41–60 ms.

Reading it: the latency targets are met with sync workers on a quiet host and missed narrowly on a busier
one (gthread's threads, sharing one interpreter lock per worker, leave a longer tail: p99 101–129 ms); nothing
is lost or doubled; throughput misses by 15–25%.
Server and database together use about 7 ms of CPU per answer and saturate the two cores (the load generator
runs on them too): 300/s here would need about 5.5 ms. What is left is spread out — psycopg and the PostgreSQL
protocol for 14 statements, Django REST framework's request and serializers, four Redis round trips (session,
throttle, progress total) — with no single large cost.

What those runs measured, found later on 2026-12-05: the set-up ran ``VACUUM ANALYZE`` on every table, the empty
answer and assignment tables too. PostgreSQL then knows those tables are empty, and the plan each server connection
caches for a prepared statement in the first seconds is made for an empty table: a sequential scan, also to find one
assignment by its primary key or an answer by its idempotency key (``EXPLAIN EXECUTE`` of the cached statement showed
``Seq Scan on annotator_assignment``). The plan is kept as the table grows: in-process, the database's CPU per
exchange rose from 1.0 to 2.4 ms over 6,000 answers; ``VACUUM`` or ``ANALYZE`` (which make every connection plan
again) brought it back to 0.9 ms, where it stayed. A new installation is not in that state unless someone analyzes
the empty tables (e.g. ``vacuumdb --analyze`` right after ``migrate``): autovacuum analyzes a table only once
50 rows + 10 % of it changed, and PostgreSQL assumes at least 10 pages for a table never analyzed (in-process, with
the answer tables left unanalyzed, 0.8 ms per exchange from the first answer to the 4,000th, no growth); and the
plans last only until autovacuum analyzes the table again or the connection is renewed (``CONN_MAX_AGE``, 60 s),
longer than these 35–45 s windows. The set-up now analyzes only the tables that hold rows; ``--analyze-empty`` reproduces the old set-up. Same
code (no change to the application), back to back, ``--no-loaded --seconds 20``:

                                        judgments/s   POST p50 / p99      CPU per answer (gunicorn + PostgreSQL)
    tables with rows analyzed           375           42.1 / 53.8 ms      4.6 ms (3.3 + 1.2)
    --analyze-empty (all runs above)    314           50.2 / 64.6 ms      5.5 ms (3.4 + 2.1)

The full benchmark with that set-up (default arguments, 40 s measured), 2026-12-05:

    PrefLab HTTP benchmark — Python 3.11.7, 2 CPU(s), gunicorn -w 4 -k sync, 16 client threads on the same machine
    set-up: 400 items, 6,000 tasks (overlap 5), 16 ready raters with sessions

    Scenario 1 — submit loop as the browser runs it (each POST's reply carries the next task), 5 s warm-up + 40 s measured, no stored judgments before
      judgments/s sustained        367
      POST /api/judgments/         n= 14672  p50   43.1 ms  p95   49.3 ms  p99   52.6 ms  max   110.4 ms
      CPU per answer                 4.6 ms  (gunicorn 3.3 ms + PostgreSQL backends 1.2 ms; 67.1 CPU-s in 40 s, 14,688 answers)
      stored check                 201 responses 16,282, judgments stored 16,282, distinct keys stored 16,282, acknowledged keys missing 0, unacknowledged stored 0, keys stored twice 0: OK
      replay check                 resent 1,000: responses {200: 1000}, judgments before 16,282, after 16,282: OK

    Scenario 2 — 1,000,000 judgments COPYed into the project in 74 s (1,016,282 stored in all, 206,000 tasks); 16 fresh raters, GET /api/next/ before every answer
      judgments/s sustained        240
      GET  /api/next/              n=  9602  p50   29.9 ms  p95   35.3 ms  p99   38.3 ms  max   198.4 ms
      POST /api/judgments/         n=  9597  p50   36.1 ms  p95   42.6 ms  p99   46.3 ms  max   207.4 ms
      CPU per answer                 7.1 ms  (gunicorn 5.1 ms + PostgreSQL backends 2.0 ms; 68.1 CPU-s in 40 s, 9,610 answers)

    PASS  judgments/s 367 (target ≥ 300)
    PASS  POST p99 53 ms (target ≤ 100 ms)
    PASS  none lost or doubled, replays stored nothing
    PASS  next-task p99 with 1.0M judgments stored 38 ms (target ≤ 50 ms)

Two full runs before it, with the old set-up but an ANALYZE halfway through the warm-up (tried first; it has the
same effect): scenario 1 376 and 370 judgments/s, POST p99 52.9 and 57.5 ms, 4.5 and 4.6 ms CPU per answer;
scenario 2 GET /api/next/ p99 43.5 and 42.3 ms. Scenario 2 (a GET before every answer: two requests per answer,
hence its lower rate) was never affected by the set-up: its data is COPYed and vacuumed before its server starts.
All four targets met in the three runs; nothing lost or doubled, replays stored nothing.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import secrets
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_export import _copy, bulk_load, database_drop, database_recreate, django_setup, project_setup  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/preflab_bench_http"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")  # flushed before and after
SLUG = "bench-http"
MAX_CLIENTS = 64
MAX_SECONDS = 120.0
TARGET_RATE = 300.0
TARGET_POST_P99_MS = 100.0
TARGET_NEXT_P99_MS = 50.0


# Set-up -------------------------------------------------------------------------------------------


def items_copy(*, url: str, project, n_items: int) -> None:
    """``n_items`` item rows (no image files: the API only hands out their URLs and sizes)."""
    import psycopg
    import pyarrow as pa

    from annotator.models import Item

    with psycopg.connect(url) as conn:
        start = conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM annotator_item").fetchone()[0]
        sha = [f"{(start + i) * 11400714819323198485 % (1 << 64):016x}" * 4 for i in range(n_items)]
        _copy(conn=conn, model=Item, n_rows=n_items, columns={
            "id": pa.array(range(start, start + n_items), pa.int64()),
            "project": project.pk,
            "image": pa.array([f"items/{project.pk}/{s[:2]}/{s}.png" for s in sha]),
            "original_name": pa.array([f"http{i:05d}.png" for i in range(n_items)]),
            "prompt": pa.array([f"prompt {i // 8}" for i in range(n_items)]),
            "source_model": "bench", "metadata": "{}", "width": 512, "height": 512, "image_format": "PNG",
            "sha256": pa.array(sha),
            "created_at": pa.array([1_795_000_000_000_000] * n_items, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        })
        conn.execute("SELECT setval(pg_get_serial_sequence('annotator_item', 'id'), "
                     "(SELECT MAX(id) FROM annotator_item))")
        conn.commit()


@dataclass
class RaterClient:
    rater_id: int
    session_key: str
    csrf: str

    @property
    def headers(self) -> dict:
        return {"Cookie": f"sessionid={self.session_key}; csrftoken={self.csrf}", "X-CSRFToken": self.csrf,
                "Content-Type": "application/json", "Accept": "application/json"}


def raters_ready(*, project, n: int) -> list[RaterClient]:
    """``n`` raters past consent, demographics and instructions, each with a database session."""
    from django.contrib.sessions.backends.db import SessionStore

    from annotator import selectors, services
    from annotator.permissions import SESSION_RATERS

    consent = selectors.consent_current(project=project)
    instruction = selectors.instruction_current(project=project)
    alphabet = string.ascii_letters + string.digits
    clients = []
    for _ in range(n):
        rater, _ = services.rater_join(project=project)
        services.rater_consent(rater=rater, consent_version_id=consent.pk)
        services.demographics_submit(rater=rater, age_band="25-34", expertise="layperson")
        services.rater_acknowledge_instructions(rater=rater, instruction_version_id=instruction.pk)
        session = SessionStore()
        session[SESSION_RATERS] = {str(project.pk): rater.pk}
        session.create()
        clients.append(RaterClient(rater_id=rater.pk, session_key=session.session_key,
                                   csrf="".join(secrets.choice(alphabet) for _ in range(32))))
    return clients


def vacuum_analyze(*, url: str, empty_too: bool = False) -> None:
    """``VACUUM ANALYZE`` of the tables that hold rows, as autovacuum leaves a database: it analyzes a table once
    50 rows + 10 % changed and never one that did not change. Statements a connection prepares while an analyzed
    table is empty keep a plan for an empty table until the table is analyzed again or the connection is renewed
    (``empty_too`` analyzes the empty tables too, as the set-up did before 2026-12-05 evening; see the module
    docstring); a table never analyzed is assumed to hold at least 10 pages."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True) as conn:
        if empty_too:
            conn.execute("VACUUM ANALYZE")
            return
        tables = [name for (name,) in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename")]
        for name in tables:
            if conn.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(name))).fetchone()[0]:
                conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(name)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: The server's shape (``--worker-class``, ``--workers``, ``--threads``); the default is the one of the runs above.
SERVER = {"worker_class": "sync", "workers": 4, "threads": 4}


def server_shape() -> str:
    shape = f"gunicorn -w {SERVER['workers']} -k {SERVER['worker_class']}"
    return shape + (f" --threads {SERVER['threads']}" if SERVER["worker_class"] == "gthread" else "")


def gunicorn_start(*, url: str, port: int, log_path: str, var_dir: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": url, "DEBUG": "0", "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0", "SESSION_COOKIE_SECURE": "0", "CSRF_COOKIE_SECURE": "0",
        "THROTTLE_SUBMIT": "1000000/minute", "THROTTLE_NEXT": "1000000/minute", "CACHE_URL": REDIS_URL, "CELERY_BROKER_URL": REDIS_URL,
        "PREFLAB_VAR_DIR": var_dir, "LOG_LEVEL": "WARNING", "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    cmd = [str(Path(sys.executable).with_name("gunicorn")), "config.wsgi:application",
           "-w", str(SERVER["workers"]), "-k", SERVER["worker_class"], "-b", f"127.0.0.1:{port}", "--log-level", "warning"]
    if SERVER["worker_class"] == "gthread":
        cmd += ["--threads", str(SERVER["threads"])]
    with open(log_path, "ab") as log:  # the server keeps its own copy of the descriptor
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited ({proc.returncode}); see {log_path}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", f"/r/{SLUG}/api/next/")  # any response (403 without a session) means it is up
            conn.getresponse().read()
            conn.close()
            return proc
        except OSError:
            time.sleep(0.3)
    proc.terminate()
    raise SystemExit("gunicorn did not start within 60 s")


def gunicorn_stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# CPU accounting (/proc) ---------------------------------------------------------------------------

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_stat(pid: int) -> tuple[int, int, float, float] | None:
    """(ppid, start time, own CPU s, reaped children's CPU s) of a process, from /proc/<pid>/stat."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) "; fields[0] is the state (field 3)
    return (int(fields[1]), int(fields[19]), (int(fields[11]) + int(fields[12])) / _CLK_TCK,
            (int(fields[13]) + int(fields[14])) / _CLK_TCK)


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def cpu_snapshot(*, server_pid: int, dbname: str) -> dict:
    """CPU seconds so far, per process: the gunicorn master and its workers (and their reaped children),
    and the PostgreSQL backends connected to ``dbname`` (``postgres: … <user> <dbname> <host>``).
    Keys are (pid, start time), so a recycled pid is a new process."""
    server, database = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        stat = _proc_stat(pid)
        if stat is None:
            continue
        ppid, started, own, children = stat
        if server_pid in (pid, ppid):
            server[(pid, started)] = own + children
        elif f" {dbname} " in _cmdline(pid) and _cmdline(pid).startswith("postgres:"):
            database[(pid, started)] = own
    return {"server": server, "database": database}


def cpu_used(before: dict, after: dict) -> dict:
    """CPU seconds between two snapshots, per side (a process that appeared counts from zero; one that
    ended in between is lost for a database backend — they live as long as the web workers' connections)."""
    return {side: sum(after[side][k] - before[side].get(k, 0.0) for k in after[side]) for side in after}


class CpuWindow:
    """Snapshots of :func:`cpu_snapshot` at the start and the end of the measured window (a timer thread)."""

    def __init__(self, *, server_pid: int, dbname: str, t0: float, t1: float):
        self.args = dict(server_pid=server_pid, dbname=dbname)
        self.snapshots: list[dict] = []
        self.thread = threading.Thread(target=self._run, args=(t0, t1), daemon=True)
        self.thread.start()

    def _run(self, t0: float, t1: float) -> None:
        for at in (t0, t1):
            time.sleep(max(0.0, at - time.monotonic()))
            self.snapshots.append(cpu_snapshot(**self.args))

    def used(self) -> dict:
        self.thread.join(timeout=30)
        return cpu_used(*self.snapshots) if len(self.snapshots) == 2 else {"server": float("nan"),
                                                                             "database": float("nan")}


def print_cpu(cpu: dict, *, n_answers: int, seconds: float) -> float:
    """CPU-ms per answer (server + database), the machine-independent figure; returns it."""
    per = {side: 1000 * value / max(n_answers, 1) for side, value in cpu.items()}
    total = per["server"] + per["database"]
    print(f"  CPU per answer               {total:5.1f} ms  (gunicorn {per['server']:.1f} ms + PostgreSQL backends "
          f"{per['database']:.1f} ms; {cpu['server'] + cpu['database']:.1f} CPU-s in {seconds:.0f} s, "
          f"{n_answers:,} answers)")
    return total


# Load ---------------------------------------------------------------------------------------------


@dataclass
class Record:
    kind: str  # "next" | "post"
    started: float  # time.monotonic()
    latency: float  # seconds
    status: int


@dataclass
class ClientResult:
    client: RaterClient
    records: list[Record] = field(default_factory=list)
    sent: list[tuple[str, int, int]] = field(default_factory=list)  # (key, assignment, status) of POSTs
    error: str | None = None


def _request(conn, method: str, path: str, headers: dict, body: bytes | None = None) -> tuple[int, bytes, float]:
    start = time.perf_counter()
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    return response.status, data, time.perf_counter() - start


def client_loop(*, port: int, client: RaterClient, stop_at: float, result: ClientResult, seed: int,
                always_get_next: bool = False) -> None:
    """One rater, as the browser does it: GET the first task, then each POST's reply carries the next.

    With ``always_get_next`` it GETs /api/next/ before every answer instead (to time that request).
    """
    rng = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = client.headers
    payload = None
    try:
        while time.monotonic() < stop_at:
            if payload is None or always_get_next:
                t0 = time.monotonic()
                status, data, latency = _request(conn, "GET", f"/r/{SLUG}/api/next/", headers)
                result.records.append(Record("next", t0, latency, status))
                if status != 200:
                    result.error = f"next: {status} {data[:200]!r}"
                    return
                payload = json.loads(data)
            if payload.get("status") != "task":
                result.error = f"next: {payload.get('status')} {payload.get('step', '')}"
                return
            key = str(uuid.uuid4())
            assignment = payload["assignment"]["id"]
            body = json.dumps({"assignment": assignment, "choice": rng.choice(("left", "right", "tie")),
                               "idempotency_key": key, "instruction_version": payload["instruction_version"],
                               "response_time_ms": rng.randrange(300, 5000)}).encode()
            t0 = time.monotonic()
            status, data, latency = _request(conn, "POST", f"/r/{SLUG}/api/judgments/", headers, body)
            result.records.append(Record("post", t0, latency, status))
            result.sent.append((key, assignment, status))
            if status not in (200, 201):
                result.error = f"post: {status} {data[:200]!r}"
                return
            payload = json.loads(data).get("next")
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        conn.close()


def load_run(*, port: int, clients: list[RaterClient], warmup: float, seconds: float,
             always_get_next: bool = False, server_pid: int = 0,
             dbname: str = "") -> tuple[list[ClientResult], float, float, dict]:
    """Run every client for ``warmup + seconds``; returns the results, the measured window and the CPU
    seconds the server and the database used in it."""
    start = time.monotonic()
    window = (start + warmup, start + warmup + seconds)
    cpu = CpuWindow(server_pid=server_pid, dbname=dbname, t0=window[0], t1=window[1])
    results = [ClientResult(client=c) for c in clients]
    threads = [threading.Thread(target=client_loop, daemon=True,
                                kwargs=dict(port=port, client=c, stop_at=window[1], result=r, seed=i,
                                            always_get_next=always_get_next))
               for i, (c, r) in enumerate(zip(clients, results))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=warmup + seconds + 60)
    return results, window[0], window[1], cpu.used()


def percentiles(values: list[float]) -> dict:
    import numpy as np

    if not values:
        return {"n": 0, "p50": float("nan"), "p95": float("nan"), "p99": float("nan"), "max": float("nan")}
    a = np.asarray(values) * 1000
    return {"n": len(values), "p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)),
            "p99": float(np.percentile(a, 99)), "max": float(a.max())}


def summarize(results: list[ClientResult], t0: float, t1: float) -> dict:
    in_window = [r for res in results for r in res.records if t0 <= r.started and r.started + r.latency <= t1]
    created = sum(1 for r in in_window if r.kind == "post" and r.status == 201)
    answers = sum(1 for res in results for rec in res.records
                  if rec.kind == "post" and rec.status == 201 and t0 <= rec.started + rec.latency <= t1)
    statuses: dict[str, int] = {}
    for res in results:
        for r in res.records:
            statuses[f"{r.kind} {r.status}"] = statuses.get(f"{r.kind} {r.status}", 0) + 1
    return {
        "rate": created / (t1 - t0),
        "answers": answers,  # 201s completed in the window (what the window's CPU time paid for)
        "post": percentiles([r.latency for r in in_window if r.kind == "post"]),
        "next": percentiles([r.latency for r in in_window if r.kind == "next"]),
        "statuses": statuses,
        "errors": [res.error for res in results if res.error],
    }


def print_latency(label: str, p: dict) -> None:
    print(f"  {label:<28} n={p['n']:>6}  p50 {p['p50']:6.1f} ms  p95 {p['p95']:6.1f} ms  "
          f"p99 {p['p99']:6.1f} ms  max {p['max']:7.1f} ms")


def verify_stored(*, project, results: list[ClientResult]) -> tuple[bool, str]:
    """Judgments stored = 201 responses; every acknowledged key stored exactly once; no key twice."""
    from django.db.models import Count

    from annotator.models import Judgment

    acknowledged = {key for res in results for key, _, status in res.sent if status == 201}
    n_201 = sum(1 for res in results for _, _, status in res.sent if status == 201)
    stored = Judgment.objects.filter(project=project)
    keys = {str(k) for k in stored.values_list("idempotency_key", flat=True)}
    doubled = stored.values("idempotency_key").annotate(n=Count("id")).filter(n__gt=1).count()
    ok = len(keys) == stored.count() == n_201 == len(acknowledged) and keys == acknowledged and doubled == 0
    return ok, (f"201 responses {n_201:,}, judgments stored {stored.count():,}, distinct keys stored {len(keys):,}, "
                f"acknowledged keys missing {len(acknowledged - keys)}, unacknowledged stored {len(keys - acknowledged)}, "
                f"keys stored twice {doubled}")


def replay_check(*, port: int, project, results: list[ClientResult], n: int = 1_000) -> tuple[bool, str]:
    """Send ``n`` acknowledged (key, assignment) pairs again, each by its own rater: 200 and nothing new."""
    from annotator.models import Judgment

    before = Judgment.objects.filter(project=project).count()
    pairs = [(res.client, key, assignment) for res in results for key, assignment, status in res.sent if status == 201]
    random.Random(1).shuffle(pairs)
    pairs = pairs[:n]
    instruction_version = project.instruction_versions.order_by("-version").values_list("pk", flat=True)[0]
    statuses: dict[int, int] = {}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for client, key, assignment in pairs:
        body = json.dumps({"assignment": assignment, "choice": "left", "idempotency_key": key,
                           "instruction_version": instruction_version}).encode()
        try:
            status, _, _ = _request(conn, "POST", f"/r/{SLUG}/api/judgments/", client.headers, body)
        except (http.client.HTTPException, OSError):  # the server closed an idle keep-alive connection
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            status, _, _ = _request(conn, "POST", f"/r/{SLUG}/api/judgments/", client.headers, body)
        statuses[status] = statuses.get(status, 0) + 1
    conn.close()
    after = Judgment.objects.filter(project=project).count()
    ok = len(pairs) == n and statuses == {200: n} and after == before
    return ok, f"resent {len(pairs):,}: responses {statuses}, judgments before {before:,}, after {after:,}"


# Main ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--n-judgments", type=int, default=1_000_000, help="Stored judgments for scenario 2.")
    parser.add_argument("--keep", action="store_true", help="Keep the database afterwards.")
    parser.add_argument("--no-loaded", action="store_true", help="Scenario 1 only (skip the 1M-judgment load).")
    parser.add_argument("--analyze-empty", action="store_true",
                        help="Set-up analyzes the empty answer tables too (the runs before 2026-12-05 evening did).")
    parser.add_argument("--worker-class", choices=("gthread", "sync"), default=SERVER["worker_class"])
    parser.add_argument("--workers", type=int, default=SERVER["workers"])
    parser.add_argument("--threads", type=int, default=SERVER["threads"], help="Per worker (gthread only).")
    args = parser.parse_args()
    if not 1 <= args.workers <= 16 or not 1 <= args.threads <= 32:
        raise SystemExit("--workers must be 1..16 and --threads 1..32.")
    SERVER.update(worker_class=args.worker_class, workers=args.workers, threads=args.threads)
    if not 1 <= args.clients <= MAX_CLIENTS or not 0 < args.seconds + args.warmup <= MAX_SECONDS:
        raise SystemExit(f"--clients must be 1..{MAX_CLIENTS} and warm-up + seconds at most {MAX_SECONDS:.0f}.")
    url = os.environ.get("DATABASE_URL", DEFAULT_URL)
    if not urlsplit(url).path.endswith("_http"):
        url = DEFAULT_URL  # never the export benchmark's or the tests' database
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    print(f"PrefLab HTTP benchmark — Python {platform.python_version()}, {os.cpu_count()} CPU(s), "
          f"{server_shape()}, {args.clients} client threads on the same machine")
    database_recreate(url=url)
    var_dir = tempfile.mkdtemp(prefix="preflab-bench-http-")
    os.environ["PREFLAB_VAR_DIR"] = var_dir
    os.environ["CACHE_URL"] = REDIS_URL
    os.environ["CELERY_BROKER_URL"] = REDIS_URL
    django_setup(url=url)
    from django.core.management import call_command
    from django.db import connections

    from annotator import services

    call_command("migrate", verbosity=0)
    project = project_setup(slug=SLUG, overlap=5, username="bench-http")
    items_copy(url=url, project=project, n_items=400)
    n_tasks = services.tasks_generate_random(project=project, budget=6_000, random_state=0)
    clients = raters_ready(project=project, n=args.clients)
    connections.close_all()
    vacuum_analyze(url=url, empty_too=args.analyze_empty)  # planner statistics, as autovacuum would leave them
    print(f"set-up: 400 items, {n_tasks:,} tasks (overlap 5), {len(clients)} ready raters with sessions")
    port = free_port()
    log_path = os.path.join(var_dir, "gunicorn.log")
    proc = gunicorn_start(url=url, port=port, log_path=log_path, var_dir=var_dir)
    verdicts = []
    try:
        dbname = urlsplit(url).path.lstrip("/")
        results, t0, t1, cpu = load_run(port=port, clients=clients, warmup=args.warmup, seconds=args.seconds,
                                        server_pid=proc.pid, dbname=dbname)
        s = summarize(results, t0, t1)
        print(f"\nScenario 1 — submit loop as the browser runs it (each POST's reply carries the next task), "
              f"{args.warmup:.0f} s warm-up + {args.seconds:.0f} s measured, no stored judgments before"
              + (", empty tables analyzed" if args.analyze_empty else ""))
        print(f"  judgments/s sustained        {s['rate']:.0f}")
        print_latency("POST /api/judgments/", s["post"])
        print_latency("GET  /api/next/", s["next"])
        print_cpu(cpu, n_answers=s["answers"], seconds=t1 - t0)
        print(f"  responses (whole run)        {s['statuses']}")
        if s["errors"]:
            print(f"  client errors                {s['errors'][:5]}")
        ok_store, detail = verify_stored(project=project, results=results)
        print(f"  stored check                 {detail}: {'OK' if ok_store else 'FAILED'}")
        ok_replay, detail = replay_check(port=port, project=project, results=results)
        print(f"  replay check                 {detail}: {'OK' if ok_replay else 'FAILED'}")
        verdicts += [
            (f"judgments/s {s['rate']:.0f} (target ≥ {TARGET_RATE:.0f})", s["rate"] >= TARGET_RATE),
            (f"POST p99 {s['post']['p99']:.0f} ms (target ≤ {TARGET_POST_P99_MS:.0f} ms)",
             s["post"]["p99"] <= TARGET_POST_P99_MS),
            ("none lost or doubled, replays stored nothing", ok_store and ok_replay and not s["errors"]),
        ]

        gunicorn_stop(proc)
        connections.close_all()
        if args.no_loaded:
            return _verdicts_print(verdicts)
        start = time.perf_counter()
        loaded = bulk_load(url=url, project=project, n_judgments=args.n_judgments)
        fresh = raters_ready(project=project, n=args.clients)
        connections.close_all()
        from annotator.models import Judgment

        stored = Judgment.objects.filter(project=project).count()
        connections.close_all()
        print(f"\nScenario 2 — {loaded['judgments']:,} judgments COPYed into the project in "
              f"{time.perf_counter() - start:.0f} s ({stored:,} stored in all, "
              f"{loaded['tasks'] + n_tasks:,} tasks); {len(fresh)} fresh raters, GET /api/next/ before every answer")
        proc = gunicorn_start(url=url, port=port, log_path=log_path, var_dir=var_dir)
        results2, t0, t1, cpu2 = load_run(port=port, clients=fresh, warmup=args.warmup, seconds=args.seconds,
                                          always_get_next=True, server_pid=proc.pid, dbname=dbname)
        s2 = summarize(results2, t0, t1)
        print(f"  judgments/s sustained        {s2['rate']:.0f}")
        print_latency("GET  /api/next/", s2["next"])
        print_latency("POST /api/judgments/", s2["post"])
        print_cpu(cpu2, n_answers=s2["answers"], seconds=t1 - t0)
        print(f"  responses (whole run)        {s2['statuses']}")
        if s2["errors"]:
            print(f"  client errors                {s2['errors'][:5]}")
        verdicts.append((f"next-task p99 with {stored / 1e6:.1f}M judgments stored {s2['next']['p99']:.0f} ms "
                         f"(target ≤ {TARGET_NEXT_P99_MS:.0f} ms)",
                         s2["next"]["p99"] <= TARGET_NEXT_P99_MS and not s2["errors"]))
    finally:
        gunicorn_stop(proc)
        connections.close_all()
        if not args.keep:
            database_drop(url=url)
        redis.Redis.from_url(REDIS_URL).flushdb()
    _verdicts_print(verdicts)


def _verdicts_print(verdicts: list) -> None:
    print()
    for label, ok in verdicts:
        print(f"{'PASS' if ok else 'MISS'}  {label}")


if __name__ == "__main__":
    main()

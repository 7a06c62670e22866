"""The job lifecycle under faults, with a real broker and real worker processes this test starts itself.

Every test here runs its own Redis on a free port (never the machine's shared one) and Celery
workers against it and the test database, with a short lease (3 s), heartbeat (0.5 s) and job
sweep (every 1 s) so that recovery happens within seconds:

* kill -9 of the pool child mid-fit, and of the whole worker: the fit ends succeeded exactly once,
  with one set of scores;
* the broker down while raters submit: every judgment stored, every request answered quickly,
  and the automatic refit runs once the broker is back;
* a message delivered twice: one result.

To stop a fit "mid-fit" deterministically, the test holds an exclusive lock on the item-scores
table: the worker claims the fit, loads and fits, then blocks in the transaction that would store
its scores and mark it succeeded. (Its heartbeat waits on that transaction's row lock, so the
lease runs out meanwhile; a worker that takes the job over then waits on the same lock.)
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from celery import Celery
from django.conf import settings
from django.db import connection
from django.urls import reverse

from annotator import services as annotator_services
from annotator.models import Judgment
from ranking import jobs
from ranking.models import FitRun, ItemScore
from ranking.services import fit_runs
from tests.conftest import ready_rater
from tests.factories import ItemFactory
from tests.integration.test_rater_flow import join_url, walk_to_tasks
from tests.integration.test_worker import worker_database_url

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server for a private broker"),
]
ROOT = Path(__file__).resolve().parents[2]
LEASE_S = 3.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(predicate, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class PrivateRedis:
    """A redis-server of this test's own on a free port (no persistence); stop/start keep the port."""

    def __init__(self, directory: Path):
        self.port = _free_port()
        self.directory = directory
        self.proc: subprocess.Popen | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def up():
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", self.port)) == 0

        _wait(up, 20, "the private Redis to accept connections")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture
def redis(tmp_path):
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def publish_to(monkeypatch, settings):
    """Make this test process publish to the private broker, exactly as the app does (send_task, no retry)."""
    apps: list[Celery] = []

    def configure(url: str) -> None:
        app = Celery("preflab-faults", broker=url, set_as_current=False)
        app.conf.broker_write_url = url  # the CELERY_BROKER_URL environment variable would win over broker=
        app.conf.broker_connection_timeout = settings.PREFLAB_PUBLISH_TIMEOUT_S
        app.conf.broker_transport_options = dict(settings.CELERY_BROKER_TRANSPORT_OPTIONS or {}) if str(
            settings.CELERY_BROKER_URL).startswith("redis") else {
            "socket_connect_timeout": settings.PREFLAB_PUBLISH_TIMEOUT_S,
            "socket_timeout": settings.PREFLAB_PUBLISH_TIMEOUT_S, "visibility_timeout": 3600}
        apps.append(app)

        def send(*, task_name, job_id, countdown=None):
            app.send_task(task_name, args=(job_id,), countdown=countdown or None, retry=False)

        monkeypatch.setattr(jobs, "broker_send", send)

    yield configure
    for app in apps:
        app.close()


class Workers:
    """Celery worker processes (prefork, one child, with beat) against the private broker and the test DB."""

    def __init__(self, broker_url: str, log_dir: Path):
        self.broker_url = broker_url
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen] = []

    def start(self) -> subprocess.Popen:
        n = len(self.procs)
        log_path = self.log_dir / f"worker{n}.log"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": worker_database_url(),
            "CELERY_BROKER_URL": self.broker_url,
            "PREFLAB_VAR_DIR": str(settings.VAR_DIR),
            "DEBUG": "0",
            "PREFLAB_JOB_LEASE_S": str(LEASE_S),
            "PREFLAB_JOB_HEARTBEAT_S": "0.5",
            "PREFLAB_JOB_SWEEP_EVERY_S": "1",
            "PREFLAB_JOB_REPUBLISH_AFTER_S": "5",
            "PREFLAB_AUTO_FIT_DELAY_S": "0.5",
            "PREFLAB_SWEEP_EVERY_S": "3600",
        }
        with open(log_path, "w") as log:  # the worker keeps its own copy of the descriptor
            proc = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "config", "worker", "-B", "--pool=prefork",
                 "--concurrency=1", "--loglevel=INFO", "--without-heartbeat", "--without-gossip",
                 "--without-mingle", "--schedule", str(self.log_dir / f"beat{n}-schedule")],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        proc.log_path = log_path
        _wait(lambda: "ready." in log_path.read_text() or proc.poll() is not None, 60, "the worker to start")
        assert proc.poll() is None, log_path.read_text()
        self.procs.append(proc)
        return proc

    @staticmethod
    def pool_children(proc: subprocess.Popen) -> list[int]:
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == proc.pid:
                children.append(int(stat.parent.name))
        return children

    def kill_group(self, proc: subprocess.Popen) -> None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=20)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
            print(proc.log_path.read_text()[-4000:])


@pytest.fixture
def workers(redis, tmp_path):
    pool = Workers(redis.url, tmp_path)
    yield pool
    pool.stop_all()


@pytest.fixture
def study(researcher, settings):
    """4 images, 6 pairs, 3 raters who judged every pair; no fit yet."""
    settings.PREFLAB_AUTO_FIT_DELAY_S = 3600
    project = annotator_services.project_create(owner=researcher, name="Faults", overlap=8)
    for _ in range(4):
        ItemFactory(project=project, prompt="p")
    annotator_services.consent_version_create(project=project, text="You agree to take part.")
    annotator_services.instruction_version_create(project=project, text="Choose.", created_by=researcher)
    annotator_services.tasks_generate_within_prompt(project=project)
    for _ in range(3):
        rater = ready_rater(project)
        while (a := annotator_services.assignment_next(rater=rater)) is not None:
            annotator_services.judgment_create(rater=rater, assignment_id=a.pk, choice="left",
                                               idempotency_key=uuid.uuid4(),
                                               instruction_version_id=rater.acknowledged_instruction_id)
    FitRun.objects.filter(project=project).delete()
    return project


@pytest.fixture
def scores_locked():
    """Hold an exclusive lock on the item-scores table from a separate connection until released."""
    if connection.vendor != "postgresql":
        pytest.skip("holding a table lock from another connection needs PostgreSQL")
    db = connection.settings_dict
    conn = psycopg.connect(host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"],
                           password=db["PASSWORD"] or None, dbname=db["NAME"])
    conn.execute("BEGIN")
    conn.execute("LOCK TABLE ranking_itemscore IN ACCESS EXCLUSIVE MODE")

    class Lock:
        held = True

        def release(self):
            if self.held:
                conn.rollback()
                self.held = False

    lock = Lock()
    yield lock
    lock.release()
    conn.close()


def _running(run_id: int):
    run = FitRun.objects.get(pk=run_id)
    return run if run.status == "running" and run.lease_owner else None


def _finished(run_id: int):
    run = FitRun.objects.get(pk=run_id)
    return run if run.status in ("succeeded", "failed", "superseded") else None


def test_kill_9_of_the_pool_child_mid_fit_is_taken_over_once(study, redis, workers, publish_to, scores_locked):
    publish_to(redis.url)
    worker = workers.start()
    run = fit_runs.fit_run_request(project=study)  # committed, then published to the private broker
    running = _wait(lambda: _running(run.pk), 60, "the worker to claim the fit")
    first_owner = running.lease_owner
    time.sleep(LEASE_S)  # blocked storing its scores
    assert _running(run.pk).lease_owner == first_owner
    child = int(first_owner.split(":")[1])  # the lease names the process running the job
    assert child in workers.pool_children(worker) and child != worker.pid
    os.kill(child, signal.SIGKILL)
    scores_locked.release()
    done = _wait(lambda: _finished(run.pk), 90, "the fit to finish after the child was killed")
    assert done.status == "succeeded", done.error
    assert done.attempts == 2 and done.lease_owner == "" and done.lease_owner != first_owner
    assert ItemScore.objects.filter(fit=done).count() == 4  # one set of scores
    time.sleep(2)  # later sweeps and redeliveries change nothing
    again = FitRun.objects.get(pk=run.pk)
    assert (again.status, again.finished_at, again.attempts) == ("succeeded", done.finished_at, 2)
    assert ItemScore.objects.filter(fit=done).count() == 4


def test_kill_9_of_the_whole_worker_mid_fit_is_taken_over_by_another(study, redis, workers, publish_to,
                                                                        scores_locked):
    publish_to(redis.url)
    first = workers.start()
    run = fit_runs.fit_run_request(project=study)
    _wait(lambda: _running(run.pk), 60, "the first worker to claim the fit")
    workers.kill_group(first)  # main process, pool child and beat: the message stays unacknowledged
    scores_locked.release()
    workers.start()  # its beat sweeps: the expired lease is published again and taken over
    done = _wait(lambda: _finished(run.pk), 90, "the fit to finish on the second worker")
    assert done.status == "succeeded", done.error
    assert done.attempts == 2
    assert ItemScore.objects.filter(fit=done).count() == 4


def _submit_as_new_raters(client, study, settings, prefix: str, n_raters: int = 3, per_rater: int = 2) -> int:
    """New raters join and answer over HTTP; every answer must be stored (201) within the publish timeout."""
    submitted = 0
    for i in range(n_raters):
        client.cookies.clear()
        assert client.get(join_url(study, PROLIFIC_PID=f"{prefix}{i}")).status_code == 302
        walk_to_tasks(client, study)
        for _ in range(per_rater):
            body = client.get(reverse("rater:api_next", args=[study.slug])).json()
            started = time.monotonic()
            response = client.post(reverse("rater:api_judgments", args=[study.slug]), {
                "assignment": body["assignment"]["id"], "choice": "right", "idempotency_key": str(uuid.uuid4()),
                "instruction_version": body["instruction_version"]}, content_type="application/json")
            elapsed = time.monotonic() - started
            assert response.status_code == 201, response.content
            # A hang detector, not a speed check: a frozen broker used to hold a request for 75 s; the
            # publish is bounded by PREFLAB_PUBLISH_TIMEOUT_S (2 s), with a wide margin for a loaded machine.
            assert elapsed < settings.PREFLAB_PUBLISH_TIMEOUT_S + 10, elapsed
            submitted += 1
    assert Judgment.objects.filter(project=study, rater__prolific_pid__startswith=prefix).count() == submitted
    return submitted


@pytest.mark.parametrize("outage", ["stopped", "frozen"])
def test_broker_outage_never_fails_a_submission_and_the_refit_runs_when_it_is_back(
        study, redis, workers, publish_to, client, settings, outage):
    settings.PREFLAB_AUTO_FIT_DELAY_S = 0.5
    publish_to(redis.url)
    if outage == "stopped":
        redis.stop()
    else:
        redis.proc.send_signal(signal.SIGSTOP)  # accepts connections, answers nothing
    assert _submit_as_new_raters(client, study, settings, prefix=f"{outage}-") == 6
    (pending,) = FitRun.objects.filter(project=study, automatic=True)
    assert pending.status == "queued" and pending.published_at is None  # still in the outbox

    if outage == "stopped":
        redis.start()  # the broker is back: a worker starts, its beat sweep publishes the outbox
    else:
        redis.proc.send_signal(signal.SIGCONT)
    workers.start()
    done = _wait(lambda: _finished(pending.pk), 90, "the refit after the broker came back")
    assert done.status == "succeeded", done.error
    assert done.attempts == 1 and done.published_at is not None
    assert done.summary["n_comparisons"] == 3 * 6 + 6
    assert FitRun.objects.filter(project=study, status="succeeded").count() == 1


def test_a_duplicated_message_gives_one_result(study, redis, workers, publish_to):
    publish_to(redis.url)
    workers.start()
    run = fit_runs.fit_run_request(project=study)
    jobs.broker_send(task_name="ranking.fit_run_execute", job_id=run.pk)  # the same message again
    jobs.broker_send(task_name="ranking.fit_run_execute", job_id=run.pk)
    done = _wait(lambda: _finished(run.pk), 60, "the fit")
    time.sleep(2)  # the duplicates are consumed meanwhile
    done.refresh_from_db()
    assert done.status == "succeeded" and done.attempts == 1
    assert ItemScore.objects.filter(fit=done).count() == 4

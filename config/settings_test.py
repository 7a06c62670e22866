"""Test settings: the production module with test-only overrides.

The database and broker still come from ``DATABASE_URL`` / ``CELERY_BROKER_URL``
(PostgreSQL and Redis in CI); without them the embedded SQLite default is used.
"""

import os
import secrets
import tempfile

# token_urlsafe never starts with "$", which the settings loader would read as a reference to another variable.
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("PREFLAB_VAR_DIR", tempfile.mkdtemp(prefix="preflab-test-"))

from config.settings import *  # noqa: F403
from config.settings import DATABASES, REST_FRAMEWORK, VAR_DIR

DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_THROTTLE_RATES": {"join": "1000/minute", "judgment_submit": "10000/minute",
                               "next_task": "10000/minute", "user": "100000/minute", "login": "1000/minute",
                               "webhook": "10000/minute"},
}

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not memory, so that a real Celery worker process (tests/integration/test_worker.py) sees it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}

# Jobs run in the test process inside a test's transaction: a heartbeat thread (its own database
# connection) would not see the job's row. Tests that need the lease renewed start real workers,
# which read their own settings from the environment.
PREFLAB_JOB_HEARTBEAT_S = 3600.0
PREFLAB_ROUND_ALARM_SIMS = 30  # round results in tests: a quick drift-alarm simulation
# One test process: its cache is shared by everything it runs, so sessions read through it (as production with Redis).
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

"""PrefLab settings: one module, configured from the environment.

Every deployment-specific value comes from an environment variable (see
``.env.example``). With nothing set, PrefLab runs on the embedded default: an
SQLite database and a Celery broker on the local filesystem, both under
``var/``. Production sets ``DATABASE_URL`` (PostgreSQL) and ``CELERY_BROKER_URL``
(Redis) and leaves ``DEBUG`` off.
"""

from pathlib import Path

import environ

from config.security_headers import DEFAULT_CONTENT_SECURITY_POLICY, DEFAULT_PERMISSIONS_POLICY

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("PREFLAB_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()
env_file = BASE_DIR / ".env"
if env_file.exists():
    environ.Env.read_env(str(env_file))

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY")
# The placeholders of .env.example and anything short are refused outside DEBUG: sessions, CSRF tokens
# and password resets are signed with this key.
if not DEBUG and (SECRET_KEY in ("change-me", "changeme", "secret", "") or len(SECRET_KEY) < 32):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        "SECRET_KEY is a placeholder or shorter than 32 characters; set a long random value, e.g. "
        "python -c \"import secrets; print(secrets.token_urlsafe(50))\"")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "annotator",
    "ranking",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.security_headers.SecurityHeadersMiddleware",  # Content-Security-Policy, Permissions-Policy
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'preflab.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Several processes (web + worker) share the embedded database: wait for locks.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# PostgreSQL: the rater hot path's hand-written statements (annotator/sql.py) are prepared once they ran this
# many times on a connection, so the statements every answer repeats are parsed and planned once
# (bench/bench_http.py: 3.3 → 2.2 ms of PostgreSQL CPU per answer). 0 turns it off, e.g. behind a pooler in
# transaction mode (PgBouncer before 1.21) that cannot keep prepared statements. Other queries are not prepared.
PREFLAB_PREPARE_THRESHOLD = env.int("DATABASE_PREPARE_THRESHOLD", default=5)

CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://preflab")}
# Sessions: read through the cache (no query per rater request) when the cache is shared by every process
# (CACHE_URL, e.g. Redis); with the per-process default cache, from the database.
SESSION_ENGINE = ("django.contrib.sessions.backends.cached_db" if env.str("CACHE_URL", default="")
                  else "django.contrib.sessions.backends.db")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "annotator:project_list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "staticfiles")))
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
MEDIA_URL = "/media-not-served/"  # item images are served only through permission-checked views
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = 2000

# Upload limits (see annotator/imports.py).
PREFLAB_UPLOAD = {
    "MAX_FILE_BYTES": env.int("PREFLAB_MAX_IMAGE_BYTES", default=25 * 1024 * 1024),
    "MAX_PIXELS": env.int("PREFLAB_MAX_IMAGE_PIXELS", default=40_000_000),
    "MAX_ARCHIVE_BYTES": env.int("PREFLAB_MAX_ARCHIVE_BYTES", default=2 * 1024 * 1024 * 1024),
    "MAX_ARCHIVE_MEMBERS": env.int("PREFLAB_MAX_ARCHIVE_MEMBERS", default=50_000),
    "MAX_COMPRESSION_RATIO": env.int("PREFLAB_MAX_COMPRESSION_RATIO", default=200),
    # Everything one upload brings in, uncompressed (archives' members and plain files together): the
    # import holds an upload's accepted images in memory until all are checked, so this bounds a worker.
    "MAX_UPLOAD_UNCOMPRESSED_BYTES": env.int("PREFLAB_MAX_UPLOAD_UNCOMPRESSED_BYTES", default=512 * 1024 * 1024),
    "FORMATS": ("PNG", "JPEG", "WEBP", "GIF"),
}

# REST API
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON with a nesting limit (annotator/parsers.py); forms for the browsable pages' uploads.
    "DEFAULT_PARSER_CLASSES": [
        "annotator.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Clients are told apart by address, reading X-Forwarded-For only from PREFLAB_TRUSTED_PROXIES
    # (annotator/throttles.py). The researcher API is throttled per user; rater views set their own.
    "DEFAULT_THROTTLE_CLASSES": ["annotator.throttles.ResearcherThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "join": env.str("THROTTLE_JOIN", default="30/minute"),
        "judgment_submit": env.str("THROTTLE_SUBMIT", default="240/minute"),
        "next_task": env.str("THROTTLE_NEXT", default="600/minute"),
        "user": env.str("THROTTLE_API", default="1200/minute"),
        "login": env.str("THROTTLE_LOGIN", default="20/minute"),
        "webhook": env.str("THROTTLE_WEBHOOK", default="600/minute"),
    },
    "EXCEPTION_HANDLER": "annotator.api.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "PrefLab API",
    "DESCRIPTION": "Projects, items, instructions, tasks, judgments, fits and agreement for human judgments of images.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Both tasks and metrics have a "kind": give each choice set its own schema name.
    # Enum names, then every operation's error responses in the documented shape (config/openapi.py).
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "config.openapi.error_responses"],
    "ENUM_NAME_OVERRIDES": {
        "TaskKindEnum": "annotator.models.TaskKind", "MetricKindEnum": "ranking.models.MetricKind",
        "MetricDirectionEnum": "ranking.models.MetricDirection", "GateDirectionEnum": "ranking.models.GateDirection",
        "JobStatusEnum": "ranking.models.JobStatus", "ProposalStatusEnum": "ranking.models.ProposalStatus",
        "RoundStatusEnum": "ranking.models.RoundStatus", "AdaptiveTargetEnum": "annotator.models.AdaptiveTarget",
    },
}

# Celery: the broker needs no server by default (kombu's filesystem transport).
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("in", "processed", "control"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "in"),
        "data_folder_out": str(BROKER_DIR / "in"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
# Publishing a job never waits long on the broker (a judgment's request must not hang on it): the
# outbox row stays queued and the job sweep publishes it later. The visibility timeout (how long
# Redis waits before redelivering an unacknowledged message) exceeds every task's hard time limit
# (fits: 1,900 s); a worker killed outright is covered sooner by the job sweep's lease check.
PREFLAB_PUBLISH_TIMEOUT_S = env.float("PREFLAB_PUBLISH_TIMEOUT_S", default=2.0)
CELERY_BROKER_CONNECTION_TIMEOUT = PREFLAB_PUBLISH_TIMEOUT_S
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int("PREFLAB_VISIBILITY_TIMEOUT_S", default=3600),
        "socket_connect_timeout": PREFLAB_PUBLISH_TIMEOUT_S,
        "socket_timeout": max(PREFLAB_PUBLISH_TIMEOUT_S, 2.0),  # above the worker's 1 s BRPOP poll
        "retry_on_timeout": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE = {
    "expire-abandoned-assignments": {"task": "annotator.assignments_expire", "schedule": 300.0},
    "refit-stale-projects": {"task": "ranking.fit_sweep", "schedule": env.float("PREFLAB_SWEEP_EVERY_S", default=300.0)},
    "sweep-jobs": {"task": "ranking.jobs_sweep", "schedule": env.float("PREFLAB_JOB_SWEEP_EVERY_S", default=30.0)},
    "scheduled-rounds": {"task": "ranking.rounds_schedule_due",
                         "schedule": env.float("PREFLAB_ROUND_SCHEDULE_EVERY_S", default=900.0)},
}
# The job lifecycle (ranking/jobs.py): a worker's lease on a job lasts PREFLAB_JOB_LEASE_S and is
# renewed every PREFLAB_JOB_HEARTBEAT_S; a queued job not started PREFLAB_JOB_REPUBLISH_AFTER_S after
# it was published is published again; a job whose worker was lost this many times is failed.
PREFLAB_JOB_LEASE_S = env.float("PREFLAB_JOB_LEASE_S", default=30.0)
# Monte Carlo runs behind the drift alarm's measured false-alarm rate and detection delay (round results).
PREFLAB_ROUND_ALARM_SIMS = env.int("PREFLAB_ROUND_ALARM_SIMS", default=200)
# The drift alarm across rounds (a one-sided CUSUM, ranking.core.rounds.cusum_drift): its baseline is the
# mean of the first N rounds, and it fires when the statistic exceeds H standard errors. With rounds of 10
# images and 3 raters, N = 5 and H = 5 trade about 1 false alarm in 5 runs of 20 rounds for catching a
# 5-point drop in about half of them (see README).
PREFLAB_ROUND_ALARM_BASELINE = env.int("PREFLAB_ROUND_ALARM_BASELINE", default=5)
PREFLAB_ROUND_ALARM_H = env.float("PREFLAB_ROUND_ALARM_H", default=5.0)
PREFLAB_JOB_HEARTBEAT_S = env.float("PREFLAB_JOB_HEARTBEAT_S", default=5.0)
PREFLAB_JOB_REPUBLISH_AFTER_S = env.float("PREFLAB_JOB_REPUBLISH_AFTER_S", default=120.0)
PREFLAB_JOB_MAX_ATTEMPTS = env.int("PREFLAB_JOB_MAX_ATTEMPTS", default=3)
PREFLAB_ASSIGNMENT_TIMEOUT_MIN = env.float("PREFLAB_ASSIGNMENT_TIMEOUT_MIN", default=30.0)
PREFLAB_AUTO_FIT_DELAY_S = env.float("PREFLAB_AUTO_FIT_DELAY_S", default=10.0)
# Metric plugins' weights (ranking/metric_plugins, docs/metric-weights.md): copied here by hand, never downloaded.
PREFLAB_WEIGHTS_DIR = Path(env.str("PREFLAB_WEIGHTS_DIR", default=str(VAR_DIR / "weights")))

# Security: strict unless DEBUG.
# Proxies whose X-Forwarded-For is believed (addresses or CIDR networks, e.g. "10.0.0.0/8"); empty: the
# socket address is the client, whatever the header says. Used by every throttle and the login lockout.
PREFLAB_TRUSTED_PROXIES = env.list("PREFLAB_TRUSTED_PROXIES", default=[])
# Login lockout: this many failed logins for one username from one address lock that pair out this long.
PREFLAB_LOGIN_MAX_FAILURES = env.int("PREFLAB_LOGIN_MAX_FAILURES", default=5)
PREFLAB_LOGIN_LOCKOUT_S = env.int("PREFLAB_LOGIN_LOCKOUT_S", default=900)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy and Permissions-Policy for every response (config/security_headers.py holds the
# defaults: scripts only from our static files, no plugins, no framing; no camera, microphone, location…).
# Set to a full policy to replace it, or to "" to send none (e.g. when a proxy adds its own).
PREFLAB_CONTENT_SECURITY_POLICY = env.str("PREFLAB_CONTENT_SECURITY_POLICY", default=DEFAULT_CONTENT_SECURITY_POLICY)
PREFLAB_PERMISSIONS_POLICY = env.str("PREFLAB_PERMISSIONS_POLICY", default=DEFAULT_PERMISSIONS_POLICY)
SESSION_COOKIE_HTTPONLY = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}

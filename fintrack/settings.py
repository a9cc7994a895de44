"""FinTrack settings: one env-driven module.

Zero environment variables give the embedded default (SQLite, a file-system Celery broker, the
built-in sandbox banks, a generated local secret). `FINTRACK_ENV=production` refuses to start
without a secret key, allowed hosts, PostgreSQL and Redis. Every variable is in `.env.example`.
"""

import secrets
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from fintrack.core.schema import API_DESCRIPTION

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("FINTRACK_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env")

FINTRACK_ENV = env.str("FINTRACK_ENV", default="embedded")
IS_PRODUCTION = FINTRACK_ENV == "production"
TESTING = env.bool("FINTRACK_TESTING", default=False)


def _require(name: str) -> str:
    value = env.str(name, default="")
    if not value:
        raise ImproperlyConfigured(f"{name} is required when FINTRACK_ENV=production")
    return value


def _local_secret() -> str:
    """A secret generated once per checkout, so sessions and tokens survive restarts."""
    path = VAR_DIR / "secret_key"
    if path.is_file():
        return path.read_text().strip()
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(50)
    path.write_text(value)
    path.chmod(0o600)
    return value


# --- Core -------------------------------------------------------------------------------------
if IS_PRODUCTION:
    SECRET_KEY = _require("DJANGO_SECRET_KEY")
    ALLOWED_HOSTS = [h.strip() for h in _require("DJANGO_ALLOWED_HOSTS").split(",") if h.strip()]
    DEBUG = False
else:
    SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="") or _local_secret()
    ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["*"])
    DEBUG = env.bool("DJANGO_DEBUG", default=True)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "corsheaders",
    "django_celery_beat",
    "fintrack.core",
    "users",
    "banking",
    "consents",
    "sync",
    "analytics",
    "audit",
    "sandbox",
]

MIDDLEWARE = [
    # First: everything after it (its log lines, the bank calls' raw logs, audit events) runs under
    # the request's correlation id, echoed in the X-Correlation-Id response header.
    "fintrack.core.logging.CorrelationIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    # A NUL byte in the path, query or JSON body is a 400 before any view (PostgreSQL refuses it).
    "fintrack.core.middleware.RejectNulBytesMiddleware",
    # Bank calls made for a request end within BANK_WEB_REQUEST_DEADLINE_SECONDS of its start.
    "banking.middleware.BankCallDeadlineMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "fintrack.urls"
WSGI_APPLICATION = "fintrack.wsgi.application"
ASGI_APPLICATION = "fintrack.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

# --- Database ---------------------------------------------------------------------------------
if IS_PRODUCTION:
    DATABASES = {"default": env.db_url_config(_require("DATABASE_URL"))}
    if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL in production")
elif env.str("DATABASE_URL", default=""):
    DATABASES = {"default": env.db_url("DATABASE_URL")}
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "fintrack.sqlite3",
            "OPTIONS": {
                # WAL lets the web process read while the worker writes; the busy timeout makes a
                # writer wait for the lock instead of failing, and IMMEDIATE takes the write lock at
                # BEGIN so two writers never deadlock upgrading a read lock.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
            },
        }
    }
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=0))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth -------------------------------------------------------------------------------------
AUTH_USER_MODEL = "users.User"
AUTHENTICATION_BACKENDS = ["users.backends.EmailOrPhoneBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if TESTING:
    # Hashing is deliberately slow; tests create many users and do not measure it.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# In the embedded default whitenoise serves straight from the apps' static folders.
WHITENOISE_USE_FINDERS = not IS_PRODUCTION
WHITENOISE_AUTOREFRESH = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if IS_PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# --- Security (production) --------------------------------------------------------------------
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
# The embedded default is for development: a frontend on any localhost port (Vite, Next, CRA)
# may call the API. Production allows only CORS_ALLOWED_ORIGINS.
CORS_ALLOWED_ORIGIN_REGEXES = (
    [] if IS_PRODUCTION else [r"^https?://(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?$"]
)
# The API authenticates with bearer tokens, never cookies; the frontend reads these headers.
CORS_EXPOSE_HEADERS = ["ETag", "Retry-After", "X-Correlation-Id"]
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
if IS_PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_REDIRECT_EXEMPT = [r"^api/health$"]

# --- DRF, JWT, OpenAPI ------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # simplejwt's, refusing access tokens ended by logout (users.models.RevokedAccessToken).
        "users.backends.DenyListJWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["fintrack.core.parsers.SafeJSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "fintrack.core.exception_handler.exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "login": env.str("THROTTLE_LOGIN_RATE", default="10/min"),
        "register": env.str("THROTTLE_REGISTER_RATE", default="5/min"),
        "sync": env.str("THROTTLE_SYNC_RATE", default="30/min"),
        # Per user: password change and account deletion (each checks the password) and the
        # data export (heavy: every row of the user).
        "password": env.str("THROTTLE_PASSWORD_RATE", default="5/min"),
        "data_export": env.str("THROTTLE_DATA_EXPORT_RATE", default="10/hour"),
    },
    # Throttles key anonymous clients on their address. With NUM_PROXIES unset DRF believes any
    # X-Forwarded-For header, so a brute-forcer resets the login throttle by sending a new one
    # per attempt. Count only the proxies we run (0: REMOTE_ADDR; 1: behind one reverse proxy).
    "NUM_PROXIES": env.int("TRUSTED_PROXY_COUNT", default=0),
    "UNAUTHENTICATED_USER": None,
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append(
        "rest_framework.renderers.BrowsableAPIRenderer"
    )

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
    # Refresh tokens are recorded by jti and SHA-256 only (users.tokens), and a deleted user's
    # token is a 401, not a 500.
    "TOKEN_REFRESH_SERIALIZER": "users.serializers.HashedTokenRefreshSerializer",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "FinTrack API",
    # The vocabulary every endpoint shares (names, money, times, filters): fintrack/core/schema.py
    "DESCRIPTION": API_DESCRIPTION,
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_SETTINGS": {"persistAuthorization": True},
    # Several models have a `status`/`state`/`kind`; name each enum after its meaning.
    "ENUM_NAME_OVERRIDES": {
        "TransactionStatusEnum": "banking.models.TransactionStatus",
        "ConnectionStatusEnum": "banking.models.ConnectionStatus",
        "ConsentStatusEnum": "consents.models.ConsentStatus",
        "SyncStatusEnum": "sync.models.SyncStatus",
        "SyncKindEnum": "sync.models.SyncKind",
        "ConsentKindEnum": "consents.models.ConsentKind",
        "CategoryKindEnum": "banking.models.CategoryKind",
        "DataStateEnum": ["ready", "no_data"],
        "RecomputeStateEnum": ["scheduled"],
        "BankCodeEnum": "banking.models.BankCode",
        "ConsentStateEnum": "consents.serializers.CONSENT_STATES",
        "HistoryStateEnum": ["loading", "complete"],
        "SyncPhaseEnum": "sync.models.SyncPhase",
        "HistoryPhaseEnum": ["recent", "backfill", "done"],
    },
    # After drf-spectacular's enum hook: money patterns exact, bank_code parameters as enums.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "fintrack.core.schema.vocabulary_postprocess",
    ],
}

# Cache: throttling counters and small lookups. Redis in production so limits hold across workers.
REDIS_CACHE_URL = env.str("REDIS_CACHE_URL", default="")
if REDIS_CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_CACHE_URL,
            # A Redis that hangs must not hang requests: throttles fall back to a local counter
            # (fintrack.core.throttling) when a cache call fails within this time.
            "OPTIONS": {
                "socket_connect_timeout": env.float("REDIS_CACHE_TIMEOUT_SECONDS", default=0.5),
                "socket_timeout": env.float("REDIS_CACHE_TIMEOUT_SECONDS", default=0.5),
            },
        }
    }
elif TESTING:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
else:
    # The embedded default: one SQLite file shared by the web process and the worker, so the
    # analytics debounce, recompute state and throttles behave as with Redis (no service needed).
    CACHES = {
        "default": {
            "BACKEND": "fintrack.core.cache.SQLiteFileCache",
            "LOCATION": env.str("EMBEDDED_CACHE_PATH", default=str(VAR_DIR / "cache.sqlite3")),
            "OPTIONS": {"MAX_ENTRIES": 100000},
        }
    }

# --- Celery -----------------------------------------------------------------------------------
if IS_PRODUCTION:
    CELERY_BROKER_URL = _require("CELERY_BROKER_URL")
    if not CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        raise ImproperlyConfigured("CELERY_BROKER_URL must be a Redis URL in production")
else:
    CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
BROKER_DIR = VAR_DIR / "broker"
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("queue", "processed", "control"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "data_folder_processed": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
else:
    # visibility_timeout must exceed the longest task, or Redis redelivers it while it runs.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
    # A Redis that is down or hangs must not hang the web request sending a task (the send
    # fails within seconds, fintrack.core.tasks.enqueue logs it), nor leave a worker on a dead
    # socket: bounded connect and command times, TCP keepalive, and a PING before reusing a
    # connection idle over health_check_interval seconds. Above the 1 s BRPOP poll of workers.
    CELERY_BROKER_TRANSPORT_OPTIONS.update(
        socket_connect_timeout=2, socket_timeout=5, socket_keepalive=True, health_check_interval=10
    )
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=900)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=960)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# The worker outlives broker restarts (fintrack/tests/test_broker_restart.py): it reconnects for
# as long as the broker is away (the default gives up after 100 tries, and the worker exits).
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# A task running when the broker connection drops cannot be acknowledged, and its message may be
# redelivered at once (Redis restores unacked messages when the channel closes): stop it, so one
# message never has two holders (a redelivered sync takes its run over, sync.services).
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
# Sending a task: two quick retries (a broker restart), then the error goes to the caller, who
# survives it (fintrack.core.tasks.enqueue). Celery's default waits longer and retries three times.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
# Task modules autodiscovery (`<app>.tasks`) does not find: a package's own tasks.
CELERY_IMPORTS = ["users.onboarding.tasks"]
# Queues per kind of work (fintrack/celery.py): bank work on `sync` (the default: syncs, their
# fan-out chunks, consent polls), recomputations on `analytics`, housekeeping on `maintenance`
# (beat's fan-out, the reaper, purges), so a backlog of syncs never delays the reaper. A worker
# without -Q consumes all three; production runs one per `sync` and one per the other two.
CELERY_TASK_QUEUES = [
    Queue(name, routing_key=name) for name in ("sync", "analytics", "maintenance")
]
CELERY_TASK_DEFAULT_QUEUE = "sync"
CELERY_TASK_ROUTES = {
    "analytics.*": {"queue": "analytics"},
    "sync.sync_all_due": {"queue": "maintenance"},
    "sync.reap_stale_runs": {"queue": "maintenance"},
    "onboarding.reap_stale_connect_requests": {"queue": "maintenance"},
    "audit.*": {"queue": "maintenance"},
}

# --- Banks ------------------------------------------------------------------------------------
SITE_URL = env.str("FINTRACK_SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
BANK_TEAM_ID = env.str("BANK_TEAM_ID", default="team260")
# A team registered through a bank gets a different secret at each bank (SPEC §17): per-bank
# credentials, each empty by default = the shared BANK_TEAM_ID / BANK_TEAM_SECRET. The fallback is
# applied where they are read (banking.services.clients.team_credentials, sandbox.auth), so
# a change of the shared pair is followed at once.
VBANK_TEAM_ID = env.str("VBANK_TEAM_ID", default="")
VBANK_TEAM_SECRET = env.str("VBANK_TEAM_SECRET", default="")
ABANK_TEAM_ID = env.str("ABANK_TEAM_ID", default="")
ABANK_TEAM_SECRET = env.str("ABANK_TEAM_SECRET", default="")
SBANK_TEAM_ID = env.str("SBANK_TEAM_ID", default="")
SBANK_TEAM_SECRET = env.str("SBANK_TEAM_SECRET", default="")
if IS_PRODUCTION:
    # Either the shared secret or all three per-bank ones.
    BANK_TEAM_SECRET = env.str("BANK_TEAM_SECRET", default="")
    if not BANK_TEAM_SECRET and not all((VBANK_TEAM_SECRET, ABANK_TEAM_SECRET, SBANK_TEAM_SECRET)):
        raise ImproperlyConfigured(
            "BANK_TEAM_SECRET is required when FINTRACK_ENV=production "
            "(or all of VBANK_TEAM_SECRET, ABANK_TEAM_SECRET and SBANK_TEAM_SECRET)"
        )
else:
    # The embedded sandbox accepts whatever secret it is configured with; derive a stable one.
    BANK_TEAM_SECRET = env.str("BANK_TEAM_SECRET", default="") or f"sandbox-{SECRET_KEY[:16]}"
BANK_CODES = ("vbank", "abank", "sbank")
BANKS = {
    "vbank": {
        "name": "Virtual Bank",
        "base_url": env.str("VBANK_BASE_URL", default=f"{SITE_URL}/sandbox/vbank"),
    },
    "abank": {
        "name": "Awesome Bank",
        "base_url": env.str("ABANK_BASE_URL", default=f"{SITE_URL}/sandbox/abank"),
    },
    "sbank": {
        "name": "Smart Bank",
        "base_url": env.str("SBANK_BASE_URL", default=f"{SITE_URL}/sandbox/sbank"),
    },
}
# Whether FinTrack proposes a free demo client (`<team id>-<n>`, the first n not taken at that
# bank) when a user connects a bank without giving a client id, so the demo is one click. The
# embedded sandbox serves any client number; live banks know only the team's own test clients.
# Off: the user must give the client id they have at the bank (400 otherwise).
DEMO_BANK_CLIENTS = env.bool("DEMO_BANK_CLIENTS", default=not IS_PRODUCTION)
# Keep-alive HTTP connections a bank client keeps open (a sync reads accounts in parallel).
BANK_HTTP_CONNECTIONS = env.int("BANK_HTTP_CONNECTIONS", default=4)
BANK_TIMEOUT_SECONDS = env.float("BANK_TIMEOUT_SECONDS", default=10.0)
# Bank calls made while answering a web request end (retries and waits included) within this many
# seconds of the request's start: below gunicorn's timeout (30 s), so the user gets a JSON 503
# rather than a killed worker's HTML 500. 0 = no deadline. Workers' tasks have none.
BANK_WEB_REQUEST_DEADLINE_SECONDS = env.float("BANK_WEB_REQUEST_DEADLINE_SECONDS", default=20.0)
# The largest bank response body read (streamed; a bigger one is refused unread). A transactions
# page of 100 items is ~100 KB.
BANK_MAX_RESPONSE_BYTES = env.int("BANK_MAX_RESPONSE_BYTES", default=4 * 1024 * 1024)
BANK_MAX_RETRIES = env.int("BANK_MAX_RETRIES", default=3)
BANK_RETRY_BACKOFF_SECONDS = env.float("BANK_RETRY_BACKOFF_SECONDS", default=0.5)
BANK_RETRY_MAX_SLEEP_SECONDS = env.float("BANK_RETRY_MAX_SLEEP_SECONDS", default=10.0)
# The most one bank call waits out a bank's Retry-After (429) in total before retrying; a longer
# wait raises BankUnavailableError with the bank's retry_after instead (a sync task retries then;
# an API call answers 503). Below gunicorn's 30 s timeout, so a web request never sleeps past it.
BANK_RETRY_AFTER_MAX_SECONDS = env.float("BANK_RETRY_AFTER_MAX_SECONDS", default=20.0)
# --- Bank call limits (banking/clients/ratelimit.py, circuit.py; the retry layers: transport.py)
# Calls per second to one bank from all of FinTrack together (every worker, process and machine:
# a schedule in Redis), never more in any one second. A bank's own <CODE>_RATE_LIMIT_PER_SECOND,
# when above 0, replaces it for that bank. 0 = no limit. The live banks publish no limit (SPEC
# §10; their nginx answered 429 under load): 20 in production; the embedded sandbox is local, 100;
# tests, whose faked banks answer in microseconds, 1000 (the limit's own tests set theirs).
BANK_RATE_LIMIT_PER_SECOND = env.float(
    "BANK_RATE_LIMIT_PER_SECOND",
    default=20.0 if IS_PRODUCTION else (1000.0 if TESTING else 100.0),
)
# Slots are spaced 1/(rate × (1 − headroom)) apart, so a call that leaves a little late (a busy
# CPU, a connection being opened) next to one on time still keeps the bank under its limit.
BANK_RATE_LIMIT_HEADROOM = env.float("BANK_RATE_LIMIT_HEADROOM", default=0.1)
# Slots a late caller left unused that callers coming early may make up, at most (the GCRA's
# burst): only half of what the headroom spares a second, less one, is ever taken (100/s: 4;
# 20/s: none), so the bank still sees fewer calls than its limit in any second. 0 = no burst.
BANK_RATE_LIMIT_BURST = env.int("BANK_RATE_LIMIT_BURST", default=4)
VBANK_RATE_LIMIT_PER_SECOND = env.float("VBANK_RATE_LIMIT_PER_SECOND", default=0.0)
ABANK_RATE_LIMIT_PER_SECOND = env.float("ABANK_RATE_LIMIT_PER_SECOND", default=0.0)
SBANK_RATE_LIMIT_PER_SECOND = env.float("SBANK_RATE_LIMIT_PER_SECOND", default=0.0)
# The Redis holding the shared schedule: by default the cache's, else the broker's when it is
# Redis. Empty (the embedded default): each process keeps the limit for its own calls.
BANK_RATE_LIMIT_REDIS_URL = env.str("BANK_RATE_LIMIT_REDIS_URL", default="") or (
    REDIS_CACHE_URL
    or (CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else "")
)
# While that Redis is unreachable each process keeps 1/N of the rate (N = the processes assumed
# to call one bank at once), logs it once, and tries Redis again every 30 s.
BANK_RATE_LIMIT_FALLBACK_PROCESSES = env.int("BANK_RATE_LIMIT_FALLBACK_PROCESSES", default=4)
# The longest a bank call waits for its slot; a later one fails it (bank_rate_limited, retried
# later by a sync task; a 503 with retry_after_seconds to an API call).
BANK_RATE_LIMIT_MAX_WAIT_SECONDS = env.float("BANK_RATE_LIMIT_MAX_WAIT_SECONDS", default=30.0)
# Circuit breaker per bank, shared through the cache: this many failed calls in a row (5xx,
# timeouts, connection errors; never a 4xx), each within the window of the one before, open it
# (0 = no breaker). Open, calls fail at once (bank_circuit_open, retry_after) for
# BANK_CIRCUIT_OPEN_SECONDS; then one probe call goes through: its success closes the circuit,
# its failure opens it again for twice as long, up to BANK_CIRCUIT_OPEN_MAX_SECONDS.
BANK_CIRCUIT_FAILURE_THRESHOLD = env.int("BANK_CIRCUIT_FAILURE_THRESHOLD", default=10)
BANK_CIRCUIT_FAILURE_WINDOW_SECONDS = env.float(
    "BANK_CIRCUIT_FAILURE_WINDOW_SECONDS", default=120.0
)
BANK_CIRCUIT_OPEN_SECONDS = env.float("BANK_CIRCUIT_OPEN_SECONDS", default=30.0)
BANK_CIRCUIT_OPEN_MAX_SECONDS = env.float("BANK_CIRCUIT_OPEN_MAX_SECONDS", default=600.0)
# Each process reads a bank's circuit from the cache at most this often and keeps it in between
# (0 = before every call): a circuit another process opens is seen here up to this much later.
BANK_CIRCUIT_STATE_READ_SECONDS = env.float("BANK_CIRCUIT_STATE_READ_SECONDS", default=1.0)
# In a sync task the task's retry is the layer that waits (sync/tasks.py): a bank call there is
# retried at most this many quick times (never more than BANK_MAX_RETRIES), sleeping at most
# BANK_TASK_MAX_SLEEP_SECONDS before each (backoff, or a Retry-After no longer); a longer wait
# becomes the task's countdown.
BANK_TASK_MAX_RETRIES = env.int("BANK_TASK_MAX_RETRIES", default=2)
BANK_TASK_MAX_SLEEP_SECONDS = env.float("BANK_TASK_MAX_SLEEP_SECONDS", default=1.0)
BANK_VERIFY_TLS = env.bool("BANK_VERIFY_TLS", default=True)
BANK_TOKEN_REFRESH_MARGIN_SECONDS = env.int("BANK_TOKEN_REFRESH_MARGIN_SECONDS", default=300)
# Key that encrypts bank tokens at rest. The embedded default derives one from SECRET_KEY.
FIELD_ENCRYPTION_KEY = env.str("FIELD_ENCRYPTION_KEY", default="")
if IS_PRODUCTION and not FIELD_ENCRYPTION_KEY:
    FIELD_ENCRYPTION_KEY = _require("FIELD_ENCRYPTION_KEY")
DEMO_BANK_CLIENT_SELF_SIGN = env.bool("DEMO_BANK_CLIENT_SELF_SIGN", default=not IS_PRODUCTION)
# A consent a connect leaves pending is polled by a task (users/onboarding/tasks.py), never by a
# GET: first this many seconds after the connect, then twice as long each time (with jitter), at
# most CONSENT_POLL_MAX_SECONDS apart, until the consent no longer waits for approval.
CONSENT_POLL_FIRST_SECONDS = env.float("CONSENT_POLL_FIRST_SECONDS", default=15)
CONSENT_POLL_MAX_SECONDS = env.float("CONSENT_POLL_MAX_SECONDS", default=600)
# The longest a status long-poll (GET /api/onboarding/status, /api/sync-runs/{id} with ?since=)
# holds a web worker waiting for a change (fintrack/core/longpoll.py); at most 25 (gunicorn's
# timeout is 30 s). Each waiting request holds one gunicorn sync worker: 0 answers at once.
STATUS_LONG_POLL_MAX_SECONDS = env.float("STATUS_LONG_POLL_MAX_SECONDS", default=25.0)
# A request still waiting for approval this long after it was made expires (consent expired,
# reason approval_timed_out; connection consent_required, approval_expired) and polling stops: a
# consent approved in the bank's own app never resolves by its request id (SPEC §16, §17).
CONSENT_APPROVAL_TIMEOUT_MINUTES = env.int("CONSENT_APPROVAL_TIMEOUT_MINUTES", default=1440)
# An authorised consent this close to its expiry is shown as expiring_soon (/api/banks, the
# dashboard, the admin), and the lifecycle task requests its renewal.
CONSENT_EXPIRY_WARNING_DAYS = env.int("CONSENT_EXPIRY_WARNING_DAYS", default=7)
# How often the consent lifecycle task (consents/tasks.py, beat) runs: approvals that timed out,
# expiries not yet known, renewals of expiring consents, superseded consents left at the bank.
CONSENT_LIFECYCLE_PERIOD_MINUTES = env.int("CONSENT_LIFECYCLE_PERIOD_MINUTES", default=60)
# A consent replaced by its renewal is revoked at the bank once no sync of that bank runs (a run
# in progress keeps using it); while one runs, the revocation is tried again this much later.
CONSENT_SUPERSEDED_REVOKE_DELAY_SECONDS = env.int(
    "CONSENT_SUPERSEDED_REVOKE_DELAY_SECONDS", default=60
)

# --- Sync and analytics -----------------------------------------------------------------------
SYNC_OVERLAP_DAYS = env.int("SYNC_OVERLAP_DAYS", default=3)
# A first sync reads, stores and analyses the newest N days of every account first (the dashboard
# is ready, "history still loading"), then the older history in the same run (sync/progressive.py);
# 0 reads it in one pass.
FIRST_SYNC_RECENT_DAYS = env.int("FIRST_SYNC_RECENT_DAYS", default=90)
SYNC_PERIODIC_MINUTES = env.int("SYNC_PERIODIC_MINUTES", default=60)
SYNC_MIN_INTERVAL_MINUTES = env.int("SYNC_MIN_INTERVAL_MINUTES", default=30)
SYNC_PAGE_LIMIT = env.int("SYNC_PAGE_LIMIT", default=100)
# Transactions are written (COPY or upsert, one commit) once this many have been read.
SYNC_WRITE_BATCH_ROWS = env.int("SYNC_WRITE_BATCH_ROWS", default=1000)
# Accounts of one connection whose transactions are read at once (PostgreSQL only): each is one
# request in flight at the bank at a time.
SYNC_PARALLEL_ACCOUNTS = env.int("SYNC_PARALLEL_ACCOUNTS", default=2)
# Read the next transaction page while the current one is stored (a helper thread; off = in turn).
SYNC_PREFETCH_PAGES = env.bool("SYNC_PREFETCH_PAGES", default=True)
# A sync task whose bank is unavailable is retried this many times, after an exponential backoff
# with jitter from SYNC_RETRY_BASE_SECONDS, never over SYNC_RETRY_MAX_SECONDS (sync/tasks.py).
SYNC_TASK_MAX_RETRIES = env.int("SYNC_TASK_MAX_RETRIES", default=5)
SYNC_RETRY_BASE_SECONDS = env.float("SYNC_RETRY_BASE_SECONDS", default=15)
SYNC_RETRY_MAX_SECONDS = env.float("SYNC_RETRY_MAX_SECONDS", default=600)
# The reaper (sync/reaper.py, beat): how often it looks, when a queued run's message counts as
# lost, when a running run's worker counts as gone, and how many attempts a run gets in all.
SYNC_REAPER_PERIOD_SECONDS = env.int("SYNC_REAPER_PERIOD_SECONDS", default=60)
SYNC_QUEUED_STALE_SECONDS = env.int("SYNC_QUEUED_STALE_SECONDS", default=300)
SYNC_HEARTBEAT_TIMEOUT_SECONDS = env.int("SYNC_HEARTBEAT_TIMEOUT_SECONDS", default=180)
SYNC_RUN_MAX_ATTEMPTS = env.int("SYNC_RUN_MAX_ATTEMPTS", default=3)
# The periodic fan-out (sync/fanout.py): connections per chunk task at most, and the share of the
# beat interval (SYNC_PERIODIC_MINUTES) its runs are spread over, so 100k connections reach the
# banks across the hour and not all at its top.
SYNC_FANOUT_CHUNK_SIZE = env.int("SYNC_FANOUT_CHUNK_SIZE", default=500)
SYNC_FANOUT_SPREAD_SHARE = env.float("SYNC_FANOUT_SPREAD_SHARE", default=0.9)
# An optional step (products, agreements) that failed on a 5xx/429/timeout is retried alone once,
# this many seconds later (with jitter, at least the bank's Retry-After); the run is `partial`.
SYNC_STEP_RETRY_SECONDS = env.float("SYNC_STEP_RETRY_SECONDS", default=120)
OWN_TRANSFER_WINDOW_DAYS = env.int("OWN_TRANSFER_WINDOW_DAYS", default=3)
PRODUCT_CATALOGUE_MAX_AGE_HOURS = env.float("PRODUCT_CATALOGUE_MAX_AGE_HOURS", default=6)
# The zone the admin console shows every time in (with seconds and the zone's name).
ADMIN_TIME_ZONE = env.str("ADMIN_TIME_ZONE", default="Europe/Moscow")
STS_RESERVE_FLOOR = env.str("STS_RESERVE_FLOOR", default="5000.00")
STS_RESERVE_SHARE = env.str("STS_RESERVE_SHARE", default="0.10")
RAW_LOG_RETENTION_DAYS = env.int("RAW_LOG_RETENTION_DAYS", default=90)
RAW_LOG_MAX_PAYLOAD_BYTES = env.int("RAW_LOG_MAX_PAYLOAD_BYTES", default=262144)

# --- Data lifecycle and connection budget (README "Data lifecycle") ----------------------------
# Retention, run by beat (the schedules are seeded by audit migration 0008, editable in the
# admin). Every purge deletes DATA_RETENTION_BATCH_ROWS rows per DELETE, each its own short
# transaction; 0 (or less) days keeps the rows forever. Raw logs: RAW_LOG_RETENTION_DAYS above
# (whole day partitions dropped on PostgreSQL; created RAW_LOG_PARTITIONS_AHEAD_DAYS ahead).
DATA_RETENTION_BATCH_ROWS = env.int("DATA_RETENTION_BATCH_ROWS", default=5000)
RAW_LOG_PARTITIONS_AHEAD_DAYS = env.int("RAW_LOG_PARTITIONS_AHEAD_DAYS", default=3)
# Analytics snapshots: each user's latest, plus the last of each UTC day for this many days.
ANALYTICS_SNAPSHOT_RETENTION_DAYS = env.int("ANALYTICS_SNAPSHOT_RETENTION_DAYS", default=90)
# Finished sync runs older than this go; each connection's latest run always stays.
SYNC_RUN_RETENTION_DAYS = env.int("SYNC_RUN_RETENTION_DAYS", default=90)
# Balance snapshots older than this are thinned to the last reading of each UTC day per account.
BALANCE_SNAPSHOT_DAILY_AFTER_DAYS = env.int("BALANCE_SNAPSHOT_DAILY_AFTER_DAYS", default=30)
AUDIT_EVENT_RETENTION_DAYS = env.int("AUDIT_EVENT_RETENTION_DAYS", default=365)

# PostgreSQL connections. One FinTrack process opens at most DATABASE_CONNECTIONS_PER_PROCESS:
# its main thread, and during a sync (fintrack.core.concurrency) one per account read at once,
# one per account's page read-ahead (SYNC_PREFETCH_PAGES) and one raw-log writer. Start-up
# refuses more than DATABASE_MAX_CONNECTIONS_PER_PROCESS. A deployment opens gunicorn workers
# × 1 + Celery prefork processes × this + beat: keep it under PostgreSQL's max_connections, or
# PgBouncer's max_client_conn (README "Connection budget", docker-compose.yml).
DATABASE_MAX_CONNECTIONS_PER_PROCESS = env.int("DATABASE_MAX_CONNECTIONS_PER_PROCESS", default=8)


def db_connections_per_process(*, parallel_accounts: int, prefetch_pages: bool) -> int:
    """The most PostgreSQL connections one process opens (see above)."""
    per_account = 2 if prefetch_pages else 1
    return 1 + max(1, parallel_accounts) * per_account + 1


DATABASE_CONNECTIONS_PER_PROCESS = db_connections_per_process(
    parallel_accounts=SYNC_PARALLEL_ACCOUNTS, prefetch_pages=SYNC_PREFETCH_PAGES
)
if DATABASE_CONNECTIONS_PER_PROCESS > DATABASE_MAX_CONNECTIONS_PER_PROCESS:
    raise ImproperlyConfigured(
        f"A process may open {DATABASE_CONNECTIONS_PER_PROCESS} database connections "
        f"(SYNC_PARALLEL_ACCOUNTS={SYNC_PARALLEL_ACCOUNTS}, SYNC_PREFETCH_PAGES="
        f"{SYNC_PREFETCH_PAGES}): over DATABASE_MAX_CONNECTIONS_PER_PROCESS="
        f"{DATABASE_MAX_CONNECTIONS_PER_PROCESS}"
    )
# "pgbouncer": FinTrack runs behind PgBouncer in transaction pooling, where a server connection
# is one client's only for a transaction. No server-side cursors (Django declares them WITH HOLD
# outside a transaction: the next FETCH could reach another server connection) and no prepared
# statements (PgBouncer before 1.21 cannot route them; Django's default with psycopg 3, forced
# here). COPY and pg_advisory_xact_lock live within one transaction: they need nothing, and no
# code takes a session-level lock or SET. Empty: connected to PostgreSQL directly.
DATABASE_POOLER = env.str("DATABASE_POOLER", default="")
if DATABASE_POOLER not in ("", "pgbouncer"):
    raise ImproperlyConfigured("DATABASE_POOLER must be empty or pgbouncer")
if DATABASE_POOLER == "pgbouncer" and DATABASES["default"]["ENGINE"].endswith("postgresql"):
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = None
# The retention tasks are housekeeping, on the maintenance queue with audit's.
CELERY_TASK_ROUTES.update(
    {
        name: {"queue": "maintenance"}
        for name in (
            "analytics.snapshots_prune",
            "sync.runs_prune",
            "banking.balance_snapshots_thin",
        )
    }
)

# --- Sandbox ----------------------------------------------------------------------------------
SANDBOX_ENABLED = env.bool("SANDBOX_ENABLED", default=not IS_PRODUCTION)
SANDBOX_SEED = env.int("SANDBOX_SEED", default=260)
# The shared secret of the sandbox's control API (/sandbox/_control/…), sent as the
# X-Sandbox-Control-Token header; empty = only a staff user's session gets in.
SANDBOX_CONTROL_TOKEN = env.str("SANDBOX_CONTROL_TOKEN", default="")
# "live": data shaped as the live banks send it (SPEC §17), ten financial lives and any client
# number beyond; "examples": the older data shaped like ../shared/bank-api/examples.
SANDBOX_DATA_STYLE = env.str("SANDBOX_DATA_STYLE", default="live")
# Clients 1 … N in the examples style (the live style serves every client number).
SANDBOX_CLIENT_COUNT = env.int("SANDBOX_CLIENT_COUNT", default=10)
# Months of generated history per account, and "client:tx_per_year[:months[:checking accounts]]"
# heavy clients (benchmarks).
SANDBOX_HISTORY_MONTHS = env.int("SANDBOX_HISTORY_MONTHS", default=12)
SANDBOX_HEAVY_CLIENTS = env.str("SANDBOX_HEAVY_CLIENTS", default="")
# Banks whose account / product-agreement consents wait for the client's approval by default.
SANDBOX_MANUAL_APPROVAL_BANKS = env.list("SANDBOX_MANUAL_APPROVAL_BANKS", default=["sbank"])
SANDBOX_MANUAL_PRODUCT_APPROVAL_BANKS = env.list(
    "SANDBOX_MANUAL_PRODUCT_APPROVAL_BANKS", default=[]
)
# Start-up fault switches, e.g. "vbank:error_rate=0.1,latency_ms=50;sbank:rate_limit_rate=0.2".
SANDBOX_FAULTS = env.str("SANDBOX_FAULTS", default="")

# --- Logging ----------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # Every line names its correlation id (the request's or the task's; "-" outside both).
    "filters": {"correlation_id": {"()": "fintrack.core.logging.CorrelationIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(correlation_id)s] %(message)s"}
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["correlation_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

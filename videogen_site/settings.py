"""videogen settings: one file, driven by environment variables (see README, "Configuration")."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url
import django_stubs_ext

from generations.ops.storage import storage_from_url

# Lets admin/model classes be subscripted for type checking (ModelAdmin[Team]) at run time.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent


def envbool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def envint(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value else default


def envlist(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def envpairs(name: str) -> list[tuple[str, str]]:
    """`key=value,key2=value2` as (key, value) pairs; an item without `=` keeps an empty
    value (`manage.py check` names it rather than the server refusing to start)."""
    pairs = []
    for item in envlist(name):
        key, _, value = item.partition("=")
        pairs.append((key.strip(), value.strip()))
    return pairs


def envlimits(name: str) -> dict[str, int]:
    """`fal=4,replicate=8` as {"fal": 4, "replicate": 8}: each entry a name and a whole
    number of at least 1. Anything else stops the server at start, naming the entry."""
    limits = {}
    for key, value in envpairs(name):
        if not key or not value.isdigit() or int(value) < 1:
            raise ValueError(
                f"{name}: {key}={value} is not provider=N with N a whole number of at least 1"
            )
        limits[key.lower()] = int(value)
    return limits


def gpu_count() -> int:
    """NVIDIA GPUs this process may use, counted without initialising CUDA: the GPU
    cluster's parent forks its workers, and a forked child cannot use a CUDA context."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        count = 0
        for device in visible.split(","):
            if not device.strip() or device.strip().startswith("-"):
                break  # CUDA stops at the first invalid entry ("-1" hides every GPU)
            count += 1
        return count
    try:
        return len(os.listdir("/proc/driver/nvidia/gpus"))
    except OSError:
        return 0


def envsecret(name: str) -> str | None:
    """A secret from NAME, or from the file named by NAME_FILE (Docker/K8s secrets)."""
    if os.environ.get(name):
        return os.environ[name]
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text().strip()
    return None


DATA_DIR = Path(os.environ.get("VIDEOGEN_DATA_DIR") or BASE_DIR / "var").resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _dev_secret_key() -> str:
    # A laptop needs no configuration: generate a key once and keep it in the data dir.
    path = DATA_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


DEBUG = envbool("DEBUG", False)
SECRET_KEY = envsecret("SECRET_KEY") or _dev_secret_key()
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "django_q",
    "generations",
]

MIDDLEWARE = [
    # First: every request (and every log line about it) gets an X-Request-ID.
    "generations.web.middleware.RequestIdMiddleware",
    # Refuses plain-HTTP API requests in production before anything could redirect them;
    # CSP and the other headers of generations/csp.py.
    "generations.web.middleware.SecurityHeadersMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "generations.web.middleware.StaticFilesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "videogen_site.urls"
WSGI_APPLICATION = "videogen_site.wsgi.application"
ASGI_APPLICATION = "videogen_site.asgi.application"

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
                "generations.dashboard.access.team_switcher",
            ],
        },
    },
]

# Database: SQLite in the data dir unless DATABASE_URL says otherwise.
if os.environ.get("DATABASE_URL"):
    DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=60)}
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(DATA_DIR / "videogen.sqlite3"),
            "OPTIONS": {
                # The web server and the worker write concurrently: WAL lets readers go on,
                # IMMEDIATE makes every transaction take the write lock up front so
                # read-then-write sequences cannot deadlock, and a long timeout waits it out.
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "generations.User"

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/generate"
LOGOUT_REDIRECT_URL = "/"
# E-mail (password resets): the console by default; SMTP when EMAIL_HOST is set.
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend"
    if os.environ.get("EMAIL_HOST")
    else "django.core.mail.backends.console.EmailBackend"
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = envint("EMAIL_PORT", 587)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = envsecret("EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", True)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "videogen <noreply@localhost>")

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns when it is missing
MEDIA_ROOT = DATA_DIR / "media"
MEDIA_URL = "/media/"
# Media (videos, posters, input images) in the data dir, or in a bucket with
# VIDEOGEN_STORAGE_URL=s3://bucket/prefix and the usual AWS_* variables (README).
VIDEOGEN_STORAGE_URL = os.environ.get("VIDEOGEN_STORAGE_URL", "")
STORAGES = {
    "default": storage_from_url(VIDEOGEN_STORAGE_URL, os.environ),
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = True

# Request bodies may carry a data: URL image; the image cap below is the real limit.
DATA_UPLOAD_MAX_MEMORY_SIZE = 30 * 1024 * 1024

# Production hardening, on whenever DEBUG is off and the operator says the site is on HTTPS.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", False)
SESSION_COOKIE_SECURE = envbool("SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# The API is never redirected to https (a redirected POST turns into a GET): with this on,
# a plain-HTTP API request gets a 403 `https_required` instead. Defaults to the redirect.
VIDEOGEN_REQUIRE_HTTPS = envbool("VIDEOGEN_REQUIRE_HTTPS", SECURE_SSL_REDIRECT)
SECURE_REDIRECT_EXEMPT = [r"^api/", r"^v1/"]
# Login throttle (generations/dashboard/throttle.py): this many failed sign-ins for one
# account from one address lock that pair out until the window (seconds, from the first
# failure) ends.
VIDEOGEN_LOGIN_MAX_FAILURES = envint("VIDEOGEN_LOGIN_MAX_FAILURES", 5)
VIDEOGEN_LOGIN_LOCKOUT_S = envint("VIDEOGEN_LOGIN_LOCKOUT_S", 900)

# --- videogen ---------------------------------------------------------------------------
# "open": anyone may sign up; "invite": only with a team invitation; "closed": admins only.
VIDEOGEN_SIGNUP = os.environ.get("VIDEOGEN_SIGNUP", "open")
VIDEOGEN_PUBLIC_URL = os.environ.get("VIDEOGEN_PUBLIC_URL", "").rstrip("/")
VIDEOGEN_FETCH_ALLOW_HOSTS = envlist("VIDEOGEN_FETCH_ALLOW_HOSTS")
VIDEOGEN_MAX_IMAGE_BYTES = envint("VIDEOGEN_MAX_IMAGE_BYTES", 20 * 1024 * 1024)
VIDEOGEN_FETCH_TIMEOUT = envint("VIDEOGEN_FETCH_TIMEOUT", 20)
VIDEOGEN_DEFAULT_MONTHLY_LIMIT = envint("VIDEOGEN_DEFAULT_MONTHLY_LIMIT", 100)
# API requests per minute per key on the default plan.
VIDEOGEN_DEFAULT_RATE_LIMIT = envint("VIDEOGEN_DEFAULT_RATE_LIMIT", 600)
# Safety checker (see generations/safety.py for what it catches and what it does not).
VIDEOGEN_SAFETY_WORDLIST = os.environ.get("VIDEOGEN_SAFETY_WORDLIST", "")
VIDEOGEN_SAFETY_EXTRA_WORDS = envlist("VIDEOGEN_SAFETY_EXTRA_WORDS")
VIDEOGEN_SAFETY_IMAGE_CLASSIFIER = os.environ.get("VIDEOGEN_SAFETY_IMAGE_CLASSIFIER", "")
# Seconds a webhook endpoint has to answer one delivery attempt.
VIDEOGEN_WEBHOOK_TIMEOUT = envint("VIDEOGEN_WEBHOOK_TIMEOUT", 10)
# The longest a `wait_for_result` request is held before a 504 (Framepack surface).
VIDEOGEN_WAIT_TIMEOUT = float(os.environ.get("VIDEOGEN_WAIT_TIMEOUT", "60"))
# Threads (per web process) that run API handlers and keep their DB connections.
VIDEOGEN_API_DB_THREADS = envint("VIDEOGEN_API_DB_THREADS", 4)
# A running generation whose worker has not reported for this long is considered lost.
VIDEOGEN_STALE_AFTER = envint("VIDEOGEN_STALE_AFTER", 120)
# A generation queued but whose task is no longer in the broker (Redis restarted, a worker
# cluster killed with tasks taken) is enqueued again by the reaper (every minute) after this
# many seconds.
VIDEOGEN_QUEUED_GRACE_S = envint("VIDEOGEN_QUEUED_GRACE_S", 60)
# Fair share (generations/core/fairshare.py): waiting generations stay in the database and
# are handed to the broker in turns across teams; each worker queue holds at most this many
# tasks that no worker has taken yet. Small keeps the order fair; the dispatcher refills it
# as soon as a worker takes one.
VIDEOGEN_QUEUE_AHEAD = envint("VIDEOGEN_QUEUE_AHEAD", 1)
# How many times a generation is (re)started before it is failed for good.
VIDEOGEN_MAX_ATTEMPTS = envint("VIDEOGEN_MAX_ATTEMPTS", 3)
# Operations (README "Deployment and operations"). /healthz reports the worker heartbeat
# (written by the reaper every minute) as stale past this many seconds: "degraded", not 503.
VIDEOGEN_HEARTBEAT_MAX_AGE = envint("VIDEOGEN_HEARTBEAT_MAX_AGE", 180)
# /metrics: with a token, only `Authorization: Bearer <token>`; without one, only direct
# requests from loopback or private addresses.
VIDEOGEN_METRICS_TOKEN = envsecret("VIDEOGEN_METRICS_TOKEN") or ""
# Retention: media files of generations finished more than this many days ago are deleted
# daily (records kept); unset or 0 keeps them forever.
VIDEOGEN_RETENTION_DAYS = envint("VIDEOGEN_RETENTION_DAYS", 0) or None
# Provenance (CONTRACT 8): the certificate chain (signing certificate first, PEM) and private
# key (PEM) that sign every video's C2PA manifest. Unset: a development chain generated in
# DATA_DIR/c2pa/, trusted by no one else (generations/ops/signing.py; `check` warns).
VIDEOGEN_C2PA_CERT = os.environ.get("VIDEOGEN_C2PA_CERT", "")
VIDEOGEN_C2PA_KEY = os.environ.get("VIDEOGEN_C2PA_KEY", "")
# POST /api/v1/verify (CONTRACT 8): the largest video it takes, and checks per minute per
# client address (it needs no key). An API request body is never read past the cap.
# Art. 50(4): a visible corner label burnt into every video ("" off; "on" for "AI-generated",
# or the words to show).
VIDEOGEN_VISIBLE_LABEL = os.environ.get("VIDEOGEN_VISIBLE_LABEL", "")
VIDEOGEN_VERIFY_MAX_BYTES = envint("VIDEOGEN_VERIFY_MAX_BYTES", 200 * 1024 * 1024)
VIDEOGEN_VERIFY_PER_MINUTE = envint("VIDEOGEN_VERIFY_PER_MINUTE", 10)
# Load balancers probe over plain HTTP: never redirect the probes.
SECURE_REDIRECT_EXEMPT = [*SECURE_REDIRECT_EXEMPT, r"^healthz$", r"^metrics$"]

# Hosted providers (CONTRACT 2): a provider serves the models the provider map routes to it
# once its credential is set. Credentials are only read here, never logged or stored. Each
# may hold several keys, comma-separated: a pool the jobs are spread over (routing/pools.py).
FAL_KEY = os.environ.get("FAL_KEY", "")
FAL_QUEUE_URL = os.environ.get("FAL_QUEUE_URL", "https://queue.fal.run").rstrip("/")
REPLICATE_API_TOKEN = os.environ.get("REPLICATE_API_TOKEN", "")
REPLICATE_API_URL = os.environ.get("REPLICATE_API_URL", "https://api.replicate.com/v1").rstrip("/")
GEMINI_API_KEY = os.environ.get("GEMINI_API_KEY", "")
GEMINI_API_URL = os.environ.get(
    "GEMINI_API_URL", "https://generativelanguage.googleapis.com/v1beta"
).rstrip("/")
OPENAI_API_KEY = os.environ.get("OPENAI_API_KEY", "")
OPENAI_BASE_URL = os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1").rstrip("/")
# Jobs in flight at once per provider, per key of its pool (`fal=4,replicate=8`; a provider
# not named has no limit): jobs beyond it wait in our queue for a slot (CONTRACT 9).
VIDEOGEN_PROVIDER_CONCURRENCY = envlimits("VIDEOGEN_PROVIDER_CONCURRENCY")
# A key the provider refused (401/403) stays out of its pool's rotation this long.
VIDEOGEN_PROVIDER_KEY_COOLDOWN_S = envint("VIDEOGEN_PROVIDER_KEY_COOLDOWN_S", 3600)
# An operator's provider map (TOML) replacing entries of generations/engines/providers.toml.
VIDEOGEN_PROVIDER_MAP = os.environ.get("VIDEOGEN_PROVIDER_MAP", "")
# Model aliases (`sora-2=veo-31,old=new`): a request naming an alias is served by its target
# (generations/routing/aliases.py; `manage.py check` names a bad entry).
VIDEOGEN_MODEL_ALIASES = envpairs("VIDEOGEN_MODEL_ALIASES")
# The audio step's routes (TOML) replacing generations/rendering/hosted/audio_routes.toml.
VIDEOGEN_AUDIO_MAP = os.environ.get("VIDEOGEN_AUDIO_MAP", "")
# A TOML file of `[<model>.<provider>] usd_per_s = ...` prices that replace the map's.
VIDEOGEN_PRICE_MAP = os.environ.get("VIDEOGEN_PRICE_MAP", "")
# Polling remote jobs: first delay, then doubling (with jitter) up to the cap.
VIDEOGEN_POLL_FIRST_S = float(os.environ.get("VIDEOGEN_POLL_FIRST_S", "2"))
VIDEOGEN_POLL_MAX_S = float(os.environ.get("VIDEOGEN_POLL_MAX_S", "30"))
# A provider's result file is refused past this size.
VIDEOGEN_REMOTE_MAX_BYTES = envint("VIDEOGEN_REMOTE_MAX_BYTES", 1024 * 1024 * 1024)
# Failover across a model's provider routes (generations/routing/failover.py): a job not yet
# running upstream tries its route again this often after a 5xx, a timeout, a connection error
# or a malformed answer, and after this many 429s (each waiting its Retry-After), before it
# moves to the next route.
VIDEOGEN_FAILOVER_RETRIES = envint("VIDEOGEN_FAILOVER_RETRIES", 1)
VIDEOGEN_FAILOVER_429_RETRIES = envint("VIDEOGEN_FAILOVER_429_RETRIES", 3)
# Circuit breaker per provider (generations/routing/breaker.py): this many consecutive
# transient failures open it; it stays open this long, then one probe decides.
VIDEOGEN_BREAKER_FAILURES = envint("VIDEOGEN_BREAKER_FAILURES", 5)
VIDEOGEN_BREAKER_COOLDOWN_S = float(os.environ.get("VIDEOGEN_BREAKER_COOLDOWN_S", "60"))

# Local diffusers pipelines (CONTRACT 2; README "Local GPU models"): catalog key -> folder
# saved with save_pretrained. Served by the diffusers engine on the GPU cluster below.
VIDEOGEN_DIFFUSERS_MODELS = envpairs("VIDEOGEN_DIFFUSERS_MODELS")
# Denoising steps per catalog key (`framepack=25,wan-25=40`); else videogen.json, else the
# family's default (see generations/engines/diffusers_config.py).
VIDEOGEN_DIFFUSERS_STEPS = {k: int(v) for k, v in envpairs("VIDEOGEN_DIFFUSERS_STEPS") if v}
# Memory options, "auto" = chosen per worker from the device and its memory (README):
# device auto|cpu|cuda|cuda:N; dtype auto|bfloat16|float16|float32 (auto: bf16 on CUDA, fp32
# on the CPU); offload auto|none|model|sequential (auto: model offload below 48 GiB of GPU
# memory); VAE tiling and slicing auto|on|off (auto: on below 48 GiB or for 720p and up).
VIDEOGEN_DIFFUSERS_DEVICE = os.environ.get("VIDEOGEN_DIFFUSERS_DEVICE", "auto")
VIDEOGEN_DIFFUSERS_DTYPE = os.environ.get("VIDEOGEN_DIFFUSERS_DTYPE", "auto")
VIDEOGEN_DIFFUSERS_OFFLOAD = os.environ.get("VIDEOGEN_DIFFUSERS_OFFLOAD", "auto")
VIDEOGEN_DIFFUSERS_VAE_TILING = os.environ.get("VIDEOGEN_DIFFUSERS_VAE_TILING", "auto")
# Frames are generated at most this large (then scaled up to the requested size): the
# open checkpoints are trained at 480p-720p, and their cost grows with the square of it.
VIDEOGEN_DIFFUSERS_MAX_PIXELS = envint("VIDEOGEN_DIFFUSERS_MAX_PIXELS", 1280 * 720)
# Pipelines each GPU worker keeps loaded (least recently used one unloaded beyond it).
VIDEOGEN_DIFFUSERS_CACHE = envint("VIDEOGEN_DIFFUSERS_CACHE", 1)
# The django-q2 cluster that runs them: `Q_CLUSTER_NAME=gpu manage.py qcluster`, one worker
# per GPU (each worker takes a GPU of its own), 1 on a machine without CUDA.
VIDEOGEN_GPU_CLUSTER = "gpu"
VIDEOGEN_GPU_WORKERS = envint("VIDEOGEN_GPU_WORKERS", max(1, gpu_count()))
# A long FramePack clip at 720p takes tens of minutes even on a large GPU.
VIDEOGEN_GPU_TASK_TIMEOUT = envint("VIDEOGEN_GPU_TASK_TIMEOUT", 4 * 3600)

# django-q2. Settings are read at import time: tests pick sync mode through VIDEOGEN_Q_SYNC.
Q_LOG_LEVEL = os.environ.get("VIDEOGEN_Q_LOG_LEVEL", "WARNING").strip().upper()
Q_CLUSTER: dict[str, object] = {
    "name": "videogen",
    "workers": envint("VIDEOGEN_WORKERS", 2),
    "recycle": 200,
    # A 60 s 4K video can take minutes on a small CPU; retry must exceed timeout so a task
    # is only re-delivered once its first run is surely dead.
    "timeout": envint("VIDEOGEN_TASK_TIMEOUT", 1800),
    "retry": envint("VIDEOGEN_TASK_TIMEOUT", 1800) + 120,
    "max_attempts": 3,
    "ack_failures": True,
    "catch_up": False,
    "save_limit": 500,
    "poll": 0.1,
    "sync": envbool("VIDEOGEN_Q_SYNC", False),
    "label": "Tasks",
    # Its INFO lines (cluster start, every process, every schedule check) bury `make run`'s
    # first-run banner; warnings and errors still show. VIDEOGEN_Q_LOG_LEVEL=INFO brings
    # them back.
    "log_level": Q_LOG_LEVEL,
    # Same broker, another queue: diffusers jobs only (services.generation_enqueue).
    "ALT_CLUSTERS": {
        VIDEOGEN_GPU_CLUSTER: {
            "workers": VIDEOGEN_GPU_WORKERS,
            "timeout": VIDEOGEN_GPU_TASK_TIMEOUT,
            "retry": VIDEOGEN_GPU_TASK_TIMEOUT + 300,
            # Each worker holds loaded pipelines (minutes to load): recycle rarely.
            "recycle": 1000,
            "poll": 0.5,
        },
    },
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# Logs go to stderr; LOG_FORMAT=json writes one JSON object per line. Every line carries the
# request id (X-Request-ID) or, in tasks, the generation id (generations/logs.py).
LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain").strip().lower()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "generations.ops.logs.ContextFilter"}},
    "formatters": {
        "plain": {
            "()": "generations.ops.logs.PlainFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s: %(message)s",
        },
        "json": {"()": "generations.ops.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # django-q2 adds a handler of its own unless its logger has one: use ours.
        "django-q": {"handlers": ["console"], "level": Q_LOG_LEVEL, "propagate": False},
        # The same for uvicorn's own lines (its CLI installs plain handlers before Django).
        "uvicorn": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "uvicorn.access": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}

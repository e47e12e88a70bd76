"""Settings shared by every environment, read from environment variables.

With no DATABASE_URL and no REDIS_URL / CELERY_BROKER_URL the project runs on the embedded
default: a SQLite file in the project folder and kombu's filesystem broker, so a fresh machine
needs no server. Production sets the URLs (see production.py).
"""

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env("SECRET_KEY", default="lojix-embedded-default-not-for-production")
# Off unless asked for (DEBUG=true): the demo that `make run` starts shows the styled 403/404/500
# pages, never Django's technical ones; its CSS comes from STATIC_ROOT (collectstatic, make demo).
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # Django's admin on lojix's site: the supervisors' second-approval queue (core.admin_site).
    "core.apps.LojixAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_prometheus",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_fsm",
    "django_htmx",
    # Failed sign-ins recorded in the database, lockouts per username and per address (D-11).
    "axes",
    "core",
    "orders",
    "refunds",
    "credits",
    "disputes",
]

# The machine endpoints (/healthz, /readyz, /metrics) answer before anything else
# (core.middleware; README, "Operations"); django-prometheus times everything else; every request
# gets its X-Request-ID (core.request_id).
MIDDLEWARE = [
    "core.middleware.OperationsEndpointsMiddleware",
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "core.request_id.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Content-Security-Policy and Permissions-Policy on every response (CONTENT_SECURITY_POLICY,
    # PERMISSIONS_POLICY below).
    "csp.middleware.CSPMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    # request.htmx: the seller queue answers htmx requests with a fragment (D-9).
    "django_htmx.middleware.HtmxMiddleware",
    # Last before the metrics: turns a sign-in that axes refused into the lockout page (or the
    # API's JSON 429) through AXES_LOCKOUT_CALLABLE.
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "config.urls"
# One date style everywhere, admin included: config/formats/en/formats.py.
FORMAT_MODULE_PATH = ["config.formats"]
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
                "core.context_processors.lojix",
                "core.context_processors.site_header",
            ],
            # `money`, `when` and `day` on every template, admin's included (D-9).
            "builtins": ["core.templatetags.lojix"],
        },
    },
]

SQLITE_PATH = BASE_DIR / "db.sqlite3"
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{SQLITE_PATH}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share the file: WAL lets readers run beside one writer, and
    # IMMEDIATE transactions take the write lock up front instead of failing half-way.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# axes first: it refuses a locked-out username or address before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = DEBUG

EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="lojix <support@lojix.example>")
# Links in emails point here: by default the local server on PORT (`make run` sets both).
LOJIX_SITE_URL = env("LOJIX_SITE_URL", default=f"http://127.0.0.1:{env('PORT', default='8000')}")

# Money: one currency per deployment (D-7).
LOJIX_CURRENCY = env("LOJIX_CURRENCY", default="USD")
# Business days skip weekends and this country's public holidays (the `holidays` package).
LOJIX_HOLIDAY_COUNTRY = env("LOJIX_HOLIDAY_COUNTRY", default="US")
# The payment gateway behind the Payment model (orders/gateway.py).
LOJIX_PAYMENT_GATEWAY = env("LOJIX_PAYMENT_GATEWAY", default="orders.gateway.SimulatedGateway")
# The simulated processor's own store (a SQLite file outside lojix's database, orders/gateway.py)
# and the faults it is told to act out, read at each call: {"charge"|"refund": "decline"|"error"
# |"timeout"} on every call, or {"refund": {"fault": "timeout", "one_in": 10}} once for one key
# in ten (D-5, orders/gateway.py). The env var is JSON, for the demo and test processes.
LOJIX_SIMULATED_GATEWAY_PATH = Path(
    env("LOJIX_SIMULATED_GATEWAY_PATH", default=str(VAR_DIR / "processor.sqlite3"))
)
LOJIX_SIMULATED_GATEWAY_FAULTS = env.json("LOJIX_SIMULATED_GATEWAY_FAULTS", default={})
# D-10: the processor signs its webhook calls (HMAC-SHA256) with this secret; empty refuses every
# call. Calls signed more than the tolerance ago are refused as stale.
LOJIX_GATEWAY_WEBHOOK_SECRET = env("LOJIX_GATEWAY_WEBHOOK_SECRET", default="")
LOJIX_GATEWAY_WEBHOOK_TOLERANCE_SECONDS = env.int(
    "LOJIX_GATEWAY_WEBHOOK_TOLERANCE_SECONDS", default=300
)
# Card refunds the processor did not make (D-7, refunds.services.processing): retried after the
# first delay, doubling, at most the longest; a worker's claim on a refund lasts the lease (a
# worker that dies leaves it to the beat retry sweep once the lease has passed).
LOJIX_REFUND_RETRY_FIRST_SECONDS = env.int("LOJIX_REFUND_RETRY_FIRST_SECONDS", default=60)
LOJIX_REFUND_RETRY_LONGEST_SECONDS = env.int("LOJIX_REFUND_RETRY_LONGEST_SECONDS", default=3600)
LOJIX_REFUND_CLAIM_LEASE_SECONDS = env.int("LOJIX_REFUND_CLAIM_LEASE_SECONDS", default=300)

# Evidence photos (refunds.photos): bytes per upload, pixels an upload may declare, and the
# longest side in pixels of the stored (re-encoded) photo and of its thumbnail.
LOJIX_PHOTO_MAX_BYTES = env.int("LOJIX_PHOTO_MAX_BYTES", default=8 * 1024 * 1024)
LOJIX_PHOTO_MAX_PIXELS = env.int("LOJIX_PHOTO_MAX_PIXELS", default=50_000_000)
LOJIX_PHOTO_MAX_SIDE = env.int("LOJIX_PHOTO_MAX_SIDE", default=2048)
LOJIX_PHOTO_THUMBNAIL_SIDE = env.int("LOJIX_PHOTO_THUMBNAIL_SIDE", default=320)
# Orders an outage's bulk refund locks and refunds per transaction (L-10, D-8).
LOJIX_OUTAGE_BATCH_SIZE = env.int("LOJIX_OUTAGE_BATCH_SIZE", default=200)

# Celery: Redis (or RabbitMQ) by URL; otherwise kombu's filesystem transport, no server needed.
REDIS_URL = env("REDIS_URL", default="")
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
CELERY_BROKER_FOLDER = VAR_DIR / "celery"
if CELERY_BROKER_URL == "filesystem://":
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_FOLDER / "queue"),
        "data_folder_out": str(CELERY_BROKER_FOLDER / "queue"),
        "processed_folder": str(CELERY_BROKER_FOLDER / "processed"),
        "control_folder": str(CELERY_BROKER_FOLDER / "control"),
    }
# Web processes publish through the outbox (core/outbox.py), which retries on its own: a
# publish fails fast when the broker is down (one immediate retry for a stale pooled
# connection, a 1 s connect timeout) instead of holding a request. Workers still reconnect
# to the broker as usual (broker_connection_retry stays on).
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}
CELERY_BROKER_CONNECTION_TIMEOUT = 1
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # No task uses a countdown or ETA (retries are driven by beat, D-7), so a message is acked
    # within its time limit; the visibility timeout (after which Redis hands an unacked message
    # to another worker) is set well above the hard time limit.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 1, "visibility_timeout": 7200}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Every task works in bounded batches and commits batch by batch; one past these limits is
# stopped (the soft limit raises inside it, rolling back only the open batch) and the next beat
# run takes up what is left.
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_TASK_TIME_LIMIT = 300
CELERY_TIMEZONE = "UTC"
# Workers log through LOGGING below (the request id, text or JSON), not Celery's own format.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# What a task prints (the demo's console email backend) is logged as INFO, not as warnings.
CELERY_WORKER_REDIRECT_STDOUTS_LEVEL = "INFO"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "escalation-due-dates": {
        "task": "disputes.tasks.escalation_due_dates",
        "schedule": 900.0,
    },
    "refund-review-sla": {
        "task": "refunds.tasks.review_sla_sweep",
        "schedule": 300.0,
    },
    "hand-unanswered-cancellation-requests-to-support": {
        "task": "disputes.tasks.hand_unanswered_cancellation_requests_to_support",
        "schedule": 60.0,
    },
    "hand-unanswered-verifications-to-support": {
        "task": "disputes.tasks.hand_unanswered_verifications_to_support",
        "schedule": 300.0,
    },
    "settle-chargebacks": {
        "task": "disputes.tasks.settle_chargebacks",
        "schedule": 300.0,
    },
    "refund-outages": {
        "task": "disputes.tasks.refund_outages",
        "schedule": 60.0,
    },
    "expire-credits": {
        "task": "credits.tasks.expire_credits",
        "schedule": 300.0,
    },
    "auto-refund-late-orders": {
        "task": "refunds.tasks.auto_refund_late_orders",
        "schedule": 60.0,
    },
    "retry-failed-refunds": {
        "task": "refunds.tasks.retry_failed_refunds",
        "schedule": 60.0,
    },
    "give-up-missing-orders": {
        "task": "orders.tasks.give_up_missing_orders",
        "schedule": 60.0,
    },
    "void-orphan-charges": {
        "task": "orders.tasks.void_orphan_charges",
        "schedule": 600.0,
    },
    # L-9: the weekly payout closes each ended period; hourly, so a missed tick catches up.
    "close-payout-periods": {
        "task": "refunds.tasks.close_payout_periods",
        "schedule": 3600.0,
    },
    # K-UP: buyers and partners told of a published policy version, in batches.
    "announce-policy-versions": {
        "task": "orders.tasks.announce_policy_versions",
        "schedule": 60.0,
    },
    "outbox-relay": {
        "task": "core.tasks.outbox_relay",
        "schedule": 30.0,
    },
    # L-5.2: photos chosen on the report-a-problem form and never sent.
    "purge-held-photos": {
        "task": "refunds.tasks.purge_held_photos",
        "schedule": 3600.0,
    },
    "purge-idempotency-records": {
        "task": "core.tasks.purge_idempotency_records",
        "schedule": 3600.0,
    },
}

CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}
# Sessions read from Redis, kept in the database (core.sessions). Without Redis the cache is
# per process, where a sign-out in one would not reach the others: the database alone.
SESSION_ENGINE = "core.sessions" if REDIS_URL else "django.contrib.sessions.backends.db"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # Bodies are JSON; the few endpoints that take files say so themselves (core.api).
    "DEFAULT_PARSER_CLASSES": ["core.parsers.SafeJSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "core.api_schema.ApiAutoSchema",
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    "COERCE_DECIMAL_TO_STRING": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "lojix API",
    "DESCRIPTION": "Orders, cancellations, refunds and credits, decided by the published policy.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Inputs and outputs are separate components (`OrderCreateRequest` vs `OrderDetail`), so a
    # read-only field such as the token is never a required input of a generated client.
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI and Redoc come from drf-spectacular-sidecar, served from our static files:
    # /api/docs/ works with no internet (D-9).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models have a `status`; name each choice set after its model.
    "ENUM_NAME_OVERRIDES": {
        "OrderStatusEnum": "orders.models.Order.Status",
        "PaymentStatusEnum": "orders.models.Payment.Status",
        "RefundRequestStatusEnum": "refunds.models.RefundRequest.Status",
        "RefundMethodEnum": "refunds.models.RefundRequest.Method",
        "RefundReasonEnum": "refunds.api.serializers.REASON_CHOICES",
        "EscalationStatusEnum": "disputes.models.Escalation.Status",
        "EscalationSubjectEnum": "disputes.models.Escalation.Subject",
        "CancellationDisputeSubjectEnum": "disputes.api.escalations.ORDER_SUBJECTS",
        "EscalationOutcomeEnum": "disputes.api.escalations.OUTCOMES",
        "IncidentKindEnum": "disputes.models.Incident.Kind",
        "IncidentStatusEnum": "disputes.models.Incident.Status",
    },
}

# Logs (README, "Operations"): every record the console writes carries the request id
# (core.request_id), as text or as one JSON object per line (core.log_format),
# LOJIX_LOG_FORMAT=text|json. A refused request (403) logs one line, method, path, user and
# reason, without a traceback; 500s keep theirs (core.log_filters).
LOG_FORMATS = ("text", "json")


def log_format(default: str) -> str:
    """LOJIX_LOG_FORMAT, or `default`; ImproperlyConfigured unless it is one of LOG_FORMATS."""
    value = env("LOJIX_LOG_FORMAT", default=default)
    if value not in LOG_FORMATS:
        raise ImproperlyConfigured(f"LOJIX_LOG_FORMAT must be one of {LOG_FORMATS}, not {value!r}")
    return value


LOJIX_LOG_FORMAT = log_format(default="text")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"()": "core.log_format.TextFormatter"},
        "json": {"()": "core.log_format.JsonFormatter"},
    },
    "filters": {
        "forbidden_one_line": {"()": "core.log_filters.ForbiddenOneLine"},
        "request_id": {"()": "core.request_id.RequestIdFilter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["request_id"],
            "formatter": LOJIX_LOG_FORMAT,
        }
    },
    "loggers": {
        "django.request": {"filters": ["forbidden_one_line"]},
        "django.security.csrf": {"filters": ["forbidden_one_line"]},
        # django-axes: a failed sign-in and a lockout are warnings; its step-by-step INFO is noise.
        "axes": {"level": "WARNING"},
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}

# Who may read /metrics (core.metrics): these addresses or networks, or a client sending
# `Authorization: Bearer <LOJIX_METRICS_TOKEN>`. The demo serves the local machine only.
LOJIX_METRICS_ALLOWED_IPS = env.list("LOJIX_METRICS_ALLOWED_IPS", default=["127.0.0.1", "::1"])
LOJIX_METRICS_TOKEN = env("LOJIX_METRICS_TOKEN", default="")
# django-prometheus: no migration gauges (they query the database as each process starts).
PROMETHEUS_EXPORT_MIGRATIONS = False

# -- Signing in (D-11): django-axes on the sign-in page, the admin and POST /api/auth/token/ --
# Failures are rows in the database (no cache: with Redis down sign-in still works). A username
# is locked after AXES_FAILURE_LIMIT failures from any address, and an address after as many
# failures for any usernames; a lock lasts AXES_COOLOFF_TIME after the last failure, and further
# attempts while locked do not extend it, so the time the lockout page gives stays true.
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_FAILURE_LIMIT = env.int("LOJIX_SIGNIN_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOJIX_SIGNIN_COOLOFF_MINUTES", default=15))
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# A success does not wipe failures: axes would wipe every failure from that address too, so an
# attacker with an account of their own could sign in between guesses and never be locked.
AXES_RESET_ON_SUCCESS = False
AXES_HTTP_RESPONSE_CODE = 429
AXES_VERBOSE = False  # no start-up banner in every process's log
AXES_LOCKOUT_CALLABLE = "core.signin.lockout_response"
# The client's address: REMOTE_ADDR, unless the deployment runs behind this many reverse proxies
# that each append to X-Forwarded-For; then the entry that many places from the right (the one
# the outermost trusted proxy saw). With 0 (the default) X-Forwarded-For is ignored: anybody can
# send one. (core.signin.client_ip rather than axes' django-ipware path: one rule, tested.)
LOJIX_TRUSTED_PROXY_COUNT = env.int("LOJIX_TRUSTED_PROXY_COUNT", default=0)
AXES_CLIENT_IP_CALLABLE = "core.signin.client_ip"

# -- Headers: Content-Security-Policy (django-csp) and Permissions-Policy ------------------------
# No inline scripts anywhere (JS lives in static/js/); inline style attributes are still used by
# Django's admin and Swagger UI, hence 'unsafe-inline' for styles only.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    }
}
# Powerful browser features no lojix page uses, denied to the page and anything it embeds.
PERMISSIONS_POLICY = {
    feature: []
    for feature in (
        "accelerometer",
        "autoplay",
        "camera",
        "display-capture",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "usb",
        "xr-spatial-tracking",
    )
}

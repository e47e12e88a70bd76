"""Production: every secret from the environment with no default, and Django's deploy checklist."""

from config.sentry import sentry_init_from_env
from config.settings.base import *  # noqa: F403
from config.settings.base import LOGGING, env, log_format

SECRET_KEY = env("SECRET_KEY")
LOJIX_GATEWAY_WEBHOOK_SECRET = env("LOJIX_GATEWAY_WEBHOOK_SECRET")
DEBUG = False
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
DATABASES = {"default": env.db("DATABASE_URL")}
# psycopg's pool, one per process: a gunicorn thread (config/gunicorn.conf.py) holds a connection
# for the length of a request, so the pool is as large as a worker's threads. Health checks: a
# connection PostgreSQL dropped is replaced before a request gets it. Celery's prefork workers
# close the pool they inherit (celery.fixups.django).
DATABASES["default"]["CONN_MAX_AGE"] = 0
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
    "min_size": 1,
    "max_size": env.int("DATABASE_POOL_SIZE", default=env.int("WEB_THREADS", default=4)),
    "timeout": env.int("DATABASE_POOL_TIMEOUT", default=10),
}
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=env("REDIS_URL"))
EMAIL_CONFIG = env.email_url("EMAIL_URL")
vars().update(EMAIL_CONFIG)

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
WHITENOISE_USE_FINDERS = False

# Operations: JSON logs for the log shipper; /metrics only for LOJIX_METRICS_ALLOWED_IPS (none
# unless set) or the bearer token (README, "Operations").
LOJIX_LOG_FORMAT = log_format(default="json")
LOGGING["handlers"]["console"]["formatter"] = LOJIX_LOG_FORMAT
LOJIX_METRICS_ALLOWED_IPS = env.list("LOJIX_METRICS_ALLOWED_IPS", default=[])
# /healthz, /readyz and /metrics answer before SECURE_SSL_REDIRECT and ALLOWED_HOSTS apply
# (core.middleware): no SECURE_REDIRECT_EXEMPT needed for probes over plain HTTP.

# Sentry, when SENTRY_DSN is set (config/sentry.py).
SENTRY_ENABLED = sentry_init_from_env(env, default_environment="production")

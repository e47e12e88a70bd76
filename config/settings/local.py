"""The embedded default used by `make run`: everything from base.py, nothing to set."""

from config.sentry import sentry_init_from_env
from config.settings.base import *  # noqa: F403
from config.settings.base import env

# The demo's processor webhook secret (D-10), so a signed call can be tried on `make run`;
# production requires its own.
LOJIX_GATEWAY_WEBHOOK_SECRET = env(
    "LOJIX_GATEWAY_WEBHOOK_SECRET", default="lojix-demo-webhook-secret"
)
# DEBUG is off in the demo; WhiteNoise serves static files from STATIC_ROOT (`make demo` runs
# collectstatic) and, should that be stale or missing, straight from the apps' static folders.
WHITENOISE_USE_FINDERS = True

# Sentry, when SENTRY_DSN is set (config/sentry.py); the test settings never start it.
SENTRY_ENABLED = sentry_init_from_env(env, default_environment="development")

"""Sentry error reporting, off unless `SENTRY_DSN` is set (called from settings, so web, worker
and beat processes all report)."""

import sentry_sdk
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration


def sentry_init(
    *, dsn: str, environment: str, release: str | None, traces_sample_rate: float
) -> bool:
    """Start the Sentry SDK with the Django and Celery integrations if `dsn` is not empty;
    returns whether it did. Personal data (users' addresses, cookies, request bodies) is never
    sent (`send_default_pii=False`); `traces_sample_rate` 0 sends errors only."""
    if not dsn:
        return False
    sentry_sdk.init(
        dsn=dsn,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        send_default_pii=False,
        environment=environment,
        release=release or None,
        traces_sample_rate=traces_sample_rate,
    )
    return True


def sentry_init_from_env(env, *, default_environment: str) -> bool:
    """`sentry_init` from the environment (`env`: the settings' django-environ reader):
    `SENTRY_DSN` (empty: off), `SENTRY_ENVIRONMENT` (else `default_environment`),
    `SENTRY_RELEASE`, `SENTRY_TRACES_SAMPLE_RATE` (default 0). Returns whether it started."""
    return sentry_init(
        dsn=env("SENTRY_DSN", default=""),
        environment=env("SENTRY_ENVIRONMENT", default=default_environment),
        release=env("SENTRY_RELEASE", default=""),
        traces_sample_rate=env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0),
    )

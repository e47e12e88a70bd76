"""The server `make bench` loads: production's settings (DEBUG off, psycopg's pool, the same
middleware) with one route more, the constant JSON view every figure is a ratio to
(`tests/bench/urls.py`)."""

from config.settings.production import *  # noqa: F403

ROOT_URLCONF = "tests.bench.urls"

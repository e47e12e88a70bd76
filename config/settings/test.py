"""Test settings: PostgreSQL and Redis by default, as in CI (override with the same env vars)."""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/lojix")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
# Under pytest-xdist each worker process (gw0, gw1, ...) gets its own Redis database, the next
# ones after REDIS_URL's, as pytest-django gives it its own PostgreSQL database: one worker's
# Celery worker never takes another's tasks.
# Once per worker: the processes a test starts inherit the variables and must not move again.
_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if _worker.startswith("gw") and os.environ.get("LOJIX_TEST_REDIS_WORKER") != _worker:
    _base, _, _db = os.environ["REDIS_URL"].rpartition("/")
    _db = (int(_db or 0) + int(_worker[2:])) % 16
    os.environ["REDIS_URL"] = f"{_base}/{_db}"
    os.environ["LOJIX_TEST_REDIS_WORKER"] = _worker
# The simulated processor's store: one file per test process (and the processes it starts,
# which inherit the variable), never the demo's, removed when the process that made it exits.
# Under pytest-xdist each worker makes its own (the workers inherit the controller's variable).
if f"lojix-processor-{_worker}" not in os.environ.get("LOJIX_TEST_PROCESSOR_PATH", ""):
    _processor_dir = tempfile.mkdtemp(prefix=f"lojix-processor-{_worker}")
    atexit.register(shutil.rmtree, _processor_dir, ignore_errors=True)
    os.environ["LOJIX_TEST_PROCESSOR_PATH"] = str(Path(_processor_dir) / "processor.sqlite3")

from config.settings.base import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
DEBUG = False
# Tasks enqueued after commit run at once in the test process; tests that need a real worker
# (tests/credits/test_tasks.py) switch this off for their duration.
CELERY_TASK_ALWAYS_EAGER = True
LOJIX_SIMULATED_GATEWAY_PATH = Path(os.environ["LOJIX_TEST_PROCESSOR_PATH"])
# Tests set faults through the `settings` fixture; a demo's exported variable must not leak in.
LOJIX_SIMULATED_GATEWAY_FAULTS = {}
LOJIX_GATEWAY_WEBHOOK_SECRET = "whsec-test-0123456789abcdef"
# base.py's filters (a 403 in one line), no handler of its own: pytest captures the records.
LOGGING = {**LOGGING, "handlers": {}, "root": {"level": "WARNING"}}  # noqa: F405

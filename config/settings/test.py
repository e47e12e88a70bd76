"""Test settings: PostgreSQL and Redis by default, as in CI (override with the same env vars)."""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/lojix")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
# The simulated processor's store: one file per test process (and the processes it starts,
# which inherit the variable), never the demo's, removed when the process that made it exits.
if "LOJIX_TEST_PROCESSOR_PATH" not in os.environ:
    _processor_dir = tempfile.mkdtemp(prefix="lojix-processor-")
    atexit.register(shutil.rmtree, _processor_dir, ignore_errors=True)
    os.environ["LOJIX_TEST_PROCESSOR_PATH"] = str(Path(_processor_dir) / "processor.sqlite3")

from config.settings.base import *  # noqa: F403

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

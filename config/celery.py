"""The Celery app: reads CELERY_* Django settings and finds each app's tasks.py."""

import os
from pathlib import Path

from celery import Celery
from celery.signals import before_task_publish, task_postrun, task_prerun

from core.request_id import task_finished, task_headers_add, task_started

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("lojix")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The request id follows a request into the tasks it enqueues (core.request_id): published as
# a message header, made current on the worker while the task runs.
before_task_publish.connect(task_headers_add, dispatch_uid="core.request_id.task_headers_add")
task_prerun.connect(task_started, dispatch_uid="core.request_id.task_started")
task_postrun.connect(task_finished, dispatch_uid="core.request_id.task_finished")


@app.on_after_configure.connect
def _create_broker_folders(sender, **kwargs):
    """kombu's filesystem transport needs its folders before anything publishes."""
    for folder in (sender.conf.broker_transport_options or {}).values():
        if isinstance(folder, str) and folder.startswith("/"):
            Path(folder).mkdir(parents=True, exist_ok=True)

"""Timed rules of orders (D-8)."""

import logging
import time

from celery import shared_task
from django.utils import timezone

from core.services import task_run_recorded
from orders.services.placement import order_void_orphan_charges

logger = logging.getLogger(__name__)


@shared_task
@task_run_recorded
def void_orphan_charges() -> int:
    """Void the processor's charges whose order never committed (D-7). Returns how many."""
    started = time.monotonic()
    voided = order_void_orphan_charges(now=timezone.now())
    logger.info(
        "void_orphan_charges",
        extra={"voided": len(voided), "duration_ms": round((time.monotonic() - started) * 1000)},
    )
    return len(voided)

"""The request id: one identifier per web request, carried into the Celery tasks it enqueues
and written on every log record, so one grep finds what a request and its tasks did.

The middleware takes a well-formed incoming `X-Request-ID` (a load balancer's or a client's)
or makes a fresh one, answers with it in the same header and keeps it in a contextvar for the
request. The outbox stores it on each message it writes and publishes it as the message
header `lojix_request_id` (`core.outbox`); on the worker `task_prerun` puts it back into the
contextvar for the task's duration (`task_postrun` restores what was there). `RequestIdFilter`
adds `request_id` to every log record a handler emits ("-" outside a request or task).
"""

import contextvars
import logging
import re
import uuid

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_META_KEY = "HTTP_X_REQUEST_ID"
# The Celery message header that carries it (a top-level key of the worker's task request).
TASK_HEADER = "lojix_request_id"
REQUEST_ID_MAX_LENGTH = 64
# Letters, digits and `-_.:`: what load balancers and tracing headers use, nothing that could
# split a log line or a header.
WELL_FORMED = re.compile(rf"[A-Za-z0-9._:-]{{1,{REQUEST_ID_MAX_LENGTH}}}")
NO_REQUEST_ID = "-"

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "lojix_request_id", default=None
)


def request_id_get() -> str | None:
    """The id of the request or task this code runs for, or None outside one."""
    return _request_id.get()


def request_id_set(value: str | None) -> contextvars.Token:
    """Make `value` the current id; returns the token `request_id_reset` takes to restore the
    previous one."""
    return _request_id.set(value)


def request_id_reset(token: contextvars.Token) -> None:
    """Restore the id that was current before the `request_id_set` that returned `token`."""
    _request_id.reset(token)


def request_id_accept(candidate: str | None) -> str:
    """`candidate` if it is a well-formed id (1 to 64 of `A-Z a-z 0-9 . _ : -`), otherwise a
    fresh uuid4 in hex (32 characters). Never raises."""
    if candidate and WELL_FORMED.fullmatch(candidate):
        return candidate
    return uuid.uuid4().hex


def request_id_clear(**_signal_kwargs) -> None:
    """`request_finished`: the request is over, its id with it."""
    request_id_set(None)


class RequestIdMiddleware:
    """Give each request its id (`request_id_accept` of the incoming `X-Request-ID`), make it
    current, set `request.request_id`, and answer with it in the `X-Request-ID` response header
    (error responses included). The id stays current until `request_finished`
    (`request_id_clear`), not just until this middleware returns, so Django's own
    "Not Found" / "Internal Server Error" lines, written after the middleware chain, carry it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.request_id = request_id_accept(request.META.get(REQUEST_ID_META_KEY))
        request_id_set(request.request_id)
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request.request_id
        return response


class RequestIdFilter(logging.Filter):
    """Add `request_id` to every record (the current id, or "-"); never drops a record. Put it
    on handlers, so records propagated from any logger get it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_get() or NO_REQUEST_ID
        return True


# -- Celery: the id travels as a message header ------------------------------------------------


def task_headers_add(headers: dict | None = None, **_signal_kwargs) -> None:
    """`before_task_publish`: a task published while a request or task runs carries its id,
    unless the publisher set the header itself (the outbox relay sets the stored one)."""
    current = request_id_get()
    if headers is not None and current and not headers.get(TASK_HEADER):
        headers[TASK_HEADER] = current


def task_started(task=None, **_signal_kwargs) -> None:
    """`task_prerun`: make the message's request id current while the task runs (on a worker
    it is a top-level key of the request; an eager task has it under `headers`). A task
    without one keeps the current id (an eager task inside a request) or none."""
    if task is None:
        return
    request = task.request
    value = getattr(request, TASK_HEADER, None) or (request.headers or {}).get(TASK_HEADER)
    request.lojix_request_id_token = request_id_set(
        request_id_accept(value) if value else request_id_get()
    )


def task_finished(task=None, **_signal_kwargs) -> None:
    """`task_postrun`: restore the id that was current before the task started."""
    token = getattr(task.request, "lojix_request_id_token", None) if task is not None else None
    if token is None:
        return
    task.request.lojix_request_id_token = None
    try:
        request_id_reset(token)
    except ValueError:  # set in another context (a pool that switched threads): just clear it
        request_id_set(None)

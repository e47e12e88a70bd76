"""Logging filters for `config.settings` LOGGING."""

import logging

FORBIDDEN = 403


class ForbiddenOneLine(logging.Filter):
    """A 403 is an answer, not a fault: Django logs each refused request (PermissionDenied on
    `django.request`, a CSRF failure on `django.security.csrf`) with the exception's
    traceback. This rewrites such a record in place as one line, `Forbidden: GET /path
    user=<username or anonymous> reason=<why>`, without the traceback. Every other record,
    a 500's traceback included, passes unchanged. Never drops a record. Idempotent: logging
    configured twice in one process (dictConfig adds a logger's filters again) rewrites once."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", None) != FORBIDDEN or getattr(record, "one_line", False):
            return True
        record.one_line = True
        request = getattr(record, "request", None)
        method = getattr(request, "method", "-")
        path = getattr(request, "path", "-")
        reason = _reason(record)
        record.msg = "Forbidden: %s %s user=%s reason=%s"
        record.args = (method, path, _username(request), reason)
        record.exc_info, record.exc_text = None, None
        return True


def _username(request) -> str:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return "anonymous"
    return user.get_username()


def _reason(record: logging.LogRecord) -> str:
    """The exception's message (PermissionDenied, CSRF), else Django's own message."""
    if record.exc_info and record.exc_info[1] is not None:
        text = str(record.exc_info[1])
        return text or type(record.exc_info[1]).__name__
    return record.getMessage()

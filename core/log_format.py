"""Log formats for `LOGGING` (settings `LOJIX_LOG_FORMAT`): `text`, one readable line for the
demo's console, and `json`, one JSON object per line for a log shipper.

Both expect `request_id` on the record (`core.request_id.RequestIdFilter` on the handler) and
fall back to "-" without it.
"""

import datetime as dt
import json
import logging

from core.request_id import NO_REQUEST_ID

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"

# Attributes every LogRecord has; whatever else is on a record came from `extra=` and is a
# structured field of its own (`task`, `outcome`, `duration_ms`... of core.services).
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "request_id",
    "taskName",
}


class TextFormatter(logging.Formatter):
    """`time LEVEL logger [request_id] message`, then the traceback if any."""

    def __init__(self, fmt: str = TEXT_FORMAT, **kwargs):
        super().__init__(fmt, defaults={"request_id": NO_REQUEST_ID}, **kwargs)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line: `time` (ISO 8601, UTC, milliseconds),
    `level`, `logger`, `message`, `request_id`, `exc_info` (the formatted traceback) when
    there is one, `stack_info` likewise, and every field passed with `extra=` (values JSON
    cannot hold are written as their `str`)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", NO_REQUEST_ID),
        }
        entry |= {
            key: value
            for key, value in vars(record).items()
            if key not in _RECORD_ATTRIBUTES and key not in entry and not key.startswith("_")
        }
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)

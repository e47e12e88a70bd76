"""API plumbing shared by every app: the error format of D-10 and the strict input fields."""

import datetime as dt
import logging
import re

from django.core.exceptions import PermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample
from rest_framework import exceptions, serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import DomainError, InvalidInput
from core.parsers import SafeJSONParser

STATUS_BY_KIND = {
    "conflict": status.HTTP_409_CONFLICT,
    "invalid": status.HTTP_400_BAD_REQUEST,
    "forbidden": status.HTTP_403_FORBIDDEN,
    "not_found": status.HTTP_404_NOT_FOUND,
    "unavailable": status.HTTP_503_SERVICE_UNAVAILABLE,
}
DATABASE_RETRY_AFTER_SECONDS = 1

logger = logging.getLogger(__name__)


def exception_handler(exc, context):
    """Every error is JSON with a stable `code`, a human `detail` and, for refusals by the
    policy, the `clauses` (D-10)."""
    if isinstance(exc, DomainError):
        return Response(exc.as_dict(), status=STATUS_BY_KIND[exc.kind])
    if isinstance(exc, OperationalError | InterfaceError):
        return database_unavailable(exc)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = invalid_input_from(exc.detail).as_dict()
    else:
        detail = response.data.get("detail", "") if isinstance(response.data, dict) else ""
        response.data = {
            "code": exc.get_codes() if isinstance(exc.get_codes(), str) else "error",
            "detail": str(detail),
        }
    return response


def database_unavailable(exc: Exception) -> Response:
    """503 `database_unavailable`: the database connection failed or was cut mid-request (a
    restart, a failover, a terminated backend). The request's transaction did not commit
    unless its `Idempotency-Key` replays it, so a retry with the same key is safe."""
    logger.warning("api: the database failed mid-request; answered 503", exc_info=exc)
    error = database_unavailable_error()
    return Response(
        error.as_dict(),
        status=STATUS_BY_KIND[error.kind],
        headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
    )


def database_unavailable_error() -> DomainError:
    """The refusal of a request whose database connection failed, inside DRF's views and
    outside them (`core.error_views.server_error`)."""
    return DomainError(
        "database_unavailable",
        "The database did not answer; try again in a moment (with the same Idempotency-Key, "
        "a retry never does the work twice).",
        kind="unavailable",
    )


class ApiErrorSerializer(serializers.Serializer):
    """The error body of every endpoint (D-10)."""

    code = serializers.CharField(help_text="Stable, for programs.")
    detail = serializers.CharField(help_text="For people.")
    clauses = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Policy clauses behind a refusal."
    )
    field = serializers.CharField(required=False, help_text="The input field at fault.")


# Bodies are JSON (REST_FRAMEWORK's default parser). A request that may carry photos also
# accepts multipart; one that is nothing but a file accepts only multipart.
UPLOAD_PARSERS = [SafeJSONParser, MultiPartParser]
FILE_PARSERS = [MultiPartParser]

# -- strict input fields (issue 11): one class per kind, used by every input serializer ------

MAX_DB_ID = 2**63 - 1  # bigint primary keys
# Digits only, ASCII: a JSON client sends a number, a multipart form sends the same digits as
# text. Never "1.0", " 1", "1e3" or other scripts' digits, all of which int() would take.
_INTEGER_TEXT = re.compile(r"-?[0-9]{1,20}")
EARLIEST_MOMENT = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)  # before lojix: a typo, not a date
DEFAULT_MAX_FUTURE = dt.timedelta(days=5 * 366)


def _is_integer_input(data) -> bool:
    if isinstance(data, bool):  # True is an int to Python, not to a client
        return False
    if isinstance(data, int):
        return True
    return isinstance(data, str) and _INTEGER_TEXT.fullmatch(data) is not None


class StrictIntegerField(serializers.IntegerField):
    """An integer: a JSON integer, or (multipart) a string of ASCII digits. Refuses bools,
    floats (`1.5`, also `1.0`) and other text with DRF's `invalid` code (the API's
    `wrong_type`)."""

    def to_internal_value(self, data):
        if not _is_integer_input(data):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A row by its integer id, read like `StrictIntegerField`: `incorrect_type` for
    anything but an integer (`1.5` is not restaurant 1, `true` is not 1), `does_not_exist`
    for an id outside 1..MAX_DB_ID or not in the queryset."""

    def to_internal_value(self, data):
        if not _is_integer_input(data):
            self.fail("incorrect_type", data_type=type(data).__name__)
        if not 1 <= int(data) <= MAX_DB_ID:
            self.fail("does_not_exist", pk_value=data)
        return super().to_internal_value(int(data))


class BoundedDateTimeField(serializers.DateTimeField):
    """A moment (ISO 8601) no earlier than EARLIEST_MOMENT and no later than now +
    `max_future` (a timedelta; default about five years; pass a small skew for moments that
    must be past). Out of range: `out_of_range`."""

    default_error_messages = {
        "out_of_range": "Date and time out of range: {earliest} to {latest} are accepted."
    }

    def __init__(self, *, max_future: dt.timedelta = DEFAULT_MAX_FUTURE, **kwargs):
        self.max_future = max_future
        super().__init__(**kwargs)

    def to_internal_value(self, value):
        latest = timezone.now() + self.max_future
        try:
            moment = super().to_internal_value(value)
        except exceptions.ValidationError as error:
            # DRF's `overflow` (year 1 or 9999 shifted past the calendar) is the same mistake.
            if error.get_codes() != ["overflow"]:
                raise
            moment = None
        if moment is None or not EARLIEST_MOMENT <= moment <= latest:
            self.fail(
                "out_of_range",
                earliest=EARLIEST_MOMENT.isoformat(),
                latest=latest.replace(microsecond=0).isoformat(),
            )
        return moment


GENERIC_CODES = {
    "required": "missing_field",
    "null": "missing_field",
    "blank": "missing_field",
    "invalid": "wrong_type",
    "incorrect_type": "wrong_type",
    "not_a_list": "wrong_type",
    "not_a_dict": "wrong_type",
    "max_length": "too_long",
    "authorization": "invalid_credentials",
}


def validated(serializer_class, data, field_codes: dict | None = None) -> dict:
    """The serializer's validated data, or the API's 400 (`invalid_input_from`)."""
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        raise invalid_input_from(serializer.errors, field_codes)
    return serializer.validated_data


def invalid_input_from(errors, field_codes: dict | None = None) -> InvalidInput:
    """A serializer's first error as the API's 400: a stable `code` (`field_codes` maps
    (field, DRF code) to a domain code), a `detail` naming the field, the `field` itself and
    all the `errors`."""
    path, error = _first_error(errors, [])
    names = [part for part in path if isinstance(part, str) and part != "non_field_errors"]
    field_name = names[-1] if names else ""
    error_code = getattr(error, "code", "invalid")
    code = (field_codes or {}).get((field_name, error_code)) or GENERIC_CODES.get(
        error_code, error_code
    )
    field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    field = field.removesuffix("non_field_errors").rstrip(".")
    detail = f"{field}: {error}" if field else str(error)
    extra = {"errors": errors} | ({"field": field} if field else {})
    return InvalidInput(code, detail, extra=extra)


def _first_error(errors, path):
    if isinstance(errors, dict):
        for name, value in errors.items():
            if value:
                return _first_error(value, [*path, name])
    if isinstance(errors, list):
        for index, value in enumerate(errors):
            if value:
                nested = isinstance(value, dict | list)
                return _first_error(value, [*path, index] if nested else path)
    return path, errors


def json_or_multipart(serializer_class, files_field: str = "photos") -> dict:
    """The request bodies of an endpoint that takes JSON, or multipart when it carries files:
    `{"application/json": <the serializer without files_field>, "multipart/form-data":
    serializer_class}`, two schema components (`<Name>JsonRequest`, `<Name>Request`) so a
    generated client can tell the two bodies apart."""
    name = serializer_class.__name__.removesuffix("Serializer")
    json_variant = type(
        f"{name}JsonSerializer",
        (serializer_class,),
        {
            files_field: None,  # DRF drops a field set to None in a subclass
            "__module__": serializer_class.__module__,
            "__doc__": f"{serializer_class.__doc__ or name} As JSON: no files.",
        },
    )
    return {"application/json": json_variant, "multipart/form-data": serializer_class}


def request_example(name: str, value: dict, summary: str | None = None) -> OpenApiExample:
    """An example request body for the schema (`extend_schema(examples=[...])`)."""
    return OpenApiExample(name, value=value, summary=summary, request_only=True)


def error_example(
    name: str, status_code: int, code: str, detail: str, clauses: list[str] | None = None
) -> OpenApiExample:
    """An example error answer of D-10 (`code`, `detail`, `clauses` for a policy refusal) under
    its status code."""
    value = {"code": code, "detail": detail} | ({"clauses": clauses} if clauses else {})
    return OpenApiExample(name, value=value, response_only=True, status_codes=[str(status_code)])


# Errors any signed-in operation can give, with the wording the API really uses.
NOT_SIGNED_IN = error_example(
    "Not signed in", 401, "not_authenticated", "Authentication credentials were not provided."
)
KEY_REUSED = error_example(
    "Idempotency-Key reused with another body",
    422,
    "idempotency_key_mismatch",
    "This Idempotency-Key was already used for a different request; use a new key for a new "
    "request.",
)

"""`Idempotency-Key` on mutating API endpoints, with the semantics of Stripe and the IETF
idempotency-key draft (D-10).

- A repeat with the same key and the same request replays the first response (same status and
  body, header `Idempotent-Replayed: true`); the work does not run again.
- The same key with a different method, path or body is a 422 (`idempotency_key_mismatch`).
- A repeat while the first request is still running is a 409 (`idempotency_key_in_progress`).
- Keys are scoped per user and kept 24 hours; an older record is ignored and replaced.

The record is committed `in_progress` before the work runs, so a concurrent repeat sees it
(the unique (user, key) constraint decides the race), and completed after. Successful and 4xx
responses are stored; if the work fails with a 5xx the record is deleted so a retry can run.
"""

import datetime as dt
import functools
import hashlib
import json

from django.db import IntegrityError, transaction
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from core.models import IdempotencyRecord

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
RETENTION = dt.timedelta(hours=24)
MAX_KEY_LENGTH = 255
PURGE_BATCH_SIZE = 1000

IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    name=HEADER,
    type=OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "A unique value (a UUID) per intended operation. A repeat with the same key and body "
        "replays the first response; a different body is a 422; a repeat while the first is "
        "still running is a 409. Kept 24 hours, per user."
    ),
)


class IdempotencyKeyInvalid(APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "idempotency_key_invalid"
    default_detail = f"The {HEADER} header must be 1 to {MAX_KEY_LENGTH} visible characters."


class IdempotencyKeyMismatch(APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "idempotency_key_mismatch"
    default_detail = (
        f"This {HEADER} was already used for a different request; use a new key for a new request."
    )


class IdempotencyKeyInProgress(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "idempotency_key_in_progress"
    default_detail = f"A request with this {HEADER} is still being processed; retry in a moment."


def idempotent(handler):
    """Make a mutating APIView method (`post`, `put`, `patch`, `delete`) honour the
    `Idempotency-Key` header.

    Runs inside the view's dispatch, after authentication, permissions and throttling, so the
    key is scoped to the authenticated user. Requests without the header run as usual.
    """

    @functools.wraps(handler)
    def wrapper(view, request, *args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None or not request.user.is_authenticated:
            return handler(view, request, *args, **kwargs)
        _check_key(key)
        record, created = idempotency_record_begin(
            user=request.user,
            key=key,
            method=request.method,
            path=request.path,
            fingerprint=request_fingerprint(request),
            now=timezone.now(),
        )
        if not created:
            return _replay(record)
        try:
            try:
                response = handler(view, request, *args, **kwargs)
            except Exception as error:
                # Refusals become their 4xx response here, so they are stored like successes.
                response = view.handle_exception(error)
        except BaseException:
            idempotency_record_abandon(record)
            raise
        idempotency_record_complete(record, response)
        return response

    wrapper.is_idempotent = True
    return extend_schema(parameters=[IDEMPOTENCY_KEY_PARAMETER])(wrapper)


def _check_key(key: str) -> None:
    if not 0 < len(key) <= MAX_KEY_LENGTH or not key.isprintable() or key != key.strip():
        raise IdempotencyKeyInvalid()


def _replay(record: IdempotencyRecord) -> Response:
    return Response(
        json.loads(record.response_body),
        status=record.response_status,
        headers={REPLAYED_HEADER: "true"},
    )


def request_fingerprint(request) -> str:
    """sha256 of what the request asks for: JSON bodies in a canonical form (key order and
    spacing do not matter), multipart forms field by field with each file's content (the
    boundary changes on every retry), anything else byte for byte."""
    if request.content_type.startswith("multipart/"):
        digest = hashlib.sha256()
        for name, values in sorted(request.data.lists(), key=lambda pair: pair[0]):
            digest.update(json.dumps(name).encode())
            for value in values:
                _update_with_value(digest, value)
        return digest.hexdigest()
    return body_fingerprint(request.body)


def body_fingerprint(body: bytes) -> str:
    """sha256 of a request body; JSON in a canonical form, anything else byte for byte."""
    try:
        canonical = json.dumps(
            json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    except ValueError:  # not JSON (or not UTF-8): compare the bytes
        canonical = body
    return hashlib.sha256(canonical).hexdigest()


def _update_with_value(digest, value) -> None:
    if hasattr(value, "chunks"):  # an uploaded file
        digest.update(b"file:")
        for chunk in value.chunks():
            digest.update(hashlib.sha256(chunk).digest())
        value.seek(0)
    else:
        digest.update(json.dumps(str(value)).encode())


# -- services: each statement commits on its own, outside any request transaction ----------


def idempotency_record_begin(
    *, user, key: str, method: str, path: str, fingerprint: str, now: dt.datetime
) -> tuple[IdempotencyRecord, bool]:
    """Claim the key for this request and commit the claim, or return the completed record to
    replay. Returns `(record, created)`.

    Raises `IdempotencyKeyMismatch` if the key was used for another request and
    `IdempotencyKeyInProgress` if its first request is still running. A record older than
    `RETENTION` no longer counts: it is deleted and the key claimed afresh.
    """
    for _attempt in range(3):
        try:
            with transaction.atomic(durable=True):
                record = IdempotencyRecord.objects.create(
                    user=user,
                    key=key,
                    method=method,
                    path=path,
                    fingerprint=fingerprint,
                    created_at=now,
                )
            return record, True
        except IntegrityError:
            pass  # the key is taken: look at what holds it
        existing = IdempotencyRecord.objects.filter(user=user, key=key).first()
        if existing is None:
            continue  # its request failed and released the key meanwhile
        if existing.created_at <= now - RETENTION:
            IdempotencyRecord.objects.filter(
                pk=existing.pk, created_at=existing.created_at
            ).delete()
            continue
        if (existing.method, existing.path, existing.fingerprint) != (method, path, fingerprint):
            raise IdempotencyKeyMismatch()
        if existing.status == IdempotencyRecord.Status.IN_PROGRESS:
            raise IdempotencyKeyInProgress()
        return existing, False
    raise IdempotencyKeyInProgress()


def idempotency_record_complete(record: IdempotencyRecord, response: Response) -> None:
    """Store the response of the request that claimed the key, for replays; a 5xx is not
    stored, and releases the key so the request can be retried."""
    if response.status_code >= 500:
        idempotency_record_abandon(record)
        return
    body = json.dumps(response.data, cls=JSONEncoder, ensure_ascii=False)
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        status=IdempotencyRecord.Status.COMPLETED,
        response_status=response.status_code,
        response_body=body,
        completed_at=timezone.now(),
    )


def idempotency_record_abandon(record: IdempotencyRecord) -> None:
    """Release a key whose request failed, so a retry runs the work."""
    IdempotencyRecord.objects.filter(pk=record.pk).delete()


def idempotency_record_ids_expired(*, now: dt.datetime, limit: int) -> list[int]:
    """Records past their 24 hours, oldest first."""
    return list(
        IdempotencyRecord.objects.filter(created_at__lte=now - RETENTION)
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def idempotency_records_purge(*, now: dt.datetime, batch_size: int = PURGE_BATCH_SIZE) -> int:
    """Delete records older than 24 hours, a bounded batch at a time. Returns how many.

    Safe to run twice at once: deleting a row already deleted does nothing.
    """
    purged = 0
    while ids := idempotency_record_ids_expired(now=now, limit=batch_size):
        deleted, _ = IdempotencyRecord.objects.filter(
            pk__in=ids, created_at__lte=now - RETENTION
        ).delete()
        purged += deleted
        if deleted == 0:
            break
    return purged

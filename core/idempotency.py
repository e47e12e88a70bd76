"""`Idempotency-Key` on mutating API endpoints, with the semantics of Stripe and the IETF
idempotency-key draft (D-10).

- A repeat with the same key and the same request replays the first response (same status and
  body, header `Idempotent-Replayed: true`); the work does not run again.
- The same key with a different method, path or body is a 422 (`idempotency_key_mismatch`).
- A repeat while the first request is still running is a 409 (`idempotency_key_in_progress`).
- Keys are scoped per user and kept 24 hours; an older record is ignored and replaced.

The key's record is written in the same transaction as the effect it guards, so the two commit
together or not at all: a retry of a request that committed replays its result (even if the
answer never reached the client), and a request that committed nothing (it crashed, answered a
5xx, or lost its database connection before the commit) can be retried at once.

A keyed request first looks for a committed record and replays it (or answers 422). Otherwise
it runs in one `transaction.atomic(durable=True)` block that

1. takes a lock on (user, key) that does not wait. On PostgreSQL it is
   `pg_try_advisory_xact_lock` on a stable 64-bit hash of the two, released by the commit or
   rollback; not getting it means the first request is still running: 409. On SQLite (the
   embedded default) there is no advisory lock and none is needed: the database is configured
   with `transaction_mode: IMMEDIATE`, so the block's `BEGIN IMMEDIATE` takes the database's
   write lock, a concurrent repeat waits for the first to commit (up to the 30 s busy timeout)
   and then replays its result instead of getting a 409;
2. looks for a committed record again (the first request may have committed meanwhile) and
   replays it;
3. runs the handler. The services it calls open their own `transaction.atomic` blocks, which
   nest as savepoints (none of them may be `durable`);
4. stores the response: a success or a 4xx refusal (a refusal changes nothing, and its answer
   is final) is saved and committed with the effect; a 5xx rolls back everything, record
   included, and so does any exception.

The unique (user, key) constraint stays as the backstop: if the insert of the record still hits
it, someone else committed that key first, so this transaction rolls back and their result is
replayed.

Work that must happen outside any transaction (a card charge) goes in the view's optional
`prepare_idempotent(request, *args, **kwargs)`: it runs after the lookup (so not for a replay)
and before the transaction, and its return value reaches the handler as
`request.idempotent_prepared`. It runs before the lock, so a concurrent repeat may run it too:
it must be idempotent itself (a gateway call keyed by the request's key). A refusal it raises
is stored and replayed like one from the handler.
"""

import datetime as dt
import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from core.models import IdempotencyRecord
from core.safe_json import safe_json_loads

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
RETENTION = dt.timedelta(hours=24)
MAX_KEY_LENGTH = 255
PURGE_BATCH_SIZE = 1000

IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    name=HEADER,
    # What `_check_key` accepts: 1 to MAX_KEY_LENGTH visible characters.
    type={"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
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
    `Idempotency-Key` header (D-10), as the module docstring describes.

    Runs inside the view's dispatch, after authentication, permissions and throttling, so the
    key is scoped to the authenticated user. Requests without the header run as usual, outside
    any transaction of the decorator's. If the view defines `prepare_idempotent`, it is called
    first and its result set as `request.idempotent_prepared`, with or without a key.

    Errors (answered by the view): 400 `idempotency_key_invalid`, 422
    `idempotency_key_mismatch`, 409 `idempotency_key_in_progress`. Takes the (user, key)
    advisory lock on PostgreSQL for the length of its transaction.
    """

    @functools.wraps(handler)
    def wrapper(view, request, *args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None or not request.user.is_authenticated:
            _prepare(view, request, args, kwargs)
            return handler(view, request, *args, **kwargs)
        _check_key(key)
        claim = Claim(
            user=request.user,
            key=key,
            method=request.method,
            path=request.path,
            fingerprint=request_fingerprint(request),
        )
        now = timezone.now()
        replay = _replay_committed(claim, now=now)
        if replay is not None:
            return replay
        try:
            _prepare(view, request, args, kwargs)
        except Exception as error:
            refusal = view.handle_exception(error)  # anything but a refusal propagates
            if refusal.status_code >= 500:
                return refusal
            return idempotency_respond_once(claim, lambda: refusal, now=now)
        return idempotency_respond_once(
            claim, functools.partial(_respond, view, handler, request, args, kwargs), now=now
        )

    wrapper.is_idempotent = True
    return extend_schema(parameters=[IDEMPOTENCY_KEY_PARAMETER])(wrapper)


def _prepare(view, request, args, kwargs) -> None:
    prepare = getattr(view, "prepare_idempotent", None)
    if prepare is not None:
        request.idempotent_prepared = prepare(request, *args, **kwargs)


def _respond(view, handler, request, args, kwargs) -> Response:
    try:
        return handler(view, request, *args, **kwargs)
    except Exception as error:
        # Refusals become their 4xx response here, so they are stored like successes; an error
        # DRF does not handle propagates and rolls the transaction back.
        return view.handle_exception(error)


def _check_key(key: str) -> None:
    if not 0 < len(key) <= MAX_KEY_LENGTH or not key.isprintable() or key != key.strip():
        raise IdempotencyKeyInvalid()


def _replay(record: IdempotencyRecord) -> Response:
    return Response(
        json.loads(record.response_body),
        status=record.response_status,
        headers={REPLAYED_HEADER: "true"},
    )


def idempotency_key_generation(*, user, key: str) -> str:
    """Which use of `key` this is for the user: "0" for a key never used, otherwise the id of
    the expired record it replaces (a key is kept 24 hours; reused later it is a new request).
    Lets work done before the key's transaction (a card charge keyed by it) tell the uses
    apart."""
    record = IdempotencyRecord.objects.filter(user=user, key=key).values_list("pk", flat=True)
    return str(record.first() or 0)


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
            safe_json_loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    except ValueError:  # not JSON, not UTF-8 or refused as unsafe: compare the bytes
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


# -- the record and its transaction -------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """What a keyed request asks for: its user and key, and what the key must stay bound to."""

    user: object
    key: str
    method: str
    path: str
    fingerprint: str


def idempotency_lock_id(*, user_id: int, key: str) -> int:
    """The id of the PostgreSQL advisory lock on (user, key): a signed 64-bit number from a
    hash that is the same in every process (unlike `hash()`). Two pairs sharing an id only
    make one of them answer 409 while the other runs."""
    digest = hashlib.blake2b(f"idempotency-key:{user_id}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class _KeyCommittedMeanwhile(Exception):
    """The record's insert hit the unique (user, key) constraint."""


def idempotency_respond_once(
    claim: Claim, respond: Callable[[], Response], *, now: dt.datetime
) -> Response:
    """Run `respond` and commit its effect together with the key's record, or replay the
    response committed for the key first; `now` is when the request arrived.

    Opens a durable transaction (raises `RuntimeError` if called inside one) and takes the
    non-waiting (user, key) lock in it. Raises `IdempotencyKeyInProgress` (409) if another
    transaction holds the key, `IdempotencyKeyMismatch` (422) if the key was committed for
    another request. A response of 500 or more is returned but rolled back, record and effect;
    an exception from `respond` rolls everything back and propagates.
    """
    try:
        with transaction.atomic(durable=True):
            if not _lock(claim):
                raise IdempotencyKeyInProgress()
            replay = _replay_committed(claim, now=now, delete_expired=True)
            if replay is not None:
                return replay
            response = respond()
            if response.status_code >= 500:
                transaction.set_rollback(True)
                return response
            _record(claim, response, now=now)
        return response
    except _KeyCommittedMeanwhile as race:
        replay = _replay_committed(claim, now=now)
        if replay is None:
            raise race.__cause__ from None
        return replay


def _lock(claim: Claim) -> bool:
    connection = transaction.get_connection()
    if connection.vendor != "postgresql":
        return True  # SQLite: BEGIN IMMEDIATE already holds the write lock (module docstring)
    with connection.cursor() as cursor:
        lock_id = idempotency_lock_id(user_id=claim.user.pk, key=claim.key)
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [lock_id])
        return cursor.fetchone()[0]


def _replay_committed(
    claim: Claim, *, now: dt.datetime, delete_expired: bool = False
) -> Response | None:
    """The replay of the key's committed record, or None if there is none younger than
    `RETENTION` (an expired one is deleted if `delete_expired`). Raises
    `IdempotencyKeyMismatch` if the record is for another request."""
    record = IdempotencyRecord.objects.filter(user=claim.user, key=claim.key).first()
    if record is None:
        return None
    if record.created_at <= now - RETENTION:
        if delete_expired:
            record.delete()
        return None
    if (record.method, record.path, record.fingerprint) != (
        claim.method,
        claim.path,
        claim.fingerprint,
    ):
        raise IdempotencyKeyMismatch()
    return _replay(record)


def _record(claim: Claim, response: Response, *, now: dt.datetime) -> None:
    try:
        IdempotencyRecord.objects.create(
            user=claim.user,
            key=claim.key,
            method=claim.method,
            path=claim.path,
            fingerprint=claim.fingerprint,
            response_status=response.status_code,
            response_body=json.dumps(response.data, cls=JSONEncoder, ensure_ascii=False),
            created_at=now,
            completed_at=timezone.now(),
        )
    except IntegrityError as error:
        raise _KeyCommittedMeanwhile() from error


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

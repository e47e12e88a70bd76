"""The payment gateway interface and the built-in simulated processor (D-5 `Payment`).

A real processor plugs in by implementing `PaymentGateway` and naming the class in
`LOJIX_PAYMENT_GATEWAY`. Every call carries an idempotency key: calling again with the same key
returns the first result and moves no more money, as real processors do. Processor outcomes are
never raised: every call answers a `GatewayResult` that succeeded, was declined (a definite
refusal), or is unknown (the processor failed or its answer was lost: retry with the same key).

`SimulatedGateway` behaves like an external processor. Its records live in its own store, a
SQLite file (`LOJIX_SIMULATED_GATEWAY_PATH`) opened through the standard library's `sqlite3` on
its own connection, one per thread and process, never Django's `default` connection: an external
processor's records are never in the merchant's database, so a rollback in lojix cannot erase a
charge or a refund it made, exactly as with a real one. A file works across the web and worker
processes of one machine, which is all the simulated processor is for (demos and tests); WAL and
a busy timeout let those processes share it, and `BEGIN IMMEDIATE` serialises the writes, so two
concurrent refunds of one charge cannot both pass the over-refund check. Money is stored as
Decimal strings (exact). A chargeback (L-8.2) is the buyer's bank taking money of a charge back;
it counts against the charge like a refund does.

`LOJIX_SIMULATED_GATEWAY_FAULTS`, read at every call, makes it act out a fault per operation:

- `{"charge"|"refund"|"void"|"chargeback": "decline"|"error"|"timeout"}`: on every call
  (absent: succeed);
- `{"refund": {"fault": "timeout", "one_in": 10}}`: once, on the first call, for one key in
  `one_in`, chosen by a hash of the key (the same keys in every process and on every run); the
  other keys, and every later call with a chosen key, are answered as usual. So a `timeout` is
  an answer lost once (the processor made the refund) that the retry with the same key finds,
  and an `error` one the retry makes. The store remembers each fault it acted out this way
  (`SimulatedGateway.faults_acted`), which is how it knows a call is not the first.

`decline` is a definite refusal (stored, and replayed for its key); `error` means the processor
did nothing and said so; `timeout` means it did the operation but the answer was lost.
"""

import datetime as dt
import hashlib
import hmac
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Protocol

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.utils import timezone
from django.utils.module_loading import import_string

from core.money import ZERO


class GatewayOutcome(models.TextChoices):
    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    # The processor failed or its answer was lost; the caller retries with the same key.
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class GatewayResult:
    """The processor's answer to one call; `reference` is its id of the operation ("" when
    the outcome is unknown)."""

    outcome: str
    reference: str = ""
    message: str = ""

    @property
    def succeeded(self) -> bool:
        return self.outcome == GatewayOutcome.SUCCEEDED


@dataclass(frozen=True)
class ProcessorRecord:
    """What the processor knows of one operation, for reconciliation."""

    kind: str  # "charge" | "refund" | "void" | "chargeback"
    idempotency_key: str
    reference: str
    amount: Decimal
    currency: str
    status: str  # "succeeded" | "declined"; a charge may also be "voided"
    charge_reference: str  # for refunds and voids: the charge; "" for a charge
    created_at: dt.datetime


class PaymentGateway(Protocol):
    name: str

    def charge(
        self, *, amount: Decimal, currency: str, idempotency_key: str, description: str
    ) -> GatewayResult: ...

    def refund(
        self, *, charge_reference: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> GatewayResult: ...

    def void(self, *, charge_reference: str, idempotency_key: str) -> GatewayResult: ...

    def find(self, *, idempotency_key: str) -> ProcessorRecord | None: ...

    def charges_between(self, *, start: dt.datetime, end: dt.datetime) -> list[ProcessorRecord]: ...

    def refunds_of(self, *, charge_reference: str) -> list[ProcessorRecord]: ...

    def chargeback(
        self, *, charge_reference: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> GatewayResult: ...

    def chargebacks_of(self, *, charge_reference: str) -> list[ProcessorRecord]: ...


def get_gateway() -> PaymentGateway:
    """The configured gateway (`LOJIX_PAYMENT_GATEWAY`, a dotted class path), a new instance."""
    return import_string(settings.LOJIX_PAYMENT_GATEWAY)()


CHARGE, REFUND, VOID, CHARGEBACK = "charge", "refund", "void", "chargeback"
SUCCEEDED, DECLINED, VOIDED = "succeeded", "declined", "voided"
FAULTS = ("decline", "error", "timeout")
BUSY_TIMEOUT_MS = 30_000
CENT = Decimal("0.01")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS operation (
    reference TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('charge', 'refund', 'void', 'chargeback')),
    amount TEXT NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('succeeded', 'declined', 'voided')),
    charge_reference TEXT NOT NULL DEFAULT '',
    message TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS operation_charge ON operation (charge_reference, kind);
CREATE INDEX IF NOT EXISTS operation_created ON operation (kind, created_at);
CREATE TABLE IF NOT EXISTS fault_acted (
    idempotency_key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    fault TEXT NOT NULL,
    created_at TEXT NOT NULL
);
"""

_local = threading.local()


def _connection() -> sqlite3.Connection:
    """This thread's connection to the store, opened (and the schema created) on first use.

    A connection is never shared between threads, nor carried into a forked process (Celery's
    prefork pool, gunicorn), which SQLite forbids: the process id is part of the cache key.
    """
    path = Path(settings.LOJIX_SIMULATED_GATEWAY_PATH)
    key = (os.getpid(), str(path))
    if getattr(_local, "key", None) != key:
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        connection.row_factory = sqlite3.Row
        connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        connection.execute("PRAGMA journal_mode = WAL")
        _upgrade(connection)
        connection.executescript(_SCHEMA)
        _local.connection, _local.key = connection, key
    return _local.connection


def _upgrade(connection: sqlite3.Connection) -> None:
    """A store made before chargebacks (its kind CHECK lacks them) is rebuilt with the same
    rows, once, under the write lock."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        row = connection.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'operation'"
        ).fetchone()
        if row is not None and "'chargeback'" not in row[0]:
            connection.execute("ALTER TABLE operation RENAME TO operation_before_chargebacks")
            connection.execute("DROP INDEX IF EXISTS operation_charge")
            connection.execute("DROP INDEX IF EXISTS operation_created")
            connection.execute(_SCHEMA.split(";")[0])
            connection.execute("INSERT INTO operation SELECT * FROM operation_before_chargebacks")
            connection.execute("DROP TABLE operation_before_chargebacks")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


@contextmanager
def _write() -> Iterator[sqlite3.Connection]:
    """A write transaction that holds the store's write lock from its first statement."""
    connection = _connection()
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def _fault(connection: sqlite3.Connection, operation: str, idempotency_key: str) -> str | None:
    """The fault to act out on this call of `operation` with `idempotency_key`, or None (module
    docstring); a once-per-key fault is remembered in the caller's write transaction. Raises
    ImproperlyConfigured."""
    faults = getattr(settings, "LOJIX_SIMULATED_GATEWAY_FAULTS", None) or {}
    if not isinstance(faults, dict):
        raise ImproperlyConfigured("LOJIX_SIMULATED_GATEWAY_FAULTS must be a dict.")
    rule = faults.get(operation)
    if rule is None or rule in FAULTS:
        return rule
    if not (isinstance(rule, dict) and rule.get("fault") in FAULTS and _whole(rule.get("one_in"))):
        raise ImproperlyConfigured(
            f"LOJIX_SIMULATED_GATEWAY_FAULTS[{operation!r}] must be one of {', '.join(FAULTS)}, "
            'or {"fault": <one of them>, "one_in": <a whole number from 1>}.'
        )
    digest = hashlib.sha256(idempotency_key.encode()).digest()
    if int.from_bytes(digest[:8], "big") % rule["one_in"]:
        return None
    first = connection.execute(
        "INSERT OR IGNORE INTO fault_acted VALUES (?, ?, ?, ?)",
        (idempotency_key, operation, rule["fault"], _timestamp(timezone.now())),
    ).rowcount
    return rule["fault"] if first else None


def _whole(value) -> bool:
    return type(value) is int and value >= 1


def _money(amount) -> str | None:
    """`amount` as an exact string with cents, or None when it is not a positive amount."""
    try:
        value = Decimal(amount)
    except (InvalidOperation, TypeError, ValueError):
        return None
    if not value.is_finite() or value <= 0 or value != value.quantize(CENT):
        return None
    return str(value.quantize(CENT))


def _record(row: sqlite3.Row) -> ProcessorRecord:
    return ProcessorRecord(
        kind=row["kind"],
        idempotency_key=row["idempotency_key"],
        reference=row["reference"],
        amount=Decimal(row["amount"]),
        currency=row["currency"],
        status=row["status"],
        charge_reference=row["charge_reference"],
        created_at=dt.datetime.fromisoformat(row["created_at"]),
    )


def _timestamp(moment: dt.datetime) -> str:
    """UTC with a fixed width, so the stored text sorts as the moments do."""
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")


class SimulatedGateway:
    """The built-in processor: its own store, dedup by key, faults on demand (module docstring).

    It declines a refund that would take back more than its charge ("Refund exceeds the
    charge."), a refund or void of an unknown, declined or voided charge, a void of a charge
    with refunds, and a key reused for a different request.
    """

    name = "simulated"

    def charge(self, *, amount, currency, idempotency_key, description) -> GatewayResult:
        """Charge the card `amount` (Decimal, `currency` units); fault key "charge"."""
        valid = _money(amount)
        request = {"kind": CHARGE, "amount": valid or "0.00", "currency": currency}

        def decide(connection, fault):
            if valid is None:
                return DECLINED, "Invalid amount."
            if fault == "decline":
                return DECLINED, "Card declined."
            return SUCCEEDED, ""

        return self._operate(CHARGE, idempotency_key, request, decide, description=description)

    def refund(self, *, charge_reference, amount, currency, idempotency_key) -> GatewayResult:
        """Refund `amount` of the charge `charge_reference`; fault key "refund".

        The over-refund check and the write happen under the store's write lock, so concurrent
        refunds of one charge never exceed it.
        """
        return self._take_back(REFUND, charge_reference, amount, currency, idempotency_key)

    def chargeback(self, *, charge_reference, amount, currency, idempotency_key) -> GatewayResult:
        """The buyer's bank takes `amount` of the charge back (L-8.2, a lost or uncontested
        chargeback); declined when refunds and chargebacks of the charge would exceed it. Fault
        key "chargeback"."""
        return self._take_back(CHARGEBACK, charge_reference, amount, currency, idempotency_key)

    def _take_back(self, kind, charge_reference, amount, currency, idempotency_key):
        """A refund or a chargeback of `amount` of the charge: declined when what went back of
        it (refunds and chargebacks) would exceed it, checked and written under the store's
        write lock."""
        valid = _money(amount)
        request = {
            "kind": kind,
            "amount": valid or "0.00",
            "currency": currency,
            "charge_reference": charge_reference,
        }
        name = kind.capitalize()

        def decide(connection, fault):
            charge, refusal = self._live_charge(connection, charge_reference, currency)
            if refusal:
                return DECLINED, refusal
            if valid is None:
                return DECLINED, "Invalid amount."
            taken = self._refunded(connection, charge_reference)
            if taken + Decimal(valid) > Decimal(charge["amount"]):
                return DECLINED, f"{name} exceeds the charge."
            if fault == "decline":
                return DECLINED, f"{name} declined."
            return SUCCEEDED, ""

        return self._operate(kind, idempotency_key, request, decide)

    def void(self, *, charge_reference, idempotency_key) -> GatewayResult:
        """Cancel the charge `charge_reference` in full (its status becomes "voided"); refused
        when anything of it was refunded. Fault key "void"."""
        request = {"kind": VOID, "charge_reference": charge_reference}

        def decide(connection, fault):
            charge, refusal = self._live_charge(connection, charge_reference, None)
            if refusal:
                return DECLINED, refusal
            if self._refunded(connection, charge_reference) > ZERO:
                return DECLINED, "The charge has refunds and cannot be voided."
            if fault == "decline":
                return DECLINED, "Void declined."
            request.update(amount=charge["amount"], currency=charge["currency"])
            connection.execute(
                "UPDATE operation SET status = ? WHERE reference = ?", (VOIDED, charge_reference)
            )
            return SUCCEEDED, ""

        return self._operate(VOID, idempotency_key, request, decide)

    def find(self, *, idempotency_key) -> ProcessorRecord | None:
        """The operation stored under `idempotency_key`, or None."""
        row = (
            _connection()
            .execute("SELECT * FROM operation WHERE idempotency_key = ?", (idempotency_key,))
            .fetchone()
        )
        return _record(row) if row else None

    def charges_between(self, *, start, end) -> list[ProcessorRecord]:
        """Every charge (any status) made at `start` or later and before `end`, oldest first."""
        rows = _connection().execute(
            "SELECT * FROM operation WHERE kind = ? AND created_at >= ? AND created_at < ? "
            "ORDER BY created_at, reference",
            (CHARGE, _timestamp(start), _timestamp(end)),
        )
        return [_record(row) for row in rows]

    def refunds_of(self, *, charge_reference) -> list[ProcessorRecord]:
        """Every refund (succeeded or declined) of the charge, oldest first."""
        return self._of(charge_reference, REFUND)

    def chargebacks_of(self, *, charge_reference) -> list[ProcessorRecord]:
        """Every chargeback (succeeded or declined) of the charge, oldest first."""
        return self._of(charge_reference, CHARGEBACK)

    @staticmethod
    def _of(charge_reference, kind) -> list[ProcessorRecord]:
        rows = _connection().execute(
            "SELECT * FROM operation WHERE charge_reference = ? AND kind = ? "
            "ORDER BY created_at, reference",
            (charge_reference, kind),
        )
        return [_record(row) for row in rows]

    def faults_acted(self) -> dict[str, str]:
        """The keys a once-per-key fault was acted out on (module docstring), each with its
        fault, oldest first (for tests)."""
        rows = _connection().execute(
            "SELECT idempotency_key, fault FROM fault_acted ORDER BY created_at, idempotency_key"
        )
        return {row["idempotency_key"]: row["fault"] for row in rows}

    @staticmethod
    def reset() -> None:
        """Wipe the store (for tests)."""
        with _write() as connection:
            connection.execute("DELETE FROM operation")
            connection.execute("DELETE FROM fault_acted")

    @staticmethod
    def forget(*, idempotency_key: str) -> None:
        """Delete one operation, as if the processor had never made it (for tests that corrupt
        the processor's side of the ledgers)."""
        with _write() as connection:
            connection.execute(
                "DELETE FROM operation WHERE idempotency_key = ?", (idempotency_key,)
            )

    def _operate(self, kind, idempotency_key, request, decide, description="") -> GatewayResult:
        """The shared life of a call, under the store's write lock: an `error` fault does
        nothing; a stored key replays its first result (a key reused for a different request is
        declined); otherwise `decide(connection, fault)` runs and its outcome is stored; a
        `timeout` fault loses the answer after all of that."""
        with _write() as connection:
            fault = _fault(connection, kind, idempotency_key)
            if fault == "error":
                return GatewayResult(
                    GatewayOutcome.UNKNOWN, message="Processor error (simulated): nothing was done."
                )
            stored = connection.execute(
                "SELECT * FROM operation WHERE idempotency_key = ?", (idempotency_key,)
            ).fetchone()
            replayed = stored is not None
            if not replayed:
                status, message = decide(connection, fault)
                stored = self._store(
                    connection, idempotency_key, request, status, message, description
                )
        if fault == "timeout":
            return GatewayResult(
                GatewayOutcome.UNKNOWN, message="The processor did not answer (simulated timeout)."
            )
        if replayed and any(stored[field] != value for field, value in request.items()):
            return GatewayResult(
                GatewayOutcome.DECLINED,
                message="The idempotency key was already used for a different request.",
            )
        if stored["status"] == VOIDED:  # an orphan charge voided by reconciliation (D-7)
            return GatewayResult(
                GatewayOutcome.DECLINED, stored["reference"], "This charge was voided."
            )
        succeeded = stored["status"] == SUCCEEDED
        return GatewayResult(
            GatewayOutcome.SUCCEEDED if succeeded else GatewayOutcome.DECLINED,
            stored["reference"],
            stored["message"],
        )

    @staticmethod
    def _store(connection, idempotency_key, request, status, message, description) -> dict:
        row = {
            "reference": f"sim_{request['kind'][:2]}_{uuid.uuid4().hex[:24]}",
            "idempotency_key": idempotency_key,
            "kind": request["kind"],
            "amount": request.get("amount", "0.00"),
            "currency": request.get("currency") or "",
            "status": status,
            "charge_reference": request.get("charge_reference", ""),
            "message": message,
            "description": description,
            "created_at": _timestamp(timezone.now()),
        }
        connection.execute(
            f"INSERT INTO operation ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
            tuple(row.values()),
        )
        return row

    @staticmethod
    def _live_charge(connection, reference, currency) -> tuple[sqlite3.Row | None, str]:
        """The succeeded, unvoided charge `reference`, or a refusal message."""
        charge = connection.execute(
            "SELECT * FROM operation WHERE reference = ? AND kind = ?", (reference, CHARGE)
        ).fetchone()
        if charge is None:
            return None, "No such charge."
        if charge["status"] == VOIDED:
            return charge, "The charge was voided."
        if charge["status"] != SUCCEEDED:
            return charge, "The charge did not succeed."
        if currency is not None and currency != charge["currency"]:
            return charge, "The currency differs from the charge's."
        return charge, ""

    @staticmethod
    def _refunded(connection, charge_reference) -> Decimal:
        """The sum of the charge's succeeded refunds and chargebacks: what went back."""
        rows = connection.execute(
            "SELECT amount FROM operation WHERE charge_reference = ? AND kind IN (?, ?) "
            "AND status = ?",
            (charge_reference, REFUND, CHARGEBACK, SUCCEEDED),
        )
        return sum((Decimal(row["amount"]) for row in rows), ZERO)


# -- webhooks (D-10): the processor signs every call ------------------------------------------

SIGNATURE_HEADER = "Lojix-Signature"


def webhook_signature(*, secret: str, body: bytes, timestamp: int) -> str:
    """The `Lojix-Signature` header value a processor sends with `body` signed at `timestamp`
    (unix seconds): `t=<timestamp>,v1=<hex HMAC-SHA256 of "<timestamp>.<body>">`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def webhook_signature_problem(
    *, secret: str, header: str, body: bytes, now: int, tolerance: int
) -> tuple[str, str] | None:
    """Why a webhook call's signature is refused, as (code, detail), or None when it is good:
    no secret configured, no header (`signature_missing`), a malformed one or no `v1` that
    matches (`signature_invalid`, compared in constant time), or a timestamp more than
    `tolerance` seconds from `now` (`signature_stale`)."""
    if not secret:
        return "webhook_not_configured", "No webhook secret is configured."
    if not header:
        return "signature_missing", f"The {SIGNATURE_HEADER} header is missing."
    parts = [part.split("=", 1) for part in header.split(",")]
    if any(len(part) != 2 for part in parts):
        return "signature_invalid", f"The {SIGNATURE_HEADER} header is malformed."
    timestamps = [value for key, value in parts if key.strip() == "t"]
    signatures = [value.strip() for key, value in parts if key.strip() == "v1"]
    if len(timestamps) != 1 or not timestamps[0].strip().isdigit() or not signatures:
        return "signature_invalid", f"The {SIGNATURE_HEADER} header is malformed."
    timestamp = int(timestamps[0])
    expected = webhook_signature(secret=secret, body=body, timestamp=timestamp).split("v1=")[1]
    if not any(hmac.compare_digest(expected, signature) for signature in signatures):
        return "signature_invalid", "The signature does not match the body."
    if abs(now - timestamp) > tolerance:
        return "signature_stale", f"The call was signed more than {tolerance} s ago."
    return None

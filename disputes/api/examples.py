"""Examples of the disputes API's request bodies and refusals, shown in the schema and
/api/docs/."""

from core.api import NOT_SIGNED_IN, error_example, request_example

ESCALATE = [
    request_example(
        "Ask a supervisor to look again",
        {"statement": "The photo shows the wrong dish; I was charged for a pizza I never got."},
    ),
    error_example(
        "Already escalated",
        409,
        "already_escalated",
        "This decision was already escalated; the supervisor's decision is final.",
        ["L-8.1"],
    ),
    NOT_SIGNED_IN,
]

ESCALATE_ORDER = [
    request_example(
        "Contest a denied cancellation",
        {
            "subject": "cancellation_denied",
            "statement": "I asked two minutes after ordering and nothing had been cooked.",
        },
    ),
    request_example(
        "Contest the fee",
        {"subject": "cancellation_fee", "statement": "The restaurant had not started cooking."},
    ),
]

DECIDE = [
    request_example(
        "Overturn with a new total refund",
        {
            "outcome": "overturned",
            "explanation": "The photo supports the claim.",
            "amount": "12.50",
        },
    ),
    request_example(
        "Uphold", {"outcome": "upheld", "explanation": "The delivery photo shows the full order."}
    ),
    error_example(
        "Not a supervisor",
        403,
        "not_supervisor",
        "Only supervisors decide escalations.",
    ),
]

CHARGEBACK = [
    request_example(
        "Enter a chargeback",
        {"order": 42, "amount": "27.99", "bank_reference": "CB-2026-0042", "reason_code": "13.1"},
    )
]

NOTE = [request_example("With a note", {"note": "Bank letter of 30 Nov attached in the case."})]

SUSPEND = [
    request_example(
        "After a chargeback",
        {
            "reason": "Chargeback on an order delivered with proof.",
            "suspected_fraud": True,
            "chargeback": 7,
        },
    )
]

INCIDENT = [
    request_example(
        "Outage: estimate first",
        {
            "kind": "outage",
            "title": "Payments outage",
            "starts_at": "2026-11-30T12:00:00Z",
            "ends_at": "2026-11-30T12:45:00Z",
            "restaurants": [],
            "dry_run": True,
        },
    )
]

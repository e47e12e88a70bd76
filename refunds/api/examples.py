"""Examples of the refunds API's request bodies and refusals, shown in the schema and
/api/docs/."""

from core.api import KEY_REUSED, NOT_SIGNED_IN, error_example, request_example

SUBMIT = [
    request_example(
        "Missing items (partial claim)",
        {
            "order": 42,
            "reason": "missing_items",
            "items": [{"order_item": 101, "quantity": 1}],
            "description": "No tiramisu in the bag.",
            "preferred_method": "original",
        },
    ),
    request_example(
        "Never delivered, refund as credit",
        {"order": 42, "reason": "not_delivered", "preferred_method": "account_credit"},
    ),
    error_example(
        "Quality claim without a photo",
        400,
        "evidence_required",
        "Quality issues need at least one clear photo and a description of the problem.",
        ["L-5.2"],
    ),
    error_example(
        "Already asked", 409, "request_open", "This order already has a refund request in progress."
    ),
    NOT_SIGNED_IN,
    KEY_REUSED,
]

REPLY = [
    request_example("Answer support", {"body": "The bag was sealed; the tiramisu was not in it."}),
    error_example(
        "Decided", 409, "request_closed", "This request has been decided; you can escalate it."
    ),
]

VERIFY = [request_example("Restaurant's answer", {"note": "Packed: it is on our checklist."})]

APPROVE = [
    request_example("As the buyer preferred", {}),
    request_example("To account credit", {"method": "account_credit"}),
]

PARTIALLY_APPROVE = [
    request_example(
        "One item of two",
        {"amount": "6.00", "method": "original", "explanation": "Refunding the missing tiramisu."},
    )
]

DENY = [
    request_example(
        "Denied with the reason",
        {"explanation": "The driver's photo shows the tiramisu in the bag."},
    )
]

QUESTION = [request_example("Ask for a photo", {"question": "A photo of the bag, please?"})]

OFFER_CREDIT = [
    request_example(
        "Credit for a minor issue",
        {"amount": "4.00", "explanation": "A credit for the lukewarm fries."},
    )
]

REPLACEMENT = [
    request_example("Send it again", {"explanation": "A fresh tiramisu is on its way to you."})
]

DEDUCTION_DISPUTE = [
    request_example("Contest a deduction", {"note": "The courier signed for a full bag."})
]

"""Examples of the orders API's request bodies and refusals, shown in the schema and /api/docs/."""

from core.api import KEY_REUSED, NOT_SIGNED_IN, error_example, request_example
from disputes.guards import SUSPENDED_DETAIL

PLACE_ORDER = [
    request_example(
        "Delivery",
        {
            "restaurant": 1,
            "items": [{"menu_item": 3, "quantity": 2}, {"menu_item": 5, "quantity": 1}],
            "fulfillment": "delivery",
            "delivery_address": "7 Harbour Road",
        },
    ),
    request_example(
        "Pickup with a discount code and credit",
        {
            "restaurant": 1,
            "items": [{"menu_item": 3, "quantity": 1}],
            "fulfillment": "pickup",
            "discount_code": "WELCOME5",
            "use_credit": True,
        },
    ),
    error_example(
        "Dish unavailable", 400, "item_unavailable", "Lemonade is not available right now."
    ),
    error_example(
        "Suspended buyer",
        403,
        "account_suspended",
        SUSPENDED_DETAIL,
        ["L-8.2"],
    ),
    NOT_SIGNED_IN,
    KEY_REUSED,
]

CANCEL_ORDER = [
    request_example("Cancel at the quoted fee", {"quote": "4.20"}),
    request_example("Cancel before the restaurant accepts (free)", {}),
    error_example(
        "Window passed",
        409,
        "window_passed",
        "The restaurant's 5-minute cancellation window has passed.",
        ["K-B1"],
    ),
    NOT_SIGNED_IN,
]

SELLER_CANCEL = [
    request_example(
        "Out of an ingredient",
        {"reason": "item_unavailable", "explanation": "We ran out of mozzarella, sorry."},
    ),
    error_example(
        "Finished order",
        409,
        "not_cancellable",
        "This order can no longer be cancelled by the restaurant.",
    ),
]

SELLER_DELAY = [request_example("Stuck in traffic", {"delay_cause": "traffic"})]

SELLER_DENY = [
    request_example("Already cooking", {"reason": "Your pizza is already in the oven."}),
    error_example(
        "No request waiting",
        409,
        "no_cancellation_request",
        "Order #42 has no cancellation request waiting (it is accepted).",
    ),
]

SELLER_ACTION = [
    error_example(
        "Not allowed from this state",
        409,
        "transition_not_allowed",
        "Cannot accept an order that is Out for delivery.",
    ),
    error_example(
        "Not a partner", 403, "not_a_partner", "Only restaurant partners may use the seller API."
    ),
]

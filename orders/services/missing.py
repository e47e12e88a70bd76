"""Non-delivery (L-6.2, D-5): the buyer reports a delivery missing, the restaurant or support
locates it, or the platform gives it up after the pinned version's `locate_minutes` and refunds
it in full; support may place a replacement instead. A `missing_order` case (K-OV) is open from
the report until whichever of these resolves it."""

import datetime as dt

from django.db import transaction
from django.utils import timezone
from django_fsm import has_transition_perm

from core.display import money_text, when_text
from core.errors import DomainError
from core.fsm import apply_transition
from core.money import ZERO
from core.roles import User
from core.services import notify, notify_restaurant
from disputes.guards import buyer_must_not_be_suspended
from disputes.models import Intervention
from disputes.services.interventions import intervention_open, intervention_resolve_for_order
from orders import policy
from orders.events import actor_role, by_whom, order_event_record, order_step, stepping_in
from orders.lock_objects import order_for_update, order_for_update_skip_locked
from orders.models import Order, OrderEvent, is_support
from orders.selectors import missing_report_facts, order_missing_give_up_at
from orders.services.placement import order_place_replacement
from refunds.models import RestaurantLedgerEntry
from refunds.selectors import paid_facts, restaurant_ledger_entries_for_order
from refunds.services.execution import refund_order
from refunds.services.ledger import restaurant_record_sale

MISSING_REFUND_KEY = "missing:{}"


@transaction.atomic
def order_report_missing(*, order_id: int, actor: User) -> Order:
    """The buyer says the delivery never came (L-6.2): the order goes `missing`, a
    `missing_order` case opens for support (K-OV) and the restaurant is asked to locate it
    before the pinned version's `locate_minutes` pass. Allowed out for delivery, or delivered
    within the L-5.1 delivery window: then the delivery mark is withdrawn (`Order.report_missing`)
    and the sale booked at that mark stays, whatever the case ends in: the restaurant handed the
    food over, and a loss after the handover is not its own (L-9, `core.ledgers`). An order
    lost before any delivery mark books its sale only if located. Support may report for a
    buyer.

    Takes the order's row lock. Errors, changing nothing: `not_found` (404) for an order that is
    not the actor's; `not_a_delivery`, `not_out_for_delivery`, `report_window_passed` (409, with
    L-6.2 / L-5.1)."""
    order = order_for_update(order_id, buyer=None if is_support(actor) else actor)
    buyer_must_not_be_suspended(actor)
    now = timezone.now()
    decision = policy.decide_report_missing(missing_report_facts(order), now=now)
    if not decision.allowed:
        raise DomainError(decision.code, decision.detail, clauses=decision.clauses)
    from_status = order.status
    apply_transition(order, order.report_missing, at=now)
    give_up_at = order_missing_give_up_at(order)
    role = OrderEvent.Role.BUYER if order.buyer_id == actor.pk else OrderEvent.Role.SUPPORT
    order_event_record(
        order=order,
        kind=OrderEvent.Kind.TRANSITION,
        name="report_missing",
        from_status=from_status,
        to_status=order.status,
        actor=actor,
        role=role,
        message="Reported missing: the delivery never came. The restaurant is looking for it; "
        f"if it is not found by {when_text(give_up_at)}, the order is refunded in full.",
        clauses=decision.clauses,
        at=now,
    )
    intervention_open(
        order=order,
        kind=Intervention.Kind.MISSING_ORDER,
        summary=f"Reported missing; given up at {when_text(give_up_at)} unless located.",
        now=now,
    )
    notify_restaurant(
        order.restaurant,
        title=f"Order #{order.pk} reported missing",
        body=f"The buyer says order #{order.pk} never came. Find it and mark it delivered by "
        f"{when_text(give_up_at)}, or it is refunded in full (L-6.2).",
        url=f"/seller/orders/{order.pk}/",
    )
    return order


@transaction.atomic
def order_missing_locate(*, order_id: int, actor: User) -> Order:
    """The restaurant (or support, K-OV) found a missing order and it was delivered (L-6.2):
    `missing -> delivered`, the case closed, the buyer told; the sale is booked to the
    restaurant (L-9) unless it already was before the report.

    Takes the order's row lock. Errors, changing nothing: `not_found` (404); `not_missing`
    (409, L-6.2) for an order that is not missing (already located or given up);
    `transition_not_allowed` (409) for an actor who is neither the restaurant's nor support."""
    order = order_for_update(order_id)
    if order.status != Order.Status.MISSING:
        raise DomainError(
            "not_missing",
            f"Order #{order.pk} is {order.get_status_display().lower()}, not missing.",
            clauses=("L-6.2",),
        )
    if not has_transition_perm(order.locate, actor):
        raise DomainError("transition_not_allowed", "Only the restaurant or support locate it.")
    now = timezone.now()
    role = actor_role(order, actor)
    order_step(
        order,
        order.locate,
        actor=actor,
        role=role,
        message=f"Located and delivered{by_whom(role)}.",
        clauses=("L-6.2", *stepping_in(role)),
        at=now,
    )
    if not _sale_booked(order):
        restaurant_record_sale(order)
    intervention_resolve_for_order(
        order=order,
        kind=Intervention.Kind.MISSING_ORDER,
        actor=actor,
        action="Located and delivered",
        now=now,
    )
    notify(
        user=order.buyer,
        title=f"Order #{order.pk} was found",
        body=f"Your missing order #{order.pk} was located and delivered.",
        order=order,
    )
    return order


@transaction.atomic
def order_missing_give_up(*, order_id: int, now: dt.datetime) -> bool:
    """Give up a missing order not located within the pinned `locate_minutes` (L-6.2):
    `undeliverable`, a full refund of what is still refundable (key `missing:<order id>`, back
    where it came from, D-7), the case closed, the buyer told. Returns whether it gave it up.

    Takes the order's row lock with SKIP LOCKED: an order another transaction holds (a locate, a
    second sweep) is skipped, and under the lock the order is re-checked (still missing, due at
    `now`), so two sweeps at once give each order up once. Raises no domain error."""
    order = order_for_update_skip_locked(order_id)
    if order is None or order.status != Order.Status.MISSING:
        return False
    give_up_at = order_missing_give_up_at(order)
    if now < give_up_at:
        return False
    minutes = order.policy_version.locate_minutes
    message = f"Not located within {minutes} minutes of the report: undeliverable."
    _give_up(order, actor=None, role=OrderEvent.Role.POLICY, message=message, now=now)
    refunded = paid_facts(order).refundable
    if refunded > ZERO:
        refund_order(
            order_id=order.pk,
            amount=refunded,
            method="original",
            idempotency_key=MISSING_REFUND_KEY.format(order.pk),
            actor=None,
            role=OrderEvent.Role.POLICY,
            reason="Missing order not located (L-6.2).",
            clauses=("L-6.2",),
        )
    intervention_resolve_for_order(
        order=order,
        kind=Intervention.Kind.MISSING_ORDER,
        actor=None,
        action=f"Given up after {minutes} minutes; refunded {money_text(refunded)} in full",
        now=now,
    )
    notify(
        user=order.buyer,
        title=f"Order #{order.pk} refunded in full",
        body=f"We could not find your order #{order.pk} within {minutes} minutes, so we are "
        f"refunding everything you paid ({money_text(refunded)}) to where it came from (L-6.2).",
        order=order,
    )
    return True


@transaction.atomic
def order_missing_replace(*, order_id: int, actor: User, note: str = "") -> Order:
    """Support sends a free replacement instead of the refund (L-6.2, L-4.1): the missing order
    becomes `undeliverable` without money moving, a new order with the same items is placed at
    no charge (`order_place_replacement`), the case is closed and the buyer told. Returns the
    replacement.

    Takes the original order's row lock. Errors, changing nothing: `not_found` (404);
    `not_missing` (409, L-6.2); `support_only` (409) for an actor who is not support; the
    placement's refusals (e.g. the restaurant is closed)."""
    order = order_for_update(order_id)
    if not is_support(actor):
        raise DomainError("support_only", "Only support can offer a replacement order.")
    if order.status != Order.Status.MISSING:
        raise DomainError(
            "not_missing",
            f"Order #{order.pk} is {order.get_status_display().lower()}, not missing.",
            clauses=("L-6.2",),
        )
    now = timezone.now()
    items = [(line.menu_item, line.quantity) for line in order.items.select_related("menu_item")]
    replacement = order_place_replacement(original=order, items=items, actor=actor, note=note)
    message = f"Not located: support sent replacement order #{replacement.pk} instead."
    _give_up(order, actor=actor, role=OrderEvent.Role.SUPPORT, message=message, now=now)
    intervention_resolve_for_order(
        order=order,
        kind=Intervention.Kind.MISSING_ORDER,
        actor=actor,
        action=f"Replacement order #{replacement.pk} placed",
        now=now,
    )
    notify(
        user=order.buyer,
        title=f"A replacement for order #{order.pk}",
        body=f"We could not find order #{order.pk}. A replacement, order #{replacement.pk}, is "
        "on its way, free of charge (L-6.2).",
        order=replacement,
    )
    return replacement


def _give_up(order: Order, *, actor, role: str, message: str, now: dt.datetime) -> None:
    order_step(
        order, order.give_up, actor=actor, role=role, message=message, clauses=("L-6.2",), at=now
    )


def _sale_booked(order: Order) -> bool:
    return any(
        entry.kind == RestaurantLedgerEntry.Kind.SALE
        for entry in restaurant_ledger_entries_for_order(order)
    )

"""Demo data for `make run`: restaurants with menus, buyers, partners, an agent, a supervisor,
discount codes, credit, and orders along every lifecycle the platform has.

Safe to run again: what exists is left as it is. The time-sensitive cases (a cancellation
window counting down, a cancellation request support takes over in 10 minutes, a delivery
running late and one about to be refunded automatically, a quality window still open, credit
about to expire) are counted from the moment the command runs, and made again by a later run
once the last ones have run out. `--reset` (`make demo-reset`) empties the database and loads
everything again."""

import datetime as dt
import uuid
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from core.roles import SUPERVISOR, SUPPORT_AGENT, sync_role_permissions
from credits.models import CreditGrant, DiscountCode
from credits.services import credit_grant_create
from disputes.services.chargebacks import chargeback_open
from orders.models import MenuItem, Order, OrderEvent, Payment, PolicyVersion, Restaurant
from orders.policy_seed import seed_version_1
from orders.services.cancellation import order_cancel_by_buyer, order_cancel_by_restaurant
from orders.services.lifecycle import order_advance
from orders.services.placement import LineRequest, order_checkout
from orders.services.policy_versions import policy_version_save_draft
from refunds.models import RestaurantLedgerEntry
from refunds.services.decisions import refund_request_approve
from refunds.services.deductions import deduction_dispute_open
from refunds.services.requests import refund_request_submit

PASSWORD = "lojix-demo"

USERS = [
    # username, first name, role
    ("ada", "Ada", "buyer"),
    ("grace", "Grace", "buyer"),
    ("luigi", "Luigi", "partner"),
    ("mei", "Mei", "partner"),
    ("sam", "Sam", "partner"),
    ("agnes", "Agnes", SUPPORT_AGENT),
    ("sofia", "Sofia", SUPERVISOR),
    ("admin", "Admin", "superuser"),
]

RESTAURANTS = [
    {
        "slug": "trattoria-roma",
        "name": "Trattoria Roma",
        "description": "Wood-fired pizza and fresh pasta.",
        "address": "12 Via Appia, Old Town",
        "partner": "luigi",
        "fields": {"cancellation_window_minutes": 5, "cancellation_fee_percent": Decimal("15")},
        "menu": [
            ("Margherita", "12.50", False, ["gluten", "milk"]),
            ("Diavola", "14.00", False, ["gluten", "milk"]),
            ("Tagliatelle al ragù", "13.50", False, ["gluten", "egg"]),
            ("Tiramisu", "6.00", False, ["egg", "milk"]),
            ("Lunch deal: pizza + drink", "9.90", True, ["gluten", "milk"]),
            ("Lemonade", "3.25", False, []),
        ],
    },
    {
        "slug": "golden-dragon",
        "name": "Golden Dragon",
        "description": "Sichuan classics, dine in or take away.",
        "address": "88 Harbour Street",
        "partner": "mei",
        "fields": {
            "cancellation_window_minutes": 8,
            "cancellation_fee_percent": Decimal("10"),
            "offers_dine_in": True,
        },
        "menu": [
            ("Mapo tofu", "11.80", False, ["soy"]),
            ("Kung pao chicken", "13.20", False, ["peanut", "soy"]),
            ("Dan dan noodles", "10.50", False, ["gluten", "peanut", "sesame"]),
            ("Spring rolls", "5.40", False, ["gluten"]),
            ("Jasmine tea", "2.80", False, []),
        ],
    },
    {
        "slug": "sunrise-diner",
        "name": "Sunrise Diner",
        "description": "Breakfast and brunch, 07:00-15:00.",
        "address": "3 Station Road",
        "partner": "sam",
        "fields": {
            "cancellation_window_minutes": 3,
            "cancellation_fee_percent": Decimal("20"),
            "opens_at": dt.time(7, 0),
            "closes_at": dt.time(15, 0),
        },
        "menu": [
            ("Pancake stack", "9.50", False, ["gluten", "egg", "milk"]),
            ("Full breakfast", "12.90", False, ["egg", "gluten"]),
            ("Avocado toast", "8.40", False, ["gluten"]),
            ("Flat white", "3.60", False, ["milk"]),
        ],
    },
]

# Orders for Ada: (restaurant, fulfilment, [(item, qty)], actions taken by the restaurant)
ORDERS = [
    ("trattoria-roma", "delivery", [("Margherita", 2), ("Tiramisu", 1)], []),
    ("trattoria-roma", "pickup", [("Diavola", 1)], ["accept", "start_preparation"]),
    (
        "golden-dragon",
        "pickup",
        [("Dan dan noodles", 2)],
        ["accept", "start_preparation", "mark_ready"],
    ),
    (
        "trattoria-roma",
        "delivery",
        [("Tagliatelle al ragù", 1), ("Lemonade", 2)],
        ["accept", "start_preparation", "mark_ready", "dispatch"],
    ),
    (
        "trattoria-roma",
        "delivery",
        [("Margherita", 1), ("Diavola", 1), ("Tiramisu", 2)],
        ["accept", "start_preparation", "mark_ready", "dispatch", "deliver"],
    ),
    (
        "golden-dragon",
        "pickup",
        [("Kung pao chicken", 1)],
        ["accept", "start_preparation", "mark_ready", "hand_over"],
    ),
    (
        "golden-dragon",
        "dine_in",
        [("Mapo tofu", 1), ("Jasmine tea", 2)],
        ["accept", "start_preparation", "mark_ready", "serve"],
    ),
    (
        "golden-dragon",
        "dine_in",
        [("Kung pao chicken", 2), ("Jasmine tea", 2)],
        ["accept", "start_preparation", "mark_ready", "serve", "close"],
    ),
]

# Ada's cancellations (JOURNEYS buyer 2 and 3, partner 2 and 3): (restaurant, fulfilment, lines,
# actions by the restaurant first, then how the order is cancelled)
CANCELLATIONS = [
    # Cancelled by Ada before the restaurant accepted: free, full refund.
    ("trattoria-roma", "delivery", [("Diavola", 1), ("Lemonade", 1)], [], "buyer"),
    # Trattoria Roma cancelled: an item ran out; full refund and a goodwill credit.
    ("trattoria-roma", "delivery", [("Tiramisu", 2), ("Margherita", 1)], ["accept"], "restaurant"),
]
DELIVERED = ["accept", "start_preparation", "mark_ready", "dispatch", "deliver"]
# Minutes after placement at which a demo order's steps happened (a 20-minute kitchen and a
# 25-minute ride, the restaurants' defaults), so a case moved back in time reads like a real one.
STEP_MINUTES = {
    "placed_at": 0,
    "accepted_at": 2,
    "preparation_started_at": 3,
    "ready_at": 22,
    "dispatched_at": 24,
    "delivered_at": 50,
    "picked_up_at": 25,
    "served_at": 25,
    "closed_at": 60,
}
STEP_STATUS = {
    "placed": "placed_at",
    "accepted": "accepted_at",
    "preparing": "preparation_started_at",
    "ready": "ready_at",
    "out_for_delivery": "dispatched_at",
    "delivered": "delivered_at",
}
# A countdown with less than this left is made again by the next run.
COUNTDOWN_MIN_LEFT = dt.timedelta(minutes=2)
RESTAURANT_EXPLANATION = (
    "We are so sorry: the tiramisu ran out a minute after you ordered. Your money is on its way "
    "back, with a little credit for next time."
)


class Command(BaseCommand):
    help = (
        "Load demo data (safe to run again: existing demo data is left as it is, and the "
        "time-sensitive cases are made again once they have run out). --reset empties the "
        "database first and loads everything again."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Delete every row of the database (flush), then load the demo again.",
        )
        parser.add_argument(
            "--noinput",
            "--no-input",
            action="store_false",
            dest="interactive",
            help="With --reset, do not ask for confirmation.",
        )

    def handle(self, *args, reset=False, interactive=True, **options):
        if reset:
            self._reset(interactive)
        with transaction.atomic():
            self._load(timezone.now())
        self.stdout.write(self._logins())

    def _reset(self, interactive: bool) -> None:
        """Flush every table (the demo's database holds only demo data), then put back what the
        migrations seed: policy version 1 (the roles are synced by `_load`)."""
        if interactive:
            answer = input("This deletes every row in the database. Type 'yes' to go on: ")
            if answer.strip().lower() != "yes":
                raise CommandError("Reset cancelled; nothing was deleted.")
        call_command("flush", interactive=False, verbosity=0)
        seed_version_1(PolicyVersion)
        self.stdout.write("Database emptied; loading the demo again.")

    def _load(self, now: dt.datetime) -> None:
        sync_role_permissions()
        users = {username: self._user(username, name, role) for username, name, role in USERS}
        restaurants = {spec["slug"]: self._restaurant(spec, users) for spec in RESTAURANTS}
        self._codes(users)
        if not Order.objects.filter(buyer=users["ada"]).exists():
            self._credit(users)
            self._orders(users, restaurants)
            self._disputed_deduction(users, restaurants["trattoria-roma"])
            self._policy_draft(users)
        if not self._countdown_running(users["ada"], restaurants["golden-dragon"], now):
            self._live_cases(users, restaurants, now)

    def _user(self, username, first_name, role):
        user, created = get_user_model().objects.get_or_create(
            username=username,
            defaults={"first_name": first_name, "email": f"{username}@lojix.example"},
        )
        if created:
            user.set_password(PASSWORD)
            user.is_staff = role in (SUPPORT_AGENT, SUPERVISOR, "superuser")
            user.is_superuser = role == "superuser"
            user.save()
            if role in (SUPPORT_AGENT, SUPERVISOR):
                user.groups.add(Group.objects.get(name=role))
        return user

    def _restaurant(self, spec, users):
        restaurant, _ = Restaurant.objects.get_or_create(
            slug=spec["slug"],
            defaults={
                "name": spec["name"],
                "description": spec["description"],
                "address": spec["address"],
                **spec["fields"],
            },
        )
        restaurant.members.add(users[spec["partner"]])
        for name, price, promotional, allergens in spec["menu"]:
            MenuItem.objects.get_or_create(
                restaurant=restaurant,
                name=name,
                defaults={
                    "price": Decimal(price),
                    "is_promotional": promotional,
                    "allergens": allergens,
                },
            )
        return restaurant

    def _codes(self, users):
        DiscountCode.objects.get_or_create(
            code="WELCOME5",
            defaults={
                "description": "5.00 off a first order of 15.00 or more, once per account",
                "amount_off": Decimal("5.00"),
                "min_order_subtotal": Decimal("15.00"),
                "is_multi_use": True,
            },
        )
        DiscountCode.objects.get_or_create(
            code="LOJIX10",
            defaults={"description": "10% off, single use", "percent_off": Decimal("10")},
        )
        DiscountCode.objects.get_or_create(
            code="SORRY-GRACE",
            defaults={
                "description": "A resolution code for Grace",
                "amount_off": Decimal("7.50"),
                "issued_to": users["grace"],
            },
        )

    def _credit(self, users):
        now = timezone.now()
        credit_grant_create(
            buyer=users["ada"],
            kind=CreditGrant.Kind.PROMO,
            amount=Decimal("5.00"),
            source=CreditGrant.Source.PROMOTION,
            reason="Welcome to lojix",
            expires_at=now + dt.timedelta(days=30),
        )
        credit_grant_create(
            buyer=users["ada"],
            kind=CreditGrant.Kind.ACCOUNT,
            amount=Decimal("10.00"),
            source=CreditGrant.Source.AGENT,
            reason="Goodwill from support",
            granted_by=users["agnes"],
        )

    def _orders(self, users, restaurants):
        ada = users["ada"]
        orders = [
            self._order(ada, restaurants[slug], fulfillment, lines, actions)
            for slug, fulfillment, lines, actions in ORDERS
        ]
        self._refund_requests(ada, orders)
        self._chargeback(users["grace"], restaurants["trattoria-roma"])
        for slug, fulfillment, lines, actions, cancelled_by in CANCELLATIONS:
            order = self._order(ada, restaurants[slug], fulfillment, lines, actions)
            if cancelled_by == "buyer":
                order_cancel_by_buyer(order_id=order.pk, actor=ada)
            else:
                order_cancel_by_restaurant(
                    order_id=order.pk,
                    actor=order.restaurant.members.first(),
                    reason="item_unavailable",
                    explanation=RESTAURANT_EXPLANATION,
                )

    def _chargeback(self, grace, restaurant):
        """JOURNEYS support 4: a chargeback from Grace's bank on a delivered order, received
        through the processor, for a supervisor to answer with the evidence bundle (L-8.2)."""
        order = self._order(
            grace,
            restaurant,
            "delivery",
            [("Margherita", 1)],
            ["accept", "start_preparation", "mark_ready", "dispatch", "deliver"],
        )
        chargeback_open(
            order_id=order.pk,
            amount=order.amount_charged,
            bank_reference="DEMO-CB-0001",
            reason_code="13.1 merchandise not received",
            actor=None,
        )

    def _refund_requests(self, ada, orders):
        """JOURNEYS buyer 4 and support 1-2: a missing-items claim waiting in the review queue,
        and a claim the policy refused at once (L-3.3)."""
        delivered = next(o for o in orders if o.status == Order.Status.DELIVERED)
        tiramisu = delivered.items.get(name="Tiramisu")
        refund_request_submit(
            order_id=delivered.pk,
            actor=ada,
            reason="missing_items",
            items=[(tiramisu.pk, 1)],
            description="One of the two tiramisu was not in the bag.",
        )
        closed = next(o for o in orders if o.status == Order.Status.CLOSED)
        refund_request_submit(order_id=closed.pk, actor=ada, reason="taste_preference")

    def _disputed_deduction(self, users, restaurant):
        """JOURNEYS partner 5 and L-9: Grace's missing lemonade refunded as account credit and
        deducted from Trattoria Roma, which disputes it; Sofia (supervisor) decides in admin."""
        grace, luigi = users["grace"], users["luigi"]
        order = self._order(
            grace,
            restaurant,
            "delivery",
            [("Diavola", 1), ("Lemonade", 1)],
            ["accept", "start_preparation", "mark_ready", "dispatch", "deliver"],
        )
        claim = refund_request_submit(
            order_id=order.pk,
            actor=grace,
            reason="missing_items",
            items=[(order.items.get(name="Lemonade").pk, 1)],
            preferred_method="account_credit",
            description="No lemonade in the bag.",
        )
        refund_request_approve(request_id=claim.pk, actor=users["agnes"])
        deduction = RestaurantLedgerEntry.objects.get(order=order, kind="refund_deduction")
        deduction_dispute_open(
            entry_id=deduction.pk,
            actor=luigi,
            note="The courier's photo at the door shows the lemonade on top of the pizza box.",
            now=timezone.now(),
        )

    def _policy_draft(self, users):
        """K-UP: a draft by Sofia waiting for a second supervisor's approval (admin)."""
        policy_version_save_draft(
            version=PolicyVersion(
                label="2",
                text=PolicyVersion.objects.get(label="1").text,
                summary_of_changes="Late deliveries: a partial refund of 60 % from 30 minutes.",
                late_partial_percent=Decimal("60"),
            ),
            actor=users["sofia"],
        )

    # -- the time-sensitive cases, counted from now --------------------------------------------

    def _countdown_running(self, ada, restaurant, now: dt.datetime) -> bool:
        """Whether Ada's accepted order at this restaurant still has its cancellation window
        open for a while (K-B1): the live cases made with it have not run out."""
        window = dt.timedelta(minutes=restaurant.cancellation_window_minutes)
        return Order.objects.filter(
            buyer=ada,
            restaurant=restaurant,
            status=Order.Status.ACCEPTED,
            accepted_at__gt=now - window + COUNTDOWN_MIN_LEFT,
        ).exists()

    def _live_cases(self, users, restaurants, now: dt.datetime) -> None:
        """JOURNEYS buyer 3-5 and 7, partner 1 and 3, at the moment the demo starts."""
        ada = users["ada"]
        dragon, roma = restaurants["golden-dragon"], restaurants["trattoria-roma"]
        # K-B1, L-2.1: accepted now; the cancellation panel counts Golden Dragon's 8 minutes.
        self._order(ada, dragon, "delivery", [("Mapo tofu", 1), ("Spring rolls", 2)], ["accept"])
        # K-OV: Ada asked to cancel now; support takes it over if Mei does not answer in time.
        asked = self._order(
            ada, dragon, "delivery", [("Kung pao chicken", 1), ("Jasmine tea", 1)], ["accept"]
        )
        order_cancel_by_buyer(order_id=asked.pk, actor=ada)
        # L-5.1: delivered 15 minutes ago; quality problems can be reported for 45 more.
        fresh = self._order(ada, roma, "delivery", [("Diavola", 1), ("Tiramisu", 1)], DELIVERED)
        self._retime(fresh, placed_at=now - dt.timedelta(minutes=STEP_MINUTES["delivered_at"] + 15))
        # L-6.1: on its way and 45 minutes late (a partial refund on request), and one 115
        # minutes late, which the late sweep refunds in full on its own within minutes.
        for minutes_late in (45, 115):
            late = self._order(
                ada, roma, "delivery", [("Margherita", 1), ("Lemonade", 1)], DELIVERED[:-1]
            )
            self._retime(late, placed_at=self._placed_for_lateness(late, minutes_late, now))
        # L-7.1: promotional credit that expires in three days.
        credit_grant_create(
            buyer=ada,
            kind=CreditGrant.Kind.PROMO,
            amount=Decimal("3.00"),
            source=CreditGrant.Source.PROMOTION,
            reason="Weekend treat: use it before it expires",
            expires_at=now + dt.timedelta(days=3),
        )

    @staticmethod
    def _placed_for_lateness(order: Order, minutes_late: int, now: dt.datetime) -> dt.datetime:
        """When the order must have been placed for its delivery estimate to have passed
        `minutes_late` minutes ago, its steps spaced as STEP_MINUTES."""
        estimate_after = order.estimated_delivery_at - order.accepted_at
        accepted = dt.timedelta(minutes=STEP_MINUTES["accepted_at"])
        return now - dt.timedelta(minutes=minutes_late) - estimate_after - accepted

    @staticmethod
    def _retime(order: Order, *, placed_at: dt.datetime) -> None:
        """Move an order made just now back in time: placed at `placed_at`, each step it went
        through STEP_MINUTES later, its estimates and timeline with them (demo data only: a
        real order's times are what happened)."""
        moved = {}
        for field, minutes in STEP_MINUTES.items():
            if getattr(order, field) is not None:
                moved[field] = placed_at + dt.timedelta(minutes=minutes)
        delta = moved["accepted_at"] - order.accepted_at if "accepted_at" in moved else None
        if delta is not None:
            for field in ("estimated_ready_at", "estimated_delivery_at"):
                if getattr(order, field) is not None:
                    moved[field] = getattr(order, field) + delta
        Order.objects.filter(pk=order.pk).update(**moved)
        for event in OrderEvent.objects.filter(order=order):
            field = STEP_STATUS.get(event.to_status)
            event.created_at = moved.get(field, placed_at)
            event.save(update_fields=["created_at"])
        Payment.objects.filter(order=order).update(created_at=placed_at)

    def _order(self, buyer, restaurant, fulfillment, lines, actions) -> Order:
        """Place an order through the service and take the restaurant's actions on it."""
        menu = {item.name: item for item in restaurant.menu.all()}
        order = order_checkout(
            checkout_key=f"checkout:{uuid.uuid4()}",
            buyer=buyer,
            restaurant=restaurant,
            lines=[LineRequest(menu[name].pk, quantity) for name, quantity in lines],
            fulfillment=fulfillment,
            delivery_address="7 Harbour Road, Flat 2",
        )
        partner = restaurant.members.first()
        for action in actions:
            order = order_advance(order_id=order.pk, action=action, actor=partner)
        return order

    def _logins(self) -> str:
        return "\n".join(
            [
                "",
                f"Demo logins (password for all: {PASSWORD})",
                "  buyers:      ada (orders in every state, credit, refund requests), grace",
                "  disputes:    luigi disputes a deduction (sofia decides); policy version 2 is a"
                " draft by sofia (another supervisor, e.g. admin, approves it)",
                "  restaurants: luigi (Trattoria Roma), mei (Golden Dragon), sam (Sunrise Diner)",
                "  support:     agnes (agent), sofia (supervisor), admin (superuser)",
                "  discount codes: WELCOME5, LOJIX10",
                "  counted from now: ada's Golden Dragon order can be cancelled for 8 minutes;"
                " her cancellation request goes to support if mei does not answer in 10; one"
                " delivery is 45 minutes late and one is refunded automatically at 2 hours;"
                " a delivered order's quality window is open; 3.00 of credit expires in 3 days."
                " `make demo-reset` starts them again.",
                "",
            ]
        )

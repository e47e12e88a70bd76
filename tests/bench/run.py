"""`make bench` (D-11, "Performance, measured"): every figure is a ratio against a baseline
measured in the same run, so it means the same on a laptop and on a CI runner.

    python -m tests.bench.run            # DATABASE_URL as in config/settings/test.py

It creates its own database (`bench_<name>`, migrated from scratch), drops it at the end, and
exits 1 when a figure crosses its threshold. A new benchmark is one function decorated with
`@benchmark` that returns `Figure`s; they run in the order they are defined.
"""

# ruff: noqa: E402  (Django is set up before the project's modules are imported)
import datetime as dt
import gc
import os
import statistics
import sys
import time
import tracemalloc
import uuid
from decimal import Decimal

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django

django.setup()

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from core.ledgers import ledger_violations
from credits.models import CreditGrant, CreditTransaction
from credits.services import credit_grant_create
from credits.tasks import expire_credits
from orders.models import Order
from orders.services.lifecycle import order_advance
from orders.services.placement import LineRequest, order_checkout
from tests.bench.figures import (
    BENCHMARKS,
    Figure,
    all_equal,
    benchmark,
    check,
    note,
    ratio_at_least,
    ratio_at_most,
    timed,
)
from tests.bench.late_sweep import LATE_SWEEP_BENCHMARKS
from tests.bench.urls import MINIMAL_PATH
from tests.factories import DiscountCodeFactory, MenuItemFactory, RestaurantFactory, UserFactory

# -- thresholds ----------------------------------------------------------------------------
# Generous on purpose: the figures are ratios, but a shared 2-CPU runner still adds noise of
# tens of percent, so a threshold only trips on a change of kind, not of degree.

# The sweep works in batches of 500: one transaction locks a batch (SKIP LOCKED, so a
# concurrent run takes the next one), bulk-inserts the expiry rows and zeroes the grants, a few
# statements per batch; one set-based UPDATE + INSERT does the same rows in a single statement.
# ~3-4x measured with the database on localhost. 20x means the sweep went back to per-grant
# work (an extra query or a transaction per grant) or lost its index.
SWEEP_VS_RAW_MAX = 20.0
# Peak Python memory of the sweep over 4x the rows: ~1.0 measured with batches of 500 (it was
# ~1.3 when the sweep listed every due id first). A sweep that held every due grant at once
# would grow several-fold.
SWEEP_MEMORY_GROWTH_MAX = 2.0
# Requests per second as a fraction of those of a bare HttpResponse("ok") through the same
# middleware (~0.2 ms a request). A page does 4-8 queries and renders a template: measured
# ~0.02 for the buyer's list, detail and API, ~0.005 for the seller queue, which renders a
# card per open order. The floors are ~1/4 of that: only an N+1, an unindexed filter or a
# several-fold slower template crosses them, not a loaded machine or a slower database.
PAGE_VS_MINIMAL_MIN = 0.005
QUEUE_VS_MINIMAL_MIN = 0.0015

SWEEP_SIZES = (1000, 4000)
THROUGHPUT_WARMUP = 10
THROUGHPUT_REQUESTS = 100  # of each page, after the warm-up
BASELINE_PER_REQUEST = 3  # minimal-view requests after each page request
QUERY_COUNT_SCALES = (1, 10, 100)

User = get_user_model()


# -- data, set up through services and factories -------------------------------------------

_counter = iter(range(1, 10**9))


def _unique(prefix: str) -> str:
    return f"{prefix}{next(_counter)}"


def _expired_grants(n: int) -> None:
    """`n` promotional grants past their expiry, with their `grant` ledger rows, over 50
    buyers: what `credit_grant_create` writes, in two bulk statements."""
    buyers = User.objects.bulk_create(User(username=_unique("sweep-")) for _ in range(50))
    past = timezone.now() - dt.timedelta(days=1)
    amount = Decimal("5.00")
    grants = CreditGrant.objects.bulk_create(
        CreditGrant(
            buyer=buyers[i % len(buyers)],
            kind=CreditGrant.Kind.PROMO,
            amount=amount,
            remaining=amount,
            expires_at=past - dt.timedelta(seconds=i),
            source=CreditGrant.Source.PROMOTION,
            reason="Bench promotion",
        )
        for i in range(n)
    )
    CreditTransaction.objects.bulk_create(
        CreditTransaction(
            grant=grant, buyer_id=grant.buyer_id, kind=CreditTransaction.Kind.GRANT, amount=amount
        )
        for grant in grants
    )


def _raw_expire() -> int:
    """The baseline: the same expiry as one set-based statement, ledger rows included."""
    grant_table = CreditGrant._meta.db_table
    ledger_table = CreditTransaction._meta.db_table
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH due AS (
                SELECT id, remaining FROM {grant_table}
                WHERE kind = 'promo' AND expires_at <= %s AND remaining > 0
                FOR UPDATE
            ), expired AS (
                UPDATE {grant_table} AS g SET remaining = 0 FROM due WHERE g.id = due.id
                RETURNING g.id, g.buyer_id, due.remaining, g.expires_at
            )
            INSERT INTO {ledger_table} (grant_id, buyer_id, kind, amount, note, created_at)
            SELECT id, buyer_id, 'expiry', -remaining,
                'Expired ' || to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')
                    || ' UTC (L-7.1)',
                %s
            FROM expired
            """,
            [now, now],
        )
        return cursor.rowcount


class Shop:
    """A restaurant with its partner and a menu, and a buyer placing orders there."""

    def __init__(self):
        self.partner = UserFactory(username=_unique("partner-"))
        self.restaurant = RestaurantFactory(members=[self.partner])
        self.pizza = MenuItemFactory(restaurant=self.restaurant, price=Decimal("12.50"))
        self.dessert = MenuItemFactory(restaurant=self.restaurant, price=Decimal("6.00"))
        self.buyer = UserFactory(username=_unique("buyer-"))
        self.orders: list[Order] = []

    def place(self, *actions: str) -> Order:
        """An order with a single-use code and promotional credit, taken through `actions`;
        a delivered one also earns late-delivery account credit, so every page grows."""
        code = DiscountCodeFactory(code=_unique("BENCH"), amount_off=Decimal("1.00"))
        credit_grant_create(
            buyer=self.buyer,
            kind=CreditGrant.Kind.PROMO,
            amount=Decimal("2.00"),
            source=CreditGrant.Source.PROMOTION,
            reason="Bench promotion",
            expires_at=timezone.now() + dt.timedelta(days=30),
        )
        order = order_checkout(
            checkout_key=f"checkout:{uuid.uuid4()}",
            buyer=self.buyer,
            restaurant=self.restaurant,
            lines=[LineRequest(self.pizza.pk, 1), LineRequest(self.dessert.pk, 2)],
            fulfillment=Order.Fulfillment.DELIVERY,
            delivery_address="7 Harbour Road",
            discount_code=code.code,
            use_credit=True,
        )
        for action in actions:
            order = order_advance(order_id=order.pk, action=action, actor=self.partner)
        if order.status == Order.Status.DELIVERED:
            credit_grant_create(
                buyer=self.buyer,
                kind=CreditGrant.Kind.ACCOUNT,
                amount=Decimal("3.00"),
                source=CreditGrant.Source.LATE_DELIVERY,
                reason="Late delivery",
                order=order,
            )
        self.orders.append(order)
        return order

    # The open states of the seller's queue, then delivered.
    OPEN = [
        (),
        ("accept",),
        ("accept", "start_preparation"),
        ("accept", "start_preparation", "mark_ready"),
        ("accept", "start_preparation", "mark_ready", "dispatch"),
    ]
    DELIVERED = ("accept", "start_preparation", "mark_ready", "dispatch", "deliver")

    def place_many(self, n: int, lifecycles=(*OPEN, DELIVERED)) -> None:
        """`n` more orders, taking each through the next of `lifecycles` in turn."""
        for _ in range(n):
            self.place(*lifecycles[len(self.orders) % len(lifecycles)])

    def client(self, user) -> Client:
        client = Client()
        client.force_login(user)
        return client


# -- the benchmarks ------------------------------------------------------------------------


@benchmark
def sweep_vs_raw_sql() -> list[Figure]:
    """expire_credits over N due grants vs one UPDATE + INSERT of N fresh, identical grants."""
    _expired_grants(50)  # warm-up: connection, query compilation, imports
    expire_credits()
    figures = []
    for n in SWEEP_SIZES:
        _expired_grants(n)
        sweep_seconds, swept = timed(expire_credits)
        check(swept == n, f"the sweep expired {swept} of {n} grants")
        _expired_grants(n)
        raw_seconds, updated = timed(_raw_expire)
        check(updated == n, f"the raw SQL expired {updated} of {n} grants")
        note(f"N={n}: sweep {sweep_seconds:.3f} s, raw SQL {raw_seconds:.3f} s")
        figures.append(
            ratio_at_most(f"sweep / raw SQL, N={n}", sweep_seconds / raw_seconds, SWEEP_VS_RAW_MAX)
        )
    return figures


@benchmark
def sweep_memory() -> list[Figure]:
    """Peak traced memory of expire_credits at the largest N over the smallest."""
    peaks = []
    for n in (50, SWEEP_SIZES[0], SWEEP_SIZES[-1]):  # 50: warm-up, whatever a first run caches
        _expired_grants(n)
        gc.collect()
        tracemalloc.start()
        swept = expire_credits()
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        check(swept == n, f"the sweep expired {swept} of {n} grants")
        note(f"N={n}: peak {peaks[-1] / 1024:.0f} KiB")
    small, large = SWEEP_SIZES[0], SWEEP_SIZES[-1]
    return [
        ratio_at_most(
            f"sweep peak memory N={large} / N={small}", peaks[2] / peaks[1], SWEEP_MEMORY_GROWTH_MAX
        )
    ]


def _requests_per_second(client: Client, url: str, baseline_url: str) -> tuple[float, float]:
    """Requests per second of `url` and of `baseline_url`, from each one's median request time.
    The requests are interleaved (one of `url`, then BASELINE_PER_REQUEST of the baseline) so a
    load that comes and goes on the machine slows both alike; the median keeps a garbage
    collection or a descheduling from being charged to whichever request it fell on."""
    for target in (url, baseline_url):
        for _ in range(THROUGHPUT_WARMUP):
            response = client.get(target)
            check(response.status_code == 200, f"GET {target} answered {response.status_code}")
    times = {url: [], baseline_url: []}
    for _ in range(THROUGHPUT_REQUESTS):
        for target in (url, *[baseline_url] * BASELINE_PER_REQUEST):
            start = time.perf_counter()
            client.get(target)
            times[target].append(time.perf_counter() - start)
    return 1 / statistics.median(times[url]), 1 / statistics.median(times[baseline_url])


@benchmark
def throughput_vs_minimal_view() -> list[Figure]:
    """Requests per second of pages and API through django.test.Client, over those of a bare
    HttpResponse("ok") through the same middleware, same client, same logged-in session."""
    shop = Shop()
    shop.place_many(30, Shop.OPEN)  # placed, accepted, preparing, ready, out for delivery
    shop.place_many(20, [Shop.DELIVERED])
    delivered = shop.orders[-1]
    buyer, partner = shop.client(shop.buyer), shop.client(shop.partner)
    targets = [
        ("/orders/ (50 orders)", buyer, reverse("orders:list"), PAGE_VS_MINIMAL_MIN),
        ("order detail", buyer, reverse("orders:detail", args=[delivered.pk]), PAGE_VS_MINIMAL_MIN),
        ("GET /api/orders/ (50 orders)", buyer, "/api/orders/", PAGE_VS_MINIMAL_MIN),
        ("/seller/ (30 open orders)", partner, reverse("seller:queue"), QUEUE_VS_MINIMAL_MIN),
    ]
    figures = []
    for name, client, url, floor in targets:
        rps, minimal = _requests_per_second(client, url, MINIMAL_PATH)
        note(f"{name}: {rps:.0f} requests/s (minimal view {minimal:.0f})")
        figures.append(ratio_at_least(f"rps {name} / minimal view", rps / minimal, floor))
    return figures


def _query_count(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    check(response.status_code == 200, f"GET {url} answered {response.status_code}")
    return len(queries)


@benchmark
def query_counts_constant() -> list[Figure]:
    """Queries per page with the buyer's orders (and their grants, codes, events) at each scale."""
    shop = Shop()
    first = shop.place()
    buyer, partner = shop.client(shop.buyer), shop.client(shop.partner)
    pages = [
        ("/orders/", buyer, reverse("orders:list")),
        ("GET /api/orders/", buyer, "/api/orders/"),
        ("order detail", buyer, reverse("orders:detail", args=[first.pk])),
        ("/wallet/", buyer, reverse("credits:wallet")),
        ("/seller/", partner, reverse("seller:queue")),
    ]
    counts = {name: [] for name, _, _ in pages}
    for scale in QUERY_COUNT_SCALES:
        shop.place_many(scale - len(shop.orders))
        for name, client, url in pages:
            _query_count(client, url)  # the session's first use is not the page's cost
            counts[name].append(_query_count(client, url))
    return [all_equal(f"queries {name}", counts[name], QUERY_COUNT_SCALES) for name, _, _ in pages]


@benchmark
def ledgers_still_balance() -> list[Figure]:
    """Not a speed: the benchmarks' own writes (sweep and raw SQL alike) keep D-7's ledgers."""
    problems = ledger_violations()
    for problem in problems[:5]:
        print(f"  ledger: {problem}", file=sys.stderr)
    return [Figure("ledger violations after the run", str(len(problems)), "= 0", not problems)]


# -- the runner ----------------------------------------------------------------------------


def run() -> list[Figure]:
    figures = []
    for function in [*BENCHMARKS, *LATE_SWEEP_BENCHMARKS]:
        seconds, produced = timed(function)
        print(f"  {function.__name__} ({seconds:.1f} s)", file=sys.stderr)
        figures += produced
    return figures


def main() -> int:
    settings_dict = connection.settings_dict
    settings_dict["TEST"]["NAME"] = f"bench_{settings_dict['NAME']}"
    started = time.perf_counter()
    print(f"Creating {settings_dict['TEST']['NAME']} ...", file=sys.stderr)
    old_name = connection.creation.create_test_db(
        verbosity=0, autoclobber=True, keepdb=False, serialize=False
    )
    try:
        with override_settings(
            ROOT_URLCONF="tests.bench.urls", ALLOWED_HOSTS=["testserver"], DEBUG=False
        ):
            figures = run()
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0, keepdb=False)
    width = max(len(figure.name) for figure in figures)
    print(f"{'figure':<{width}}  {'value':>15}  {'threshold':<20}  result")
    for figure in figures:
        result = "ok" if figure.ok else "FAIL"
        print(f"{figure.name:<{width}}  {figure.value:>15}  {figure.threshold:<20}  {result}")
    failed = [figure.name for figure in figures if not figure.ok]
    elapsed = time.perf_counter() - started
    if failed:
        print(f"Thresholds crossed ({len(failed)}): {', '.join(failed)}  [{elapsed:.0f} s]")
        return 1
    print(f"Every threshold held ({len(figures)} figures)  [{elapsed:.0f} s]")
    return 0


if __name__ == "__main__":
    sys.exit(main())

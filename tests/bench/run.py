"""`make bench` (D-11, "Performance, measured"): every figure is a ratio against a baseline
measured in the same run, so it means the same on a laptop and on a CI runner.

    python -m tests.bench.run            # DATABASE_URL as in config/settings/test.py
    python -m tests.bench.run gunicorn   # only the benchmarks whose name has one of the words

It creates its own database (`bench_<name>`, migrated from scratch), drops it at the end, and
exits 1 when a figure crosses its threshold. A new benchmark is one function decorated with
`@benchmark` that returns `Figure`s; they run in the order they are defined.
"""

# ruff: noqa: E402  (Django is set up before the project's modules are imported)
import datetime as dt
import gc
import os
import sys
import time
import tracemalloc
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
from credits.tasks import expire_credits
from tests.bench.data import Shop, unique
from tests.bench.figures import (
    BENCHMARKS,
    Figure,
    all_equal,
    benchmark,
    check,
    note,
    ratio_at_most,
    timed,
)
from tests.bench.late_sweep import LATE_SWEEP_BENCHMARKS
from tests.bench.server import SERVER_BENCHMARKS

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
SWEEP_SIZES = (1000, 4000)
QUERY_COUNT_SCALES = (1, 10, 100)

User = get_user_model()


# -- data, set up through services and factories -------------------------------------------


def _expired_grants(n: int) -> None:
    """`n` promotional grants past their expiry, with their `grant` ledger rows, over 50
    buyers: what `credit_grant_create` writes, in two bulk statements."""
    buyers = User.objects.bulk_create(User(username=unique("sweep-")) for _ in range(50))
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


def ledgers_still_balance() -> list[Figure]:
    """Not a speed: the benchmarks' own writes (sweep and raw SQL alike) keep D-7's ledgers."""
    problems = ledger_violations()
    for problem in problems[:5]:
        print(f"  ledger: {problem}", file=sys.stderr)
    return [Figure("ledger violations after the run", str(len(problems)), "= 0", not problems)]


# -- the runner ----------------------------------------------------------------------------


def run(only: list[str]) -> list[Figure]:
    """Every benchmark in order, or those whose name contains a word of `only`; the ledger
    check after the benchmarks' own writes; the late sweep's figures last, on their own rows."""

    def chosen(functions):
        return [f for f in functions if not only or any(word in f.__name__ for word in only)]

    figures = []
    for function in [
        *chosen(BENCHMARKS),
        *chosen(SERVER_BENCHMARKS),
        ledgers_still_balance,
        *chosen(LATE_SWEEP_BENCHMARKS),
    ]:
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
        # The in-process figures' test client asks for "testserver".
        with override_settings(ALLOWED_HOSTS=["testserver"], DEBUG=False):
            figures = run(sys.argv[1:])
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0, keepdb=False)
    width = max(len(figure.name) for figure in figures)
    print(f"{'figure':<{width}}  {'value':>15}  {'threshold':<20}  result  target")
    for figure in figures:
        result = "ok" if figure.ok else "FAIL"
        print(
            f"{figure.name:<{width}}  {figure.value:>15}  {figure.threshold:<20}  {result:<6}  "
            f"{figure.target}".rstrip()
        )
    failed = [figure.name for figure in figures if not figure.ok]
    elapsed = time.perf_counter() - started
    if failed:
        print(f"Thresholds crossed ({len(failed)}): {', '.join(failed)}  [{elapsed:.0f} s]")
        return 1
    print(f"Every threshold held ({len(figures)} figures)  [{elapsed:.0f} s]")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Fixtures: users per role, a restaurant with its menu, API clients, and the helpers that set
state up through services. After every test that touched the database the ledgers of D-7 must
balance."""

import datetime as dt
import time
import uuid
from decimal import Decimal

import pytest
import time_machine
from celery.contrib.testing.worker import start_worker
from django.db import connection
from kombu import pools
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from config.celery import app as celery_app
from core.ledgers import ledger_violations
from core.roles import SUPERVISOR, SUPPORT_AGENT, sync_role_permissions
from credits.models import CreditGrant
from credits.services import credit_grant_create
from orders.gateway import ProcessorRecord, SimulatedGateway, get_gateway
from orders.models import Order, PolicyVersion
from orders.policy_seed import seed_version_1
from orders.selectors import policy_clause_texts, policy_clause_texts_forget
from orders.services.lifecycle import order_advance
from orders.services.placement import LineRequest, order_checkout
from refunds.tasks import retry_failed_refunds
from tests.factories import MenuItemFactory, RestaurantFactory, UserFactory
from tests.processes import CeleryProcesses, PrivateRedis, broker_purge


def pytest_runtest_setup(item):
    """A test marked `postgres` fails rather than pass vacuously on another database: the
    SQLite run (`make test-sqlite`) deselects them with `-m "not postgres"`."""
    if item.get_closest_marker("postgres") and connection.vendor != "postgresql":
        pytest.fail(f"{item.nodeid} needs PostgreSQL, not {connection.vendor}", pytrace=False)


@pytest.fixture(autouse=True)
def processor_reset():
    """The simulated processor keeps its records outside the test database, which no rollback
    reaches: wipe them after every test (after the ledgers were checked against them)."""
    yield
    SimulatedGateway.reset()


@pytest.fixture(autouse=True)
def ledgers_balance(request, processor_reset):
    """D-7: the invariants hold after every test that used the database."""
    marker = request.node.get_closest_marker("django_db")
    transactional = (
        "transactional_db" in request.fixturenames
        or "live_server" in request.fixturenames
        or (marker is not None and marker.kwargs.get("transaction", False))
    )
    if transactional:
        # A test that failed with the connection cut (the fault tests cut it on purpose) must
        # not fail every transactional test after it: reconnect rather than reuse it.
        connection.close_if_unusable_or_obsolete()
        request.getfixturevalue("transactional_db")
        sync_role_permissions()
    elif marker is not None or "db" in request.fixturenames:
        request.getfixturevalue("db")
    else:
        yield
        return
    # A transactional test's flush removes what data migrations created. pytest-django runs
    # those tests last, but xdist's work stealing can hand a worker plain tests after them.
    seed_version_1(PolicyVersion)
    yield
    assert ledger_violations() == []


@pytest.fixture(autouse=True)
def policy_clause_texts_cached(request, ledgers_balance):
    """Pages read the clause texts of their "Why?" links from the cache (one query on a miss,
    `orders.selectors.policy_clause_texts`): every test that uses the database starts with them
    cached from its own database, so the query counts pages assert do not depend on which test
    ran before."""
    policy_clause_texts_forget()
    marker = request.node.get_closest_marker("django_db")
    if marker is not None or {"db", "transactional_db", "live_server"} & set(request.fixturenames):
        policy_clause_texts(dt.datetime.now(dt.UTC))


NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)  # a Friday, noon UTC
# CACHES with Redis down (nothing listens on port 1): every cache call raises.
REDIS_DOWN = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
    }
}


@pytest.fixture
def now():
    """Travel to NOW (the clock keeps ticking from there); returns the traveller."""
    with time_machine.travel(NOW) as traveller:
        yield traveller


@pytest.fixture
def buyer(db):
    return UserFactory(username="ada", first_name="Ada")


@pytest.fixture
def other_buyer(db):
    return UserFactory(username="grace", first_name="Grace")


@pytest.fixture
def partner(db):
    return UserFactory(username="luigi", first_name="Luigi")


@pytest.fixture
def agent(db):
    return UserFactory(username="agent", is_staff=True, groups=[SUPPORT_AGENT])


@pytest.fixture
def supervisor(db):
    return UserFactory(username="boss", is_staff=True, groups=[SUPERVISOR])


@pytest.fixture
def restaurant(partner):
    restaurant = RestaurantFactory(name="Trattoria Roma", slug="roma", members=[partner])
    MenuItemFactory(restaurant=restaurant, name="Margherita", price=Decimal("12.50"))
    MenuItemFactory(restaurant=restaurant, name="Tiramisu", price=Decimal("6.00"))
    MenuItemFactory(restaurant=restaurant, name="Lemonade", price=Decimal("3.25"))
    return restaurant


@pytest.fixture
def menu(restaurant):
    """The restaurant's menu items by name."""
    return {item.name: item for item in restaurant.menu.all()}


def place_order(buyer, restaurant, items=None, **kwargs) -> Order:
    """Place an order through the service; `items` maps menu items to quantities."""
    items = items or {restaurant.menu.order_by("pk").first(): 1}
    kwargs.setdefault("fulfillment", Order.Fulfillment.DELIVERY)
    kwargs.setdefault("delivery_address", "7 Harbour Road")
    kwargs.setdefault("checkout_key", f"checkout:{uuid.uuid4()}")
    lines = [LineRequest(item.pk, quantity) for item, quantity in items.items()]
    return order_checkout(buyer=buyer, restaurant=restaurant, lines=lines, **kwargs)


def refunds_processed() -> dict:
    """What the worker does once the deciding transaction has committed (D-7): every card
    refund that is due goes to the processor, as `refunds.tasks.process_refunds` (through the
    outbox) and the beat sweep run it. Returns the count per outcome."""
    return retry_failed_refunds()


def processor_charges() -> list[ProcessorRecord]:
    """Every charge the processor recorded (any status), asked through the gateway interface."""
    return get_gateway().charges_between(
        start=dt.datetime(2000, 1, 1, tzinfo=dt.UTC), end=dt.datetime(9999, 1, 1, tzinfo=dt.UTC)
    )


def processor_refunds() -> list[ProcessorRecord]:
    """Every refund the processor recorded (any status), over all of its charges."""
    gateway = get_gateway()
    return [
        refund
        for charge in processor_charges()
        for refund in gateway.refunds_of(charge_reference=charge.reference)
    ]


def advance(order: Order, *actions: str, actor=None) -> Order:
    """Take an order through lifecycle actions as one of its restaurant's partners."""
    actor = actor or order.restaurant.members.first()
    for action in actions:
        order = order_advance(order_id=order.pk, action=action, actor=actor)
    return order


def give_credit(buyer, amount, *, kind="account", expires_in_days=30, **kwargs) -> CreditGrant:
    expires_at = None
    if kind == CreditGrant.Kind.PROMO:
        expires_at = kwargs.pop("expires_at", None) or (
            dt.datetime.now(dt.UTC) + dt.timedelta(days=expires_in_days)
        )
    return credit_grant_create(
        buyer=buyer,
        kind=kind,
        amount=Decimal(amount),
        source=kwargs.pop("source", CreditGrant.Source.AGENT),
        reason=kwargs.pop("reason", "Test credit"),
        expires_at=expires_at,
        **kwargs,
    )


@pytest.fixture
def other_partner(db):
    """A partner of another restaurant."""
    user = UserFactory(username="marco", first_name="Marco")
    RestaurantFactory(name="Osteria Blu", slug="osteria-blu", members=[user])
    return user


@pytest.fixture
def users(buyer, other_buyer, partner, other_partner, agent, supervisor):
    """One user per role of the authorization matrices (None: anonymous)."""
    return {
        "anonymous": None,
        "buyer": buyer,
        "other_buyer": other_buyer,
        "partner": partner,
        "other_partner": other_partner,
        "agent": agent,
        "supervisor": supervisor,
    }


def token_client(user) -> APIClient:
    """An API client signed in with a real token (anonymous for `None`)."""
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def api_as():
    """`api_as(user)`: an API client authenticated as the user."""

    def make(user):
        client = APIClient()
        client.force_authenticate(user)
        return client

    return make


@pytest.fixture
def worker(monkeypatch):
    """A real Celery worker in this process, consuming the test's Redis (eager mode off): tasks
    travel through the broker as in production. Use with `django_db(transaction=True)`."""
    monkeypatch.setitem(celery_app.conf, "task_always_eager", False)
    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        yield


@pytest.fixture
def celery_processes(transactional_db, tmp_path):
    """Real Celery workers and beat as subprocesses on the test's database, Redis and processor
    store (tests/processes.py): `start_worker()`, `kill_worker()` (SIGKILL), `start_beat()`,
    `beat_every(seconds, *tasks)`. Use with `django_db(transaction=True)`: the processes see
    only committed rows. Every process is stopped at teardown, before the database is flushed,
    and the broker emptied; a failing test's report shows the end of their logs."""
    broker_purge()
    processes = CeleryProcesses(tmp_path)
    try:
        yield processes
    finally:
        processes.stop()
        broker_purge()
        print(processes.logs_tail())


def _forget_broker_connections() -> None:
    """Close Celery's pooled broker connections, so the next publish connects to the broker
    now configured (as Celery does after a fork)."""
    pools.reset()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def private_redis(tmp_path):
    """A redis-server of the test's own (tests/processes.py), to stop and start again."""
    redis = PrivateRedis(tmp_path)
    redis.start()
    yield redis
    redis.stop()


@pytest.fixture
def private_broker(private_redis, monkeypatch):
    """Celery publishes to the private Redis, and tasks are no longer run eagerly."""
    monkeypatch.setitem(celery_app.conf, "task_always_eager", False)
    monkeypatch.setitem(celery_app.conf, "broker_url", private_redis.url)
    _forget_broker_connections()
    yield private_redis
    _forget_broker_connections()


def wait_for(condition, seconds: float = 30) -> bool:
    """Poll `condition` every 0.1 s until it holds (True) or `seconds` pass (False)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False

"""PostgreSQL connections terminated under load (issue 11 §4): a real web process (gunicorn, as the
Procfile starts it) on the test database takes a bounded load of buyers placing, reading and
cancelling orders through the API with `Idempotency-Key`s, and reading each order's page, while
another thread terminates the web process's database backends (`pg_terminate_backend`, only
those of this test database that carry the web process's application name) again and again.

Proven: every answer is a success, a refusal, or a clean 503 `database_unavailable` (JSON from
the API, the 503 page from a page; never a 500, never a dropped connection); each request
retried with its key until it is not a 503 ends with its committed result, and sent once more
afterwards replays exactly that result; nothing is half-written (each key placed one order, with
its lines, one charge at the processor and its payment, and cancelled it once with its refund);
the refunds are then made and `check_ledgers` passes.
"""

import threading
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
import requests
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.db.models import Count
from django.test import Client
from rest_framework.authtoken.models import Token

from core.models import IdempotencyRecord
from orders.models import Order, OrderItem
from refunds.models import Refund
from tests.conftest import processor_charges, refunds_processed
from tests.factories import UserFactory

pytestmark = [
    pytest.mark.long,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(180),
]

WEB_NAME = "lojix-faults-web"
BUYERS = 4  # one client thread each, against two gunicorn workers of four threads
ORDERS_PER_BUYER = 6  # at least; more while the terminator has had fewer than MIN_ROUNDS
MAX_ORDERS_PER_BUYER = 30
MIN_ROUNDS = 12
# Often enough that requests are cut mid-way, seldom enough that a retry gets through (a
# cancel takes a few hundred milliseconds on a busy CI machine).
TERMINATE_EVERY_SECONDS = 0.6
RETRIES = 40
HTTP_TIMEOUT = 30


@dataclass
class Call:
    """One intended request and every answer it got, first to last."""

    method: str
    path: str
    body: dict | None = None
    key: str | None = None
    answers: list = field(default_factory=list)

    @property
    def final(self) -> requests.Response:
        return self.answers[-1]


class Buyer:
    """A client thread's buyer: a token for the API, a session for the pages, and each request
    sent until it is not a 503."""

    def __init__(self, base_url: str, user, unclean: list):
        self.base_url, self.user, self.unclean = base_url, user, unclean
        self.session = requests.Session()
        token, _ = Token.objects.get_or_create(user=user)
        self.session.headers["Authorization"] = f"Token {token.key}"
        signed_in = Client()
        signed_in.force_login(user)
        cookie = settings.SESSION_COOKIE_NAME
        self.session.cookies.set(cookie, signed_in.cookies[cookie].value)
        self.calls: list[Call] = []

    def send(self, call: Call) -> requests.Response:
        headers = {"Idempotency-Key": call.key} if call.key else {}
        return self.session.request(
            call.method,
            self.base_url + call.path,
            json=call.body,
            headers=headers,
            timeout=HTTP_TIMEOUT,
        )

    def run(self, call: Call) -> requests.Response:
        """Send until the answer is not a 503 (the same key each time); any answer that is not
        clean is noted."""
        self.calls.append(call)
        for _ in range(RETRIES):
            try:
                answer = self.send(call)
            except requests.RequestException as error:  # the server dropped the connection
                self.unclean.append((call.method, call.path, repr(error)))
                raise
            call.answers.append(answer)
            if not is_clean(answer):
                self.unclean.append((call.method, call.path, answer.status_code, answer.text))
            if answer.status_code != 503:
                return answer
            time.sleep(0.05)
        raise AssertionError(f"{call.method} {call.path} still 503 after {RETRIES} tries")


def is_clean(answer: requests.Response) -> bool:
    """A success or refusal, or a 503 that says the database did not answer: JSON with its
    code from the API, the 503 page from a page."""
    content_type = answer.headers.get("Content-Type", "")
    if urlsplit(answer.url).path.startswith("/api/"):
        if not content_type.startswith("application/json"):
            return False
        if answer.status_code < 500:
            return True
        return answer.status_code == 503 and answer.json().get("code") == "database_unavailable"
    if not content_type.startswith("text/html"):
        return False
    return answer.status_code < 500 or (
        answer.status_code == 503 and 'data-error-page="503"' in answer.text
    )


def shop(buyer: Buyer, restaurant_id: int, menu_ids: list[int], terminator) -> None:
    """Place, read and cancel ORDERS_PER_BUYER orders, and more until the terminator has had
    MIN_ROUNDS (however fast the machine), each request with a key of its own."""
    for index in range(MAX_ORDERS_PER_BUYER):
        if index >= ORDERS_PER_BUYER and terminator.rounds >= MIN_ROUNDS:
            break
        lines = [{"menu_item": menu_ids[0], "quantity": 1 + index % 3}]
        if index % 2:
            lines.append({"menu_item": menu_ids[1], "quantity": 1})
        body = {
            "restaurant": restaurant_id,
            "items": lines,
            "fulfillment": "delivery",
            "delivery_address": "7 Harbour Road",
        }
        placed = buyer.run(Call("POST", "/api/orders/", body, key=str(uuid.uuid4())))
        assert placed.status_code == 201, placed.text
        order_id = placed.json()["id"]
        buyer.run(Call("GET", f"/api/orders/{order_id}/"))
        assert buyer.run(Call("GET", f"/orders/{order_id}/")).status_code == 200
        buyer.run(Call("POST", f"/api/orders/{order_id}/cancel/", {}, key=str(uuid.uuid4())))


class Terminator(threading.Thread):
    """Terminates the web process's backends in this test database every
    TERMINATE_EVERY_SECONDS until stopped; counts the backends it ended."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stopping = threading.Event()
        self.terminated = self.rounds = 0

    def run(self):
        try:
            while not self.stopping.wait(TERMINATE_EVERY_SECONDS):
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND application_name = %s "
                        "AND pid <> pg_backend_pid()",
                        [WEB_NAME],
                    )
                    self.terminated += cursor.fetchone()[0]
                self.rounds += 1
        finally:
            connection.close()


def run_threads(targets) -> list:
    """Run each callable in a thread of its own; returns what each raised (None: nothing)."""
    errors: list = [None] * len(targets)

    def call(index, target):
        try:
            target()
        except Exception as error:  # reported by the test
            errors[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=call, args=pair) for pair in enumerate(targets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
        assert not thread.is_alive(), "a client thread hung"
    return errors


def test_backends_terminated_under_load_leave_every_request_clean_and_committed_once(
    celery_processes, restaurant, menu
):
    base_url = celery_processes.start_web(workers=2, application_name=WEB_NAME)
    menu_ids = [menu["Margherita"].pk, menu["Tiramisu"].pk]
    unclean: list = []
    buyers = [Buyer(base_url, UserFactory(username=f"buyer{n}"), unclean) for n in range(BUYERS)]
    terminator = Terminator()

    terminator.start()
    errors = run_threads([lambda b=b: shop(b, restaurant.pk, menu_ids, terminator) for b in buyers])
    terminator.stopping.set()
    terminator.join(timeout=10)

    assert errors == [None] * BUYERS, errors
    assert unclean == []
    calls = [call for buyer in buyers for call in buyer.calls]
    answers = [answer.status_code for call in calls for answer in call.answers]
    assert terminator.terminated >= 5, terminator.terminated
    assert answers.count(503) >= 2, "requests were not cut: the test proved nothing"
    keyed = [call for call in calls if call.key]
    assert {(c.path.split("/")[-2], c.final.status_code) for c in keyed} == {
        ("orders", 201),
        ("cancel", 200),
    }

    # Each keyed request sent once more: the committed answer, replayed byte for byte.
    by_buyer = {id(call): buyer for buyer in buyers for call in buyer.calls}
    for call in keyed:
        again = by_buyer[id(call)].send(call)
        assert (again.status_code, again.content) == (call.final.status_code, call.final.content)
        assert again.headers["Idempotent-Replayed"] == "true"

    # Nothing half-written: one order per placement key, whole, charged once, cancelled once.
    placed = {c.final.json()["id"]: c.body for c in keyed if c.path == "/api/orders/"}
    assert len(placed) >= BUYERS * ORDERS_PER_BUYER
    assert set(Order.objects.values_list("pk", flat=True)) == set(placed)
    for order in Order.objects.prefetch_related("items", "payments", "refunds"):
        lines = {(line["menu_item"], line["quantity"]) for line in placed[order.pk]["items"]}
        assert {(i.menu_item_id, i.quantity) for i in order.items.all()} == lines
        assert order.status == Order.Status.CANCELLED
        [payment] = order.payments.all()
        assert (payment.status, payment.amount) == ("succeeded", order.amount_charged)
        [refund] = order.refunds.all()
        assert (refund.destination, refund.amount) == ("card", order.amount_paid)
    assert OrderItem.objects.values("order").annotate(n=Count("pk")).count() == len(placed)
    charges = processor_charges()
    assert len(charges) == len(placed)  # a retried placement charged under the same key
    assert {c.reference for c in charges} == set(
        Order.objects.values_list("payments__gateway_reference", flat=True)
    )
    assert IdempotencyRecord.objects.count() == len(keyed)

    refunds_processed()
    assert set(Refund.objects.values_list("status", flat=True)) == {"succeeded"}
    assert sum(Refund.objects.values_list("amount", flat=True), Decimal(0)) == sum(
        (order.amount_paid for order in Order.objects.all()), Decimal(0)
    )
    call_command("check_ledgers")

"""Redis down under load (issue 11 §4): a real web process (gunicorn), a Celery worker and beat
(tests/processes.py) use a Redis of the test's own as their cache and broker. While it is
stopped, buyers keep signing in (page and API), browsing, checking out through the cart and
placing and cancelling orders through the API; then it is started again on the same port.

The issue's "a minute" is scaled down to OUTAGE_SECONDS of load: nothing in lojix counts the
outage's length (each publish fails at once, each request goes on without the cache, and the
beat relay hands the backlog over at its first tick after Redis returns), so a longer outage
only makes the backlog longer.

Proven: during the outage every page and API call answers without a 5xx (only `/readyz` says
503, naming the broker), sign-in works and a failed one is recorded (django-axes, in the
database); every email and task requested meanwhile waits in the outbox, which `/metrics`
counts (`lojix_outbox_unsent_messages` goes up, and back to 0 after); once Redis is back the
beat relay hands them to the worker, which sends every email exactly once and makes every
refund once at the processor; `check_ledgers` passes.
"""

import email
import email.policy
import re
import time
import uuid
from collections import Counter

import pytest
import requests
from axes.models import AccessAttempt
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.core.management import call_command
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.authtoken.models import Token

from core.models import Notification, OutboxMessage
from orders.models import Order
from refunds.models import Refund
from tests.conftest import processor_refunds, wait_for
from tests.factories import UserFactory

pytestmark = [
    pytest.mark.long,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(240),
]

PASSWORD = "pass-word-123"  # the factories'
OUTAGE_SECONDS = 6
RELAY = "core.tasks.outbox_relay"
RETRY = "refunds.tasks.retry_failed_refunds"
HTTP_TIMEOUT = 20
EMAIL_TASK = "core.tasks.send_notification_emails"
REFUND_TASK = "refunds.tasks.process_refunds"


class Visitor:
    """A browser's worth of requests: a session, its CSRF cookie, every answer noted."""

    def __init__(self, base_url: str, answers: list):
        self.base_url, self.answers = base_url, answers
        self.session = requests.Session()

    def get(self, path: str, **kwargs) -> requests.Response:
        return self._note(self.session.get(self.base_url + path, timeout=HTTP_TIMEOUT, **kwargs))

    def post_form(self, path: str, data: dict) -> requests.Response:
        if "csrftoken" not in self.session.cookies:
            self.get("/accounts/login/")
        data = {**data, "csrfmiddlewaretoken": self.session.cookies["csrftoken"]}
        return self._note(
            self.session.post(
                self.base_url + path, data=data, timeout=HTTP_TIMEOUT, allow_redirects=False
            )
        )

    def post_json(self, path: str, body: dict, **headers) -> requests.Response:
        return self._note(
            self.session.post(
                self.base_url + path, json=body, headers=headers, timeout=HTTP_TIMEOUT
            )
        )

    def sign_in(self, username: str, password: str = PASSWORD) -> requests.Response:
        return self.post_form("/accounts/login/", {"username": username, "password": password})

    def _note(self, answer: requests.Response) -> requests.Response:
        self.answers.append((answer.request.method, answer.request.path_url, answer.status_code))
        return answer


def server_password(user) -> None:
    """Give `user` PASSWORD as the web process checks it: the test settings hash with MD5, which
    the deployment's settings do not accept; PBKDF2 at a thousand iterations (the first
    sign-in rehashes it at the deployment's count)."""
    user.password = PBKDF2PasswordHasher().encode(PASSWORD, "faultsalt", iterations=1000)
    user.save(update_fields=["password"])


def signed_in(base_url: str, answers: list, buyer) -> tuple[Visitor, Visitor]:
    """The buyer signed in on the sign-in page and by the token API, after one failed try."""
    page = Visitor(base_url, answers)
    assert page.sign_in(buyer.username, "wrong").status_code == 200
    answer = page.sign_in(buyer.username)
    assert (answer.status_code, answer.headers.get("Location")) == (302, "/"), answer.text
    api = Visitor(base_url, answers)
    token = api.post_json("/api/auth/token/", {"username": buyer.username, "password": PASSWORD})
    assert token.json()["token"] == Token.objects.get(user=buyer).key
    api.session.headers["Authorization"] = f"Token {token.json()['token']}"
    return page, api


def browse_and_buy(page: Visitor, api: Visitor, restaurant, menu) -> dict:
    """One round of what a signed-in buyer does: browse, check out a cart on the pages, place
    and cancel an order through the API. Returns the orders it placed."""
    for path in ("/restaurants/", f"/restaurants/{restaurant.slug}/", "/orders/", "/policy/"):
        assert page.get(path).status_code == 200, path
    cart_order = checkout(page, menu["Tiramisu"])
    assert page.get(f"/orders/{cart_order}/").status_code == 200
    assert page.get("/notifications/").status_code == 200
    assert api.get("/api/orders/").status_code == 200
    body = {
        "restaurant": restaurant.pk,
        "items": [{"menu_item": menu["Margherita"].pk, "quantity": 2}],
        "fulfillment": "delivery",
        "delivery_address": "7 Harbour Road",
    }
    placed = api.post_json("/api/orders/", body, **{"Idempotency-Key": str(uuid.uuid4())})
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["id"]
    cancelled = api.post_json(
        f"/api/orders/{order_id}/cancel/", {}, **{"Idempotency-Key": str(uuid.uuid4())}
    )
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
    return {"cart": cart_order, "cancelled": order_id}


def checkout(page: Visitor, item) -> int:
    """Add `item` to the cart and place it from the cart page; returns the order's id."""
    added = page.post_form("/cart/add/", {"menu_item": item.pk, "quantity": 1})
    assert added.status_code == 302
    cart = page.get("/cart/")
    assert cart.status_code == 200
    token = re.search(r'name="token" value="([^"]+)"', cart.text).group(1)
    placed = page.post_form(
        "/cart/",
        {
            f"qty_{item.pk}": 1,
            "fulfillment": "delivery",
            "delivery_address": "7 Harbour Road",
            "token": token,
            "action": "place",
        },
    )
    assert placed.status_code == 302, placed.text
    return int(re.fullmatch(r"/orders/(\d+)/", placed.headers["Location"]).group(1))


def outbox_gauges(base_url: str) -> dict:
    """The outbox backlog as `/metrics` says it."""
    text = requests.get(f"{base_url}/metrics", timeout=HTTP_TIMEOUT).text
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name in ("lojix_outbox_unsent_messages", "lojix_outbox_failing_messages")
    }


def mails_sent(folder) -> Counter:
    """(recipient, subject) of every email the worker sent, counted."""
    sent = Counter()
    for path in folder.glob("*.log") if folder.exists() else ():
        for chunk in path.read_bytes().split(b"\n" + b"-" * 79 + b"\n"):
            if chunk.strip():
                message = email.message_from_bytes(chunk, policy=email.policy.default)
                sent[(str(message["To"]), str(message["Subject"]))] += 1
    return sent


def mails_due() -> Counter:
    return Counter(
        (n.user.email, f"lojix: {n.title}")
        for n in Notification.objects.filter(email=True).select_related("user")
    )


def all_delivered() -> bool:
    return (
        not OutboxMessage.objects.filter(sent_at__isnull=True).exists()
        and not Notification.objects.filter(email=True, emailed_at__isnull=True).exists()
        and not Refund.objects.exclude(status="succeeded").exists()
    )


def test_with_redis_down_pages_api_and_sign_in_work_and_the_backlog_is_delivered_once(
    private_broker, celery_processes, restaurant, menu
):
    celery_processes.configure(REDIS_URL=private_broker.url, CELERY_BROKER_URL=private_broker.url)
    celery_processes.start_beat()
    celery_processes.beat_every(1, RELAY, RETRY)
    celery_processes.start_worker(concurrency=1)
    base_url = celery_processes.start_web(workers=2)
    buyer = UserFactory(username="ada", first_name="Ada")
    server_password(buyer)
    answers: list = []

    before = browse_and_buy(*signed_in(base_url, answers, buyer), restaurant, menu)
    assert wait_for(all_delivered, 60), "the work before the outage was not delivered"
    assert mails_sent(celery_processes.mail_folder) == mails_due()
    answers_before = len(answers)
    outbox_before = OutboxMessage.objects.order_by("pk").last().pk
    assert AccessAttempt.objects.get(username=buyer.username).failures_since_start == 1

    private_broker.stop()
    during, backlog, started = [], [], time.monotonic()
    page, api = signed_in(base_url, answers, buyer)
    while time.monotonic() - started < OUTAGE_SECONDS or len(during) < 2:
        during.append(browse_and_buy(page, api, restaurant, menu))
        backlog.append(outbox_gauges(base_url))
    ready = requests.get(f"{base_url}/readyz", timeout=HTTP_TIMEOUT)
    held = list(OutboxMessage.objects.filter(pk__gt=outbox_before).order_by("pk"))
    private_broker.start()

    assert [a for a in answers if a[2] >= 500] == []
    assert len(answers) - answers_before >= 2 * 12
    assert (ready.status_code, ready.json()["failing"]) == (503, ["broker"])
    assert AccessAttempt.objects.get(username=buyer.username).failures_since_start == 2
    assert all(m.attempts == 1 and m.sent_at is None for m in held)  # the broker refused it
    tasks = Counter(m.task for m in held)
    assert tasks[EMAIL_TASK] >= len(during)
    assert tasks[REFUND_TASK] == len(during)
    assert [g["lojix_outbox_unsent_messages"] for g in backlog] == sorted(
        g["lojix_outbox_unsent_messages"] for g in backlog
    )  # only grew
    assert backlog[-1]["lojix_outbox_unsent_messages"] >= len(during) * 2
    assert backlog[-1]["lojix_outbox_failing_messages"] >= len(during) * 2

    assert wait_for(all_delivered, 90), (
        f"{OutboxMessage.objects.filter(sent_at__isnull=True).count()} unsent after Redis came back"
    )
    time.sleep(1)  # a second delivery of anything would land now
    assert outbox_gauges(base_url) == {
        "lojix_outbox_unsent_messages": 0,
        "lojix_outbox_failing_messages": 0,
    }
    assert requests.get(f"{base_url}/readyz", timeout=HTTP_TIMEOUT).status_code == 200
    held = OutboxMessage.objects.filter(pk__in=[m.pk for m in held])
    assert all(m.sent_at is not None for m in held)  # handed over once Redis was back
    sent = mails_sent(celery_processes.mail_folder)
    assert sent == mails_due()
    assert set(sent.values()) == {1}  # each email exactly once
    cancelled = [before["cancelled"], *(round_["cancelled"] for round_ in during)]
    assert set(Refund.objects.values_list("order", flat=True)) == set(cancelled)
    assert sorted(r.reference for r in processor_refunds()) == sorted(
        Refund.objects.values_list("gateway_reference", flat=True)
    )  # each refund made once at the processor
    placed_by_cart = [before["cart"], *(round_["cart"] for round_ in during)]
    assert Order.objects.filter(pk__in=placed_by_cart, status="placed").count() == len(
        placed_by_cart
    )
    call_command("check_ledgers")

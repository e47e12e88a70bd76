"""`Idempotency-Key` on mutating API endpoints (D-10), through `POST /api/orders/` and the
seller actions, on PostgreSQL; concurrent repeats with real threads."""

import contextlib
import datetime as dt
import json
import threading
import time

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError, close_old_connections, connection, transaction
from django.test import RequestFactory
from django.test.client import encode_multipart
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.exceptions import APIException
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIClient, APIRequestFactory, force_authenticate
from rest_framework.views import APIView

import orders.api.views
from core.errors import DomainError
from core.idempotency import (
    body_fingerprint,
    idempotency_lock_id,
    idempotency_records_purge,
    idempotent,
    request_fingerprint,
)
from core.models import IdempotencyRecord, Notification
from core.tasks import purge_idempotency_records
from credits.models import CreditTransaction
from orders.models import Order, OrderEvent, Payment
from orders.services.placement import order_place
from refunds.models import Refund
from tests.concurrency import run_concurrently
from tests.conftest import place_order, processor_refunds

pytestmark = pytest.mark.django_db

ORDERS = "/api/orders/"


@pytest.fixture
def body(restaurant, menu):
    return {
        "restaurant": restaurant.pk,
        "items": [{"menu_item": menu["Margherita"].pk, "quantity": 2}],
        "fulfillment": "delivery",
        "delivery_address": "7 Harbour Road",
    }


def post(client, payload, key=None, url=ORDERS):
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    return client.post(url, payload, format="json", **headers)


def counts():
    return [m.objects.count() for m in (Order, Payment, OrderEvent, CreditTransaction)]


# -- replay, mismatch, in progress ---------------------------------------------------------


def test_a_repeat_replays_the_first_response_and_places_one_order(api_as, buyer, body):
    client = api_as(buyer)

    first = post(client, body, key="order-7f3a")
    again = post(client, body, key="order-7f3a")

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.content == first.content
    assert first.json()["total"] == "27.99"
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert (Order.objects.count(), Payment.objects.count()) == (1, 1)
    record = IdempotencyRecord.objects.get()
    assert (record.user, record.key, record.method, record.path) == (
        buyer, "order-7f3a", "POST", ORDERS,
    )  # fmt: skip
    assert record.response_status == 201
    assert json.loads(record.response_body) == first.json()


def test_key_order_and_spacing_of_the_json_do_not_matter(api_as, buyer, body):
    client = api_as(buyer)
    first = post(client, body, key="k1")
    reordered = json.dumps(dict(reversed(list(body.items()))), indent=4)
    again = client.post(
        ORDERS, reordered, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    assert again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    assert Order.objects.count() == 1


def test_same_key_with_a_different_body_is_a_422(api_as, buyer, body, menu):
    client = api_as(buyer)
    post(client, body, key="k1")
    before = counts()

    other = body | {"items": [{"menu_item": menu["Tiramisu"].pk, "quantity": 1}]}
    response = post(client, other, key="k1")

    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_mismatch"
    assert "different request" in response.json()["detail"]
    assert counts() == before


def test_same_key_on_another_endpoint_is_a_422(api_as, buyer, partner, restaurant):
    order = place_order(buyer, restaurant)
    client = api_as(partner)
    accept = client.post(f"/api/seller/orders/{order.pk}/accept/", HTTP_IDEMPOTENCY_KEY="k1")
    response = client.post(
        f"/api/seller/orders/{order.pk}/start-preparation/", HTTP_IDEMPOTENCY_KEY="k1"
    )
    assert (accept.status_code, response.status_code) == (200, 422)
    assert response.json()["code"] == "idempotency_key_mismatch"
    assert Order.objects.get().status == "accepted"


@contextlib.contextmanager
def key_held_by_a_running_request(user, key):
    """Another connection holds the key's lock in an open transaction, as the first request
    does while it runs."""
    held, release = threading.Event(), threading.Event()

    def first_request():
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                lock_id = idempotency_lock_id(user_id=user.pk, key=key)
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [lock_id])
                held.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    thread = threading.Thread(target=first_request)
    thread.start()
    assert held.wait(timeout=30)
    try:
        yield
    finally:
        release.set()
        thread.join(timeout=30)


def test_a_repeat_while_the_first_is_running_is_a_409(api_as, buyer, body):
    with key_held_by_a_running_request(buyer, "k1"):
        response = post(api_as(buyer), body, key="k1")

    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_in_progress"
    assert counts() == [0, 0, 0, 0]
    assert not IdempotencyRecord.objects.exists()


def test_a_different_body_while_the_first_is_running_is_a_409_then_a_422(api_as, buyer, body, menu):
    # What the running request asked for is only known once it commits.
    client = api_as(buyer)
    other = body | {"items": [{"menu_item": menu["Tiramisu"].pk, "quantity": 1}]}
    with key_held_by_a_running_request(buyer, "k1"):
        running = post(client, other, key="k1")
    post(client, body, key="k1")

    committed = post(client, other, key="k1")

    assert (running.status_code, committed.status_code) == (409, 422)
    assert Order.objects.count() == 1


def test_keys_are_scoped_per_user(api_as, buyer, other_buyer, body):
    mine = post(api_as(buyer), body, key="shared")
    theirs = post(api_as(other_buyer), body, key="shared")
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert "Idempotent-Replayed" not in theirs
    assert sorted(Order.objects.values_list("buyer__username", flat=True)) == ["ada", "grace"]


def test_requests_without_a_key_are_not_recorded(api_as, buyer, body):
    client = api_as(buyer)
    post(client, body)
    post(client, body)
    assert Order.objects.count() == 2
    assert not IdempotencyRecord.objects.exists()


@pytest.mark.parametrize(
    "key",
    [pytest.param("", id="empty"), pytest.param("k" * 256, id="too long"),
     pytest.param(" k1", id="leading space"), pytest.param("k\t1", id="control character")],
)  # fmt: skip
def test_an_invalid_key_is_a_400_that_changes_nothing(api_as, buyer, body, key):
    response = post(api_as(buyer), body, key=key)
    assert response.status_code == 400
    assert response.json()["code"] == "idempotency_key_invalid"
    assert counts() == [0, 0, 0, 0]
    assert not IdempotencyRecord.objects.exists()


def test_anonymous_requests_are_refused_before_the_key_is_looked_at(body):
    response = post(APIClient(), body, key="k1")
    assert response.status_code == 401
    assert not IdempotencyRecord.objects.exists()


# -- what is stored: successes and 4xx, never 5xx --------------------------------------------


def test_a_refusal_is_stored_and_replayed(api_as, buyer, body):
    client = api_as(buyer)
    bad = body | {"items": [{"menu_item": 999999, "quantity": 1}]}

    first = post(client, bad, key="k1")
    again = post(client, bad, key="k1")
    corrected = post(client, body, key="k1")

    assert (first.status_code, again.status_code) == (400, 400)
    assert first.json()["code"] == "unknown_menu_item"
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert corrected.status_code == 422
    assert corrected.json()["code"] == "idempotency_key_mismatch"
    assert counts() == [0, 0, 0, 0]
    assert IdempotencyRecord.objects.get().response_status == 400


def test_a_crash_rolls_back_the_work_and_leaves_no_record_so_a_retry_runs(
    api_as, buyer, body, monkeypatch
):
    def place_then_crash(**kwargs):
        order_place(**kwargs)
        raise RuntimeError("the process died after the order was written")

    monkeypatch.setattr(orders.api.views, "order_place", place_then_crash)
    client = api_as(buyer)
    with pytest.raises(RuntimeError):
        post(client, body, key="k1")
    assert counts() == [0, 0, 0, 0]
    assert not IdempotencyRecord.objects.exists()

    monkeypatch.setattr(orders.api.views, "order_place", order_place)
    retry = post(client, body, key="k1")

    assert retry.status_code == 201
    assert "Idempotent-Replayed" not in retry
    assert (Order.objects.count(), Payment.objects.count()) == (1, 1)
    assert IdempotencyRecord.objects.get().response_status == 201


def test_a_5xx_answer_rolls_back_the_work_and_is_not_stored(api_as, buyer, body, monkeypatch):
    class GatewayDown(APIException):
        status_code = 503

    def place_then_unavailable(**kwargs):
        order_place(**kwargs)
        raise GatewayDown()

    monkeypatch.setattr(orders.api.views, "order_place", place_then_unavailable)
    client = api_as(buyer)
    response = post(client, body, key="k1")
    assert response.status_code == 503
    assert counts() == [0, 0, 0, 0]
    assert not IdempotencyRecord.objects.exists()

    monkeypatch.setattr(orders.api.views, "order_place", order_place)
    assert post(client, body, key="k1").status_code == 201
    assert Order.objects.count() == 1


# -- 24 hours ----------------------------------------------------------------------------------


def test_a_key_older_than_24_hours_is_ignored_and_replaced(api_as, buyer, body):
    client = api_as(buyer)
    post(client, body, key="k1")
    IdempotencyRecord.objects.update(created_at=timezone.now() - dt.timedelta(hours=24, minutes=1))

    again = post(client, body, key="k1")

    assert again.status_code == 201
    assert "Idempotent-Replayed" not in again
    assert Order.objects.count() == 2
    record = IdempotencyRecord.objects.get()
    assert record.created_at > timezone.now() - dt.timedelta(minutes=1)
    assert json.loads(record.response_body)["id"] == again.json()["id"]


def test_a_key_younger_than_24_hours_still_replays(api_as, buyer, body):
    client = api_as(buyer)
    post(client, body, key="k1")
    IdempotencyRecord.objects.update(created_at=timezone.now() - dt.timedelta(hours=23, minutes=59))
    assert post(client, body, key="k1")["Idempotent-Replayed"] == "true"
    assert Order.objects.count() == 1


def _record(user, key, age):
    return IdempotencyRecord.objects.create(
        user=user,
        key=key,
        method="POST",
        path=ORDERS,
        fingerprint="0" * 64,
        response_status=201,
        response_body="{}",
        created_at=timezone.now() - age,
        completed_at=timezone.now() - age,
    )


def test_purge_deletes_records_older_than_24_hours_in_batches(buyer):
    for index in range(5):
        _record(buyer, f"old-{index}", dt.timedelta(hours=25 + index))
    kept = _record(buyer, "fresh", dt.timedelta(hours=23))

    purged = idempotency_records_purge(now=timezone.now(), batch_size=2)

    assert purged == 5
    assert list(IdempotencyRecord.objects.all()) == [kept]
    assert idempotency_records_purge(now=timezone.now()) == 0


def test_the_purge_task_runs_hourly_from_beat(buyer):
    _record(buyer, "old", dt.timedelta(days=2))
    assert purge_idempotency_records() == 1
    assert not IdempotencyRecord.objects.exists()
    schedule = settings.CELERY_BEAT_SCHEDULE["purge-idempotency-records"]
    assert schedule == {"task": "core.tasks.purge_idempotency_records", "schedule": 3600.0}


# -- the fingerprint -------------------------------------------------------------------------


def _multipart_request(boundary: str, content: bytes) -> Request:
    data = encode_multipart(boundary, {"note": "cold soup", "file": _upload(content)})
    django_request = RequestFactory().post(
        "/", data=data, content_type=f"multipart/form-data; boundary={boundary}"
    )
    return Request(django_request, parsers=[MultiPartParser(), FormParser()])


def _upload(content: bytes):
    return SimpleUploadedFile("soup.jpg", content, content_type="image/jpeg")


def test_multipart_fingerprint_ignores_the_boundary_but_not_the_file():
    first = _multipart_request("BoUnDaRy-1", b"\xff\xd8 soup photo")
    same = _multipart_request("another-boundary-2", b"\xff\xd8 soup photo")
    other = _multipart_request("BoUnDaRy-1", b"\xff\xd8 another photo")

    assert request_fingerprint(first) == request_fingerprint(same)
    assert request_fingerprint(first) != request_fingerprint(other)
    assert first.data["file"].read() == b"\xff\xd8 soup photo"  # still readable by the view


def test_json_fingerprint_is_canonical():
    assert body_fingerprint(b'{"a": 1, "b": [1, 2]}') == body_fingerprint(b'{"b":[1,2],"a":1}')
    assert body_fingerprint(b'{"a": 1}') != body_fingerprint(b'{"a": 2}')
    assert body_fingerprint(b"not json") != body_fingerprint(b"not json!")


# -- every mutating API view honours the key -------------------------------------------------


def _api_views(resolver=None, prefix=""):
    for pattern in (resolver or get_resolver()).url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _api_views(pattern, route)
        elif isinstance(pattern, URLPattern) and route.startswith("api/"):
            view_class = getattr(pattern.callback, "view_class", None)
            if view_class is not None:
                yield route, view_class


# Signing in creates no resource worth replaying; the processor's webhook events count once by
# their own event id (a replay is refused, D-10), not by a header the processor never sends.
NOT_BY_KEY = {"api/auth/token/", "api/gateway/webhooks/"}


def test_every_mutating_api_view_honours_the_idempotency_key():
    unguarded = [
        f"{method.upper()} /{route}"
        for route, view_class in _api_views()
        if route not in NOT_BY_KEY
        for method in ("post", "put", "patch", "delete")
        if hasattr(view_class, method)
        and not getattr(getattr(view_class, method), "is_idempotent", False)
    ]
    assert unguarded == []


# -- concurrency, on PostgreSQL with real threads ----------------------------------------------


def _slow(delay: float):
    def slow_order_place(**kwargs):
        time.sleep(delay)
        return order_place(**kwargs)

    return slow_order_place


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_posts_with_one_key_place_one_order(buyer, body, monkeypatch):
    monkeypatch.setattr(orders.api.views, "order_place", _slow(0.5))

    def submit():
        client = APIClient()
        client.force_authenticate(buyer)
        return post(client, body, key="double-click")

    responses = run_concurrently(submit, 2)

    assert sorted(r.status_code for r in responses) == [201, 409]
    [refused] = [r for r in responses if r.status_code == 409]
    assert refused.json()["code"] == "idempotency_key_in_progress"
    assert (Order.objects.count(), Payment.objects.count()) == (1, 1)
    [placed] = [r for r in responses if r.status_code == 201]
    client = APIClient()
    client.force_authenticate(buyer)
    replay = post(client, body, key="double-click")
    assert replay["Idempotent-Replayed"] == "true"
    assert replay.content == placed.content


@pytest.mark.django_db(transaction=True)
def test_many_concurrent_posts_with_one_key_place_one_order(buyer, body):
    def submit():
        client = APIClient()
        client.force_authenticate(buyer)
        return post(client, body, key="retry-storm")

    responses = run_concurrently(submit, 6)

    assert all(r.status_code in (201, 409) for r in responses), [r.status_code for r in responses]
    created = [r for r in responses if r.status_code == 201]
    assert len({r.content for r in created}) == 1
    assert len([r for r in created if "Idempotent-Replayed" not in r]) == 1
    assert (Order.objects.count(), Payment.objects.count()) == (1, 1)


@pytest.mark.django_db(transaction=True)
def test_the_record_commits_with_the_work_and_the_key_is_locked_meanwhile(buyer, body, monkeypatch):
    seen_from_another_connection = []

    def observing_order_place(**kwargs):
        order = order_place(**kwargs)

        def look():
            with connection.cursor() as cursor:
                lock_id = idempotency_lock_id(user_id=buyer.pk, key="k1")
                cursor.execute("SELECT pg_try_advisory_lock(%s)", [lock_id])
                [locked] = cursor.fetchone()
            seen_from_another_connection.extend(
                [IdempotencyRecord.objects.count(), Order.objects.count(), locked]
            )
            connection.close()  # ends the session, and with it a lock it may have taken

        thread = threading.Thread(target=look)
        thread.start()
        thread.join()
        return order

    monkeypatch.setattr(orders.api.views, "order_place", observing_order_place)
    client = APIClient()
    client.force_authenticate(buyer)

    assert post(client, body, key="k1").status_code == 201
    assert seen_from_another_connection == [0, 0, False]
    assert (IdempotencyRecord.objects.count(), Order.objects.count()) == (1, 1)


# -- a commit whose answer was lost ------------------------------------------------------------


class KillTheConnectionAfterTheView:
    """Test-only middleware: once the view has answered (its transaction committed), the
    server's database connection is terminated from another connection and the response path
    then needs the database, so the client only sees a 503 `database_unavailable`
    (`core.error_views.server_error`), not the answer."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            [pid] = cursor.fetchone()
        killer = threading.Thread(target=_terminate, args=(pid,))
        killer.start()
        killer.join()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")  # raises: the connection is gone
        return response


def _terminate(pid: int) -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
            for _attempt in range(100):
                cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid])
                if cursor.fetchone() == (0,):
                    return
                time.sleep(0.05)
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_a_retry_after_the_answer_was_lost_replays_the_committed_cancellation(
    settings, buyer, restaurant
):
    order = place_order(buyer, restaurant)
    url = f"/api/orders/{order.pk}/cancel/"
    middleware = settings.MIDDLEWARE
    settings.MIDDLEWARE = [*middleware, f"{__name__}.KillTheConnectionAfterTheView"]
    doomed = APIClient(raise_request_exception=False)
    doomed.force_authenticate(buyer)

    lost = doomed.post(url, {}, format="json", HTTP_IDEMPOTENCY_KEY="cancel-1")

    settings.MIDDLEWARE = middleware
    close_old_connections()  # what a server does when its next request starts
    assert (lost.status_code, lost.json()["code"]) == (503, "database_unavailable")
    assert isinstance(lost.exc_info[1], OperationalError), lost.exc_info
    retry_client = APIClient()
    retry_client.force_authenticate(buyer)
    retry = retry_client.post(url, {}, format="json", HTTP_IDEMPOTENCY_KEY="cancel-1")

    assert retry.status_code == 200
    assert retry["Idempotent-Replayed"] == "true"
    assert retry.json()["status"] == "cancelled"
    order.refresh_from_db()
    assert order.status == "cancelled"
    assert OrderEvent.objects.filter(order=order, name="cancel").count() == 1
    assert [(r.destination, r.amount) for r in Refund.objects.filter(order=order)] == [
        ("card", order.amount_charged)
    ]
    assert len(processor_refunds()) == 1
    record = IdempotencyRecord.objects.get()
    assert (record.key, record.response_status, record.path) == ("cancel-1", 200, url)
    assert json.loads(record.response_body) == retry.json()


# -- the transaction around the work, through a test-only view ---------------------------------


class NoteApi(APIView):
    """Test-only endpoint: each effect is one Notification. `prepare_idempotent` stands for a
    call outside the database (a card charge); `steps` lets a test pause or fail it."""

    steps: dict = {}

    def prepare_idempotent(self, request):
        self.steps.get("prepare", lambda: None)()
        if request.data.get("prepare") == "refuse":
            raise DomainError("card_declined", "The card was declined.")
        return f"prepared for {request.data['title']}"

    @idempotent
    def post(self, request):
        note = Notification.objects.create(
            user=request.user, title=request.data["title"], body=request.idempotent_prepared
        )
        self.steps.get("work", lambda: None)()
        if request.data.get("work") == "crash":
            raise RuntimeError("crashed after writing")
        return Response({"id": note.pk, "prepared": note.body}, status=201)


def note_post(user, payload, key=None):
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    request = APIRequestFactory().post("/notes/", payload, format="json", **headers)
    force_authenticate(request, user)
    return NoteApi.as_view()(request)


@pytest.fixture
def steps(monkeypatch):
    steps = {}
    monkeypatch.setattr(NoteApi, "steps", steps)
    return steps


def test_prepare_runs_before_the_work_and_its_result_reaches_the_handler(buyer, steps):
    prepared = []
    steps["prepare"] = lambda: prepared.append("called")

    first = note_post(buyer, {"title": "soup"}, key="n1")
    replay = note_post(buyer, {"title": "soup"}, key="n1")
    unkeyed = note_post(buyer, {"title": "salad"})

    assert (first.status_code, replay.status_code, unkeyed.status_code) == (201, 201, 201)
    assert first.data["prepared"] == "prepared for soup"
    assert unkeyed.data["prepared"] == "prepared for salad"
    assert replay["Idempotent-Replayed"] == "true"
    assert replay.data == first.data
    assert prepared == ["called", "called"]  # not for the replay
    assert Notification.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_prepare_runs_outside_any_transaction_and_the_work_inside_one(buyer, steps):
    in_transaction = []
    steps["prepare"] = lambda: in_transaction.append(connection.in_atomic_block)
    steps["work"] = lambda: in_transaction.append(connection.in_atomic_block)

    assert note_post(buyer, {"title": "soup"}, key="n1").status_code == 201
    assert in_transaction == [False, True]


def test_a_refusal_from_prepare_is_stored_and_replayed(buyer):
    first = note_post(buyer, {"title": "soup", "prepare": "refuse"}, key="n1")
    again = note_post(buyer, {"title": "soup", "prepare": "refuse"}, key="n1")

    assert (first.status_code, again.status_code) == (409, 409)
    assert first.data["code"] == "card_declined"
    assert again["Idempotent-Replayed"] == "true"
    assert not Notification.objects.exists()
    assert IdempotencyRecord.objects.get().response_status == 409


def test_a_crash_after_writing_leaves_neither_the_effect_nor_the_record(buyer):
    with pytest.raises(RuntimeError):
        note_post(buyer, {"title": "soup", "work": "crash"}, key="n1")
    assert not Notification.objects.exists()
    assert not IdempotencyRecord.objects.exists()


def test_a_database_error_in_the_work_is_a_503_that_keeps_nothing_so_a_retry_runs(buyer, steps):
    def connection_cut():
        raise OperationalError("terminating connection due to administrator command")

    steps["work"] = connection_cut
    cut = note_post(buyer, {"title": "soup"}, key="n1")

    assert (cut.status_code, cut.data["code"], cut["Retry-After"]) == (
        503, "database_unavailable", "1",
    )  # fmt: skip
    assert not Notification.objects.exists()
    assert not IdempotencyRecord.objects.exists()
    steps.clear()
    retry = note_post(buyer, {"title": "soup"}, key="n1")
    assert retry.status_code == 201
    assert Notification.objects.get().pk == retry.data["id"]


def in_another_thread(call) -> tuple[threading.Thread, list]:
    """Start `call` in a thread with its own database connection; its result lands in the
    list."""
    results = []

    def run():
        try:
            results.append(call())
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, results


@pytest.mark.django_db(transaction=True)
def test_a_repeat_while_the_first_runs_is_a_409_and_changes_nothing(buyer, steps):
    inside, finish = threading.Event(), threading.Event()
    main = threading.current_thread()

    def first_pauses_in_its_transaction():
        if threading.current_thread() is not main:
            inside.set()
            finish.wait(timeout=30)

    steps["work"] = first_pauses_in_its_transaction
    thread, first = in_another_thread(lambda: note_post(buyer, {"title": "soup"}, key="n1"))
    assert inside.wait(timeout=30)

    repeat = note_post(buyer, {"title": "soup"}, key="n1")
    finish.set()
    thread.join(timeout=30)

    assert (first[0].status_code, repeat.status_code) == (201, 409)
    assert repeat.data["code"] == "idempotency_key_in_progress"
    assert Notification.objects.count() == 1
    assert note_post(buyer, {"title": "soup"}, key="n1").data == first[0].data


@pytest.mark.django_db(transaction=True)
def test_a_repeat_that_finds_the_key_committed_once_it_holds_the_lock_replays(buyer, steps):
    # The repeat looked before the first committed, and takes the lock after it did.
    looked, first_done = threading.Event(), threading.Event()
    main = threading.current_thread()

    def repeat_waits_for_the_first():
        if threading.current_thread() is not main:
            looked.set()
            first_done.wait(timeout=30)

    steps["prepare"] = repeat_waits_for_the_first
    thread, repeat = in_another_thread(lambda: note_post(buyer, {"title": "soup"}, key="n1"))
    assert looked.wait(timeout=30)
    first = note_post(buyer, {"title": "soup"}, key="n1")
    first_done.set()
    thread.join(timeout=30)

    assert (first.status_code, repeat[0].status_code) == (201, 201)
    assert repeat[0]["Idempotent-Replayed"] == "true"
    assert repeat[0].data == first.data
    assert Notification.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_when_another_commits_the_key_first_the_work_rolls_back_and_theirs_is_replayed(
    buyer, steps
):
    # The lock makes this impossible between two requests of this code; the unique (user, key)
    # constraint still decides if something else writes the key (an older release mid-deploy).
    payload = {"title": "soup"}

    def another_commits_the_key():
        IdempotencyRecord.objects.create(
            user=buyer,
            key="n1",
            method="POST",
            path="/notes/",
            fingerprint=body_fingerprint(json.dumps(payload).encode()),
            response_status=201,
            response_body='{"id": 0, "prepared": "theirs"}',
            completed_at=timezone.now(),
        )

    steps["work"] = lambda: in_another_thread(another_commits_the_key)[0].join(timeout=30)

    response = note_post(buyer, payload, key="n1")

    assert response.status_code == 201
    assert response["Idempotent-Replayed"] == "true"
    assert response.data == {"id": 0, "prepared": "theirs"}
    assert not Notification.objects.exists()
    assert IdempotencyRecord.objects.count() == 1

"""factory-boy factories: one per model, consistent related objects. State (orders, credit,
refunds) is set up through services: see the helpers in tests/conftest.py."""

import datetime as dt
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from credits.models import DiscountCode
from disputes.models import Incident
from orders.models import MenuItem, Restaurant


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    first_name = factory.Faker("first_name")
    password = factory.django.Password("pass-word-123")

    @factory.post_generation
    def groups(self, create, names, **kwargs):
        for name in names or ():
            self.groups.add(Group.objects.get_or_create(name=name)[0])


class RestaurantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Restaurant
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Trattoria {n}")
    slug = factory.Sequence(lambda n: f"trattoria-{n}")
    address = "1 Market Street"
    cancellation_window_minutes = 5
    cancellation_fee_percent = Decimal("15")
    delivery_fee = Decimal("2.99")
    opens_at = dt.time(0, 0)
    closes_at = dt.time(0, 0)
    offers_delivery = True
    offers_pickup = True
    offers_dine_in = True

    @factory.post_generation
    def members(self, create, users, **kwargs):
        for user in users or ():
            self.members.add(user)


class MenuItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MenuItem

    restaurant = factory.SubFactory(RestaurantFactory)
    name = factory.Sequence(lambda n: f"Dish {n}")
    price = Decimal("10.00")
    is_promotional = False
    allergens = factory.LazyFunction(list)


class DiscountCodeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DiscountCode

    code = factory.Sequence(lambda n: f"SAVE{n}")
    amount_off = Decimal("5.00")
    percent_off = None
    valid_from = factory.LazyFunction(lambda: dt.datetime(2020, 1, 1, tzinfo=dt.UTC))


class IncidentFactory(factory.django.DjangoModelFactory):
    """An incident (L-10) as a supervisor enters it; `restaurants=[...]` names the restaurants
    it covers (none: all)."""

    class Meta:
        model = Incident
        skip_postgeneration_save = True

    kind = Incident.Kind.FORCE_MAJEURE
    title = factory.Sequence(lambda n: f"Incident {n}")

    @factory.post_generation
    def restaurants(self, create, restaurants, **kwargs):
        self.restaurants.set([r for r in restaurants or () if r is not None])

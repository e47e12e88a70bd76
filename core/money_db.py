"""Money read back from the database, exact to the cent on every supported database (D-7).

SQLite keeps decimals with numeric affinity and adds them as floating point: a sum of 0.70 +
10.10 + 3.30 comes back as 14.1000000000000, and a comparison of such a sum with a stored amount
can go either way. Django quantizes a plain column to its `decimal_places` on SQLite but not an
aggregate or any other computed value. Every money expression the ORM computes goes through
`Cents` (sums through `MoneySum`): rounded to the cent in SQL, so comparisons in the database are
exact, and read back through `core.money.to_cents`, the one quantizing helper. On PostgreSQL the
rounding is a no-op on `numeric`.

This module is apart from `core.money` because policy modules import that one and must not
import Django.
"""

from decimal import Decimal

from django.db.models import DecimalField, Func, Sum, Value
from django.db.models.functions import Coalesce

from core.money import ZERO, to_cents

MONEY_FIELD = DecimalField(max_digits=14, decimal_places=2)


class Cents(Func):
    """A money expression rounded to the cent in SQL and read back as a two-place Decimal."""

    function = "ROUND"
    template = "%(function)s(%(expressions)s, 2)"
    output_field = MONEY_FIELD

    def get_db_converters(self, connection):
        return [*super().get_db_converters(connection), _to_cents]


class MoneySum(Cents):
    """The sum of a money expression over the rows (0.00 over none), exact to the cent.

    `filter` restricts the rows as `Sum(filter=...)` does. Use it in `aggregate()` and
    `annotate()` wherever money is added up."""

    def __init__(self, expression, *, filter=None):
        super().__init__(
            Coalesce(Sum(expression, filter=filter), Value(ZERO), output_field=MONEY_FIELD)
        )


def _to_cents(value, expression, connection) -> Decimal | None:
    return None if value is None else to_cents(value)

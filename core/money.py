"""Money is Decimal with two places, rounded half-up in one place (D-7)."""

from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def to_cents(value: Decimal | int | str) -> Decimal:
    """Round an amount to the cent, half-up."""
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def percent_of(amount: Decimal, percent: Decimal) -> Decimal:
    """`percent` % of `amount`, rounded to the cent."""
    return to_cents(amount * Decimal(percent) / Decimal(100))


def percent_text(percent: Decimal) -> str:
    """A percentage for people: 15, 12.5, never 15.00."""
    text = f"{Decimal(percent):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def money_text(amount: Decimal | int | str | None, currency: str | None = None) -> str:
    """An amount for people: two decimals, thousands grouped, then the currency code
    ("1,234.50 USD"); the deployment currency (`LOJIX_CURRENCY`) unless `currency` is given.
    `None` gives "" so an absent amount renders as nothing."""
    if amount is None or amount == "":
        return ""
    return f"{to_cents(amount):,.2f} {currency or settings.LOJIX_CURRENCY}"

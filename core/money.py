"""Money is Decimal with two places, rounded half-up in one place (D-7)."""

from decimal import ROUND_HALF_UP, Decimal

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


def amount_text(amount: Decimal | int | str, currency: str) -> str:
    """An amount for people in pure code (policy texts): two decimals, thousands grouped, then
    `currency` ("1,234.50 USD"). Pages and services use `core.display.money_text`, which gives
    the deployment currency."""
    return f"{to_cents(amount):,.2f} {currency}".strip()


def cents(amount: Decimal) -> int:
    """An amount as a whole number of cents (rounded half-up first), for outputs that hold
    numbers as floats: an integer stays exact there up to 2**53."""
    return int(to_cents(amount) * 100)

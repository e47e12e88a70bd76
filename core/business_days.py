"""Business days: weekends and the configured country's public holidays are skipped (D-7)."""

import datetime as dt
from functools import cache

import holidays


@cache
def _holiday_calendar(country: str) -> holidays.HolidayBase:
    return holidays.country_holidays(country)


def is_business_day(day: dt.date, country: str) -> bool:
    return day.weekday() < 5 and day not in _holiday_calendar(country)


def add_business_days(start: dt.date, days: int, *, country: str) -> dt.date:
    """The date `days` business days after `start` (`start` itself never counts)."""
    day = start
    remaining = days
    while remaining > 0:
        day += dt.timedelta(days=1)
        if is_business_day(day, country):
            remaining -= 1
    return day

"""The embedded default used by `make run`: everything from base.py, nothing to set."""

from config.settings.base import *  # noqa: F403

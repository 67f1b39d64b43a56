"""The production settings plus one bare JSON view, so both are served by one server."""

from videogen_site.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"

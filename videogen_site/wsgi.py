"""WSGI entry point, for hosts that cannot run ASGI (long waits then hold a thread)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "videogen_site.settings")

application = get_wsgi_application()

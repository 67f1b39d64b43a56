"""ASGI entry point: production and `make run` serve this with uvicorn."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "videogen_site.settings")

application = get_asgi_application()

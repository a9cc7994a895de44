"""WSGI entry point (gunicorn fintrack.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fintrack.settings")
application = get_wsgi_application()

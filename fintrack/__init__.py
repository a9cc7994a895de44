"""FinTrack project package: the composition root (settings, urls, celery, health, wsgi/asgi).

Its own modules may import any app; no app imports them (Django and Celery load them by name).
fintrack.core, the shared bottom layer, lives inside it but is no part of the root. Importing
the package loads the Celery app so `@shared_task` binds to it.
"""

from .celery import app as celery_app

__all__ = ("celery_app",)

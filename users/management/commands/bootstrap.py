"""Create the demo and admin users of a fresh install and print how to log in.

Passwords are generated on first run (never baked into the code) and kept, readable only by
their owner, in var/demo_credentials.json so later runs can print them again. With demo clients
on (DEMO_BANK_CLIENTS), the demo user is given a demo bank client at every bank (not connected
yet: the banks may not be up while this runs), so its first connect is one click.
"""

import json
import secrets

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from banking.services.clients import bank_codes
from banking.services.connections import (
    connection_demo_client_id_assign,
    connection_get_or_create,
)
from users.models import User
from users.services import user_create

DEMO_EMAIL = "demo@fintrack.local"
ADMIN_EMAIL = "admin@fintrack.local"


class Command(BaseCommand):
    help = "Create a demo user and an admin user if missing, and print their credentials."

    def handle(self, *args, **options):
        path = settings.VAR_DIR / "demo_credentials.json"
        stored = json.loads(path.read_text()) if path.is_file() else {}

        with transaction.atomic():
            demo_password = self._ensure(stored, DEMO_EMAIL, staff=False)
            admin_password = self._ensure(stored, ADMIN_EMAIL, staff=True)

        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(stored, indent=2))
        path.chmod(0o600)

        demo = User.objects.get(email=DEMO_EMAIL)
        self.stdout.write(
            "\nLog in with:\n"
            f"  demo user   {DEMO_EMAIL} / {demo_password or '(password changed by hand)'}"
            f"   {self._demo_clients(demo)}\n"
            f"  admin user  {ADMIN_EMAIL} / {admin_password or '(password changed by hand)'}"
            "   (Django admin at /admin/)\n"
            f"  credentials are kept in {path}\n"
            '  API: POST /api/auth/login {"login": …, "password": …}, then '
            "'Authorize' in Swagger UI with the access token.\n"
        )

    def _demo_clients(self, user: User) -> str:
        """The demo user's client at each bank (given one where it has none), as printed."""
        if not settings.DEMO_BANK_CLIENTS:
            return "connect a bank as your client there: POST /api/banks/{code}/connect" + (
                ' {"client_id": …}'
            )
        clients = []
        for code in bank_codes():
            connection = connection_get_or_create(user=user, bank_code=code)
            if not connection.client_id:
                connection = connection_demo_client_id_assign(connection=connection)
            clients.append(f"{code} {connection.client_id}")
        return "bank clients " + ", ".join(clients)

    def _ensure(self, stored: dict, email: str, *, staff: bool) -> str | None:
        user = User.objects.filter(email=email).first()
        if user is None:
            password = secrets.token_urlsafe(12)
            if staff:
                User.objects.create_superuser(email=email, password=password)
            else:
                user_create(email=email, phone=None, password=password)
            stored[email] = password
            return password
        password = stored.get(email)
        return password if password and user.check_password(password) else None

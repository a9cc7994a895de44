"""Serve only the sandbox banks over real HTTP, like remote banks: `manage.py run_sandbox`."""

import socket

from django.conf import settings
from django.core.management.base import BaseCommand
from django.core.servers.basehttp import WSGIServer, run


class NoDelayWSGIServer(WSGIServer):
    """Threaded dev server with TCP_NODELAY: without it a keep-alive client waits ~40 ms per
    request for the delayed ACK (headers and body go out in separate writes)."""

    request_queue_size = 64

    def get_request(self):
        connection, address = super().get_request()
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection, address


class Command(BaseCommand):
    help = "Serve only the sandbox banks (threaded), at /<bank>/ and /sandbox/<bank>/."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8100)

    def handle(self, *args, addr: str, port: int, **options):
        # This process answers sandbox URLs only; FinTrack's own API is not reachable here.
        settings.ROOT_URLCONF = "sandbox.server_urls"
        # Keep each server thread's DB connection open: a page must not pay for a reconnect.
        settings.DATABASES["default"]["CONN_MAX_AGE"] = None
        from django.core.handlers.wsgi import WSGIHandler

        self.stdout.write(f"Sandbox banks on http://{addr}:{port}/sandbox/<vbank|abank|sbank>/")
        run(addr, port, WSGIHandler(), ipv6=False, threading=True, server_cls=NoDelayWSGIServer)

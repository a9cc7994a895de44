"""Authentication at a bank (SPEC §2): the team's bank token, and the demo login as a client."""

from datetime import UTC, datetime, timedelta

from banking.clients import parsing
from banking.clients.transport import BankTransport
from banking.clients.types import BankTokenInfo

# A token this close to its expiry is fetched again rather than sent.
OWN_TOKEN_REFRESH_MARGIN = timedelta(minutes=5)


class AuthMixin(BankTransport):
    """The bank token (injected, or fetched and kept by the client) and the client login."""

    def fetch_bank_token(self) -> BankTokenInfo:
        """POST /auth/bank-token with the team credentials in the query string (SPEC §2.1)."""
        response = self._send(
            "POST",
            "/auth/bank-token",
            query={"client_id": self.team_id, "client_secret": self.team_secret},
            authenticated=False,
        )
        return self._read(response, "/auth/bank-token", parsing.token_info)

    def _bank_token(self) -> str:
        """The injected provider's token, else our own, fetched again near its expiry."""
        if self.token_provider is not None:
            return self.token_provider()
        now = datetime.now(UTC)
        if self._own_token is None or self._own_token.expires_at - now < OWN_TOKEN_REFRESH_MARGIN:
            self._own_token = self.fetch_bank_token()
        return self._own_token.access_token

    def _drop_bank_token(self) -> None:
        """Forget our own token and tell the provider its token was refused."""
        self._own_token = None
        if self.token_invalidator is not None:
            self.token_invalidator()

    def _client_login(self, *, client_id: str) -> str:
        """POST /auth/login as a bank client (demo only, SPEC §2.2); returns the client token."""
        response = self._send(
            "POST",
            "/auth/login",
            json_body={"username": client_id, "password": self.team_secret},
            authenticated=False,
        )
        return self._read(response, "/auth/login", parsing.login_token)

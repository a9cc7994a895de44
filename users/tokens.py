"""FinTrack's JWTs: refresh tokens recorded by jti and a SHA-256 of the token, never in clear.

simplejwt's blacklist app stores each outstanding refresh token's full text in
`token_blacklist_outstandingtoken.token`; anyone who reads that table could mint access tokens
with it. Here the column holds `sha256:<hex digest>` instead: enough to match a token someone
presents (`token_digest`), useless to present. The blacklist itself is keyed by jti alone, as
simplejwt checks it. Access tokens carry the jti FinTrack puts on its short deny list at logout
(users.models.RevokedAccessToken).
"""

import hashlib

from django.contrib.auth import get_user_model
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import AccessToken, BlacklistMixin, RefreshToken
from rest_framework_simplejwt.utils import datetime_from_epoch

DIGEST_PREFIX = "sha256:"


def token_digest(encoded: str) -> str:
    """What the outstanding-token table stores for an encoded token: its SHA-256, prefixed."""
    return DIGEST_PREFIX + hashlib.sha256(encoded.encode()).hexdigest()


class HashedRefreshToken(RefreshToken):
    """A refresh token whose outstanding-token row holds its digest, not the token."""

    access_token_class = AccessToken

    def _record(self, *, user=None) -> OutstandingToken:
        """The outstanding-token row of this token's jti, created with the digest if missing."""
        if user is None:
            user = (
                get_user_model()
                .objects.filter(
                    **{api_settings.USER_ID_FIELD: self.payload.get(api_settings.USER_ID_CLAIM)}
                )
                .first()
            )
        record, _created = OutstandingToken.objects.get_or_create(
            jti=self.payload[api_settings.JTI_CLAIM],
            defaults={
                "user": user,
                "created_at": self.current_time,
                "token": token_digest(str(self)),
                "expires_at": datetime_from_epoch(self.payload["exp"]),
            },
        )
        return record

    def outstand(self) -> OutstandingToken:
        """Record this (new, rotated) token as outstanding."""
        return self._record()

    def blacklist(self) -> tuple[BlacklistedToken, bool]:
        """Blacklist this token's jti (recording it as outstanding first if it was not)."""
        return BlacklistedToken.objects.get_or_create(token=self._record())

    @classmethod
    def for_user(cls, user) -> "HashedRefreshToken":
        """A new refresh token for `user`, recorded as outstanding by its digest."""
        # Token.for_user (the claims), not the blacklist mixin's: that one stores it in clear.
        token = super(BlacklistMixin, cls).for_user(user)
        token._record(user=user)
        return token

"""users: the User (with its bank client id), registration, JWT auth and profile; and
users.onboarding, which connects banks (connect → consent → first sync) and reports its status.

The top layer: it may import every app below it (sync, analytics, consents, banking, audit) and
fintrack.core. No app imports it: the others name the user model through
settings.AUTH_USER_MODEL. The layers are the contract in `.importlinter` (`lint-imports`).
"""

"""What consents asks the apps above it, which it may not import (they connect in apps.py ready()).

`consent_in_use(user_id, bank_code)`: may a consent of the user at the bank be in use right now?
A receiver answers True when it may (sync: a run of that bank is queued or running, and a run
reads the consent it started with to its end). A consent replaced by its renewal is revoked at
the bank only once nobody answers True, so a sync running during the switch never loses its
consent halfway (the next run uses the new one).
"""

from django.dispatch import Signal

consent_in_use = Signal()


def consent_in_use_ask(*, user_id: int, bank_code: str) -> bool:
    """Whether any receiver says a consent of the user at the bank may be in use now."""
    answers = consent_in_use.send(sender=consent_in_use, user_id=user_id, bank_code=bank_code)
    return any(answer for _receiver, answer in answers)

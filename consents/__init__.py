"""consents: the consent lifecycle at each bank (request, poll, approve, renew, revoke), and the
banks' overview (/api/banks, /api/banks/{code}/status: each configured bank with the user's
connection and current consents, their expiry state and renewals). consents/lifecycle.py holds
early renewal, fresh requests and the periodic sweep (consents/tasks.py, beat).

It may import banking, audit and fintrack.core; analytics, sync and users import it.
"""

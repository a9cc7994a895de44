"""consents: the consent lifecycle at each bank (request, poll, approve, renew, revoke), and the
banks' overview (/api/banks, /api/banks/{code}/status: each configured bank with the user's
connection and newest consents).

It may import banking, audit and fintrack.core; analytics, sync and users import it.
"""

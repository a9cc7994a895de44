"""analytics: snapshots, Save-to-Spend, financial health, debt, forecast and the dashboard; the
/api/debts endpoints (served from banking's debt selectors).

It reads banking through its models and selectors and may import consents, banking, audit and
fintrack.core. What happens below it reaches it by signals (banking.signals, connected in
apps.py), never by an import from below; sync and users import it.
"""

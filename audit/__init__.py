"""audit: raw bank API logs and audit events (written through its services), the raw-log API,
and the audited admin action helper (audit.admin_actions.ServiceActionMixin).

It may import fintrack.core only; every feature app above may import it.
"""

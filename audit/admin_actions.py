"""Admin actions that call a service per selected row and leave an audit event of each.

Here, not in fintrack.core.admin, because every such action is audited: the shared admin helpers
of fintrack.core import no feature app. Consoles whose actions call services (connections'
"sync now", consents' refresh and revoke) mix `ServiceActionMixin` in.
"""

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth import get_permission_codename
from django.db.models import QuerySet

from audit.services import AuditAction, audit_event_record
from fintrack.core.exceptions import ApplicationError, UpstreamError


class ServiceActionMixin:
    """Admin actions that call a service per row, audit it and report each row's outcome.

    Actions need the model's real "change" permission (a read-only console still acts through
    services); application errors and bank (upstream) errors are reported per row, never raised.
    """

    def has_operate_permission(self, request) -> bool:
        opts = self.model._meta
        return request.user.has_perm(f"{opts.app_label}.{get_permission_codename('change', opts)}")

    def run_service_action(
        self,
        request,
        queryset: QuerySet,
        *,
        action: str,
        call: Callable[[Any], tuple[str, dict[str, Any]]],
        owner: Callable[[Any], Any] = lambda obj: obj.user,
    ) -> None:
        """Call `call(obj)` per selected row; it returns (message, details for the audit event).

        A "correlation_id" in the details becomes the audit event's correlation id.
        """
        succeeded = failed = 0
        for obj in queryset:
            details: dict[str, Any] = {"action": action}
            correlation_id = None
            try:
                message, result = call(obj)
            except (ApplicationError, UpstreamError) as exc:
                failed += 1
                code = getattr(exc, "code", "error")
                text = getattr(exc, "message", "") or str(exc)
                details.update(outcome="failed", error_code=code, error=text[:255])
                self.message_user(
                    request, f"{obj}: {action} failed ({code}): {text}", messages.ERROR
                )
            else:
                succeeded += 1
                correlation_id = result.pop("correlation_id", None)
                details.update(outcome="succeeded", **result)
                self.message_user(request, f"{obj}: {message}", messages.SUCCESS)
            audit_event_record(
                action=AuditAction.ADMIN_ACTION,
                actor=request.user,
                user=owner(obj),
                obj=obj,
                bank_code=getattr(obj, "bank_code", ""),
                correlation_id=correlation_id,
                details=details,
            )
        if succeeded + failed > 1:
            level = messages.WARNING if failed else messages.INFO
            self.message_user(
                request, f"{action}: {succeeded} succeeded, {failed} failed.", level=level
            )

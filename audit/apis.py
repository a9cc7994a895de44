"""Staff raw-log API: the stored (redacted) bank requests and responses, filtered and paginated."""

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import NotFound as DrfNotFound
from rest_framework.exceptions import ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import IsAdminUser

from audit.filters import RawLogFilter, cursor_position_clean
from audit.selectors import raw_log_list, raw_log_same_as
from audit.serializers import AuditErrorSerializer, RawLogOutputSerializer
from fintrack.core.exceptions import ValidationFailed


class RawLogPagination(CursorPagination):
    """Newest first, by cursor: no COUNT(*) over millions of rows, stable while logs stream in."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    ordering = ("-created_at", "-id")

    def get_page_size(self, request):
        """page_size validated as every filter is: 1–200, else a 400 naming it (DRF would
        quietly use the default)."""
        value = request.query_params.get(self.page_size_query_param)
        if value is None or value == "":
            return self.page_size
        digits = value.isascii() and value.isdigit() and len(value) <= 4
        if not digits or not 1 <= int(value) <= self.max_page_size:
            raise ValidationFailed(
                f"page_size: a whole number from 1 to {self.max_page_size}.",
                extra={
                    "fields": {"page_size": [f"A whole number from 1 to {self.max_page_size}."]}
                },
            )
        return int(value)

    def decode_cursor(self, request):
        try:
            cursor = super().decode_cursor(request)
            if cursor is not None and cursor.position is not None:
                cursor = cursor._replace(position=cursor_position_clean(cursor.position))
            return cursor
        except (DrfNotFound, ValueError) as exc:
            raise ValidationFailed(
                "cursor: not a cursor this API issued; follow `next` or `previous`.",
                extra={"fields": {"cursor": ["Invalid cursor."]}},
            ) from exc


def _param(name: str, type_, description: str, **kwargs) -> OpenApiParameter:
    return OpenApiParameter(name, type_, OpenApiParameter.QUERY, description=description, **kwargs)


class RawLogListApi(ListAPIView):
    permission_classes = [IsAdminUser]
    serializer_class = RawLogOutputSerializer
    pagination_class = RawLogPagination
    filter_backends: list = []  # RawLogFilter is applied (and validated) in get_queryset

    def get_queryset(self):
        filterset = RawLogFilter(self.request.query_params, queryset=raw_log_list())
        if not filterset.is_valid():
            errors = {
                ("non_field_errors" if name == "__all__" else name): [str(m) for m in messages]
                for name, messages in filterset.errors.items()
            }
            raise ValidationError(errors)
        return filterset.qs

    def paginate_queryset(self, queryset):
        """The page, each row told which earlier call stored its body (one query per page)."""
        page = super().paginate_queryset(queryset)
        if page is not None:
            same_as = raw_log_same_as(page)
            for log in page:
                log.same_as = same_as[log.pk]
        return page

    @extend_schema(
        parameters=[
            _param("user_id", OpenApiTypes.INT, "Only logs of this FinTrack user."),
            _param("bank_code", OpenApiTypes.STR, "Bank code.", enum=list(settings.BANK_CODES)),
            _param("correlation_id", OpenApiTypes.STR, "One user action or sync run (exact)."),
            _param("endpoint", OpenApiTypes.STR, "Part of the path, e.g. /transactions."),
            _param(
                "direction", OpenApiTypes.STR, "Request or response.", enum=["request", "response"]
            ),
            _param(
                "status_code",
                OpenApiTypes.STR,
                "Exact HTTP status (404), a class (4xx), or `none` (requests, failed exchanges).",
            ),
            _param(
                "from",
                OpenApiTypes.STR,
                "Inclusive lower bound: a date (whole UTC day) or an ISO 8601 datetime.",
            ),
            _param(
                "to",
                OpenApiTypes.STR,
                "Inclusive upper bound: a date (whole UTC day) or an ISO 8601 datetime.",
            ),
            _param("cursor", OpenApiTypes.STR, "`next`/`previous` of a previous page."),
            _param("page_size", OpenApiTypes.INT, "Rows per page, 1–200 (default 50)."),
        ],
        responses={
            200: RawLogOutputSerializer(many=True),
            400: OpenApiResponse(AuditErrorSerializer, description="A filter value is not valid."),
            401: OpenApiResponse(AuditErrorSerializer, description="Not authenticated."),
            403: OpenApiResponse(AuditErrorSerializer, description="Not a staff member."),
        },
        summary="Raw bank requests and responses (staff only), newest first",
        description=(
            "Payloads and headers are returned as stored: secrets were redacted before writing. "
            "Request and response of one exchange share `exchange_id`. A response body the "
            "bank sent unchanged is stored once: `same_as` names the call that stored it."
        ),
        tags=["admin"],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

from django.urls import path

from audit import apis

urlpatterns = [
    path("admin/raw-logs", apis.RawLogListApi.as_view(), name="admin-raw-logs"),
]

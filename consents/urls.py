from django.urls import path

from consents.apis import ConsentApproveDemoApi, ConsentListApi, ConsentRevokeApi

urlpatterns = [
    path("consents", ConsentListApi.as_view(), name="consent-list"),
    path("consents/<int:consent_id>/revoke", ConsentRevokeApi.as_view(), name="consent-revoke"),
    path(
        "consents/<int:consent_id>/approve-demo",
        ConsentApproveDemoApi.as_view(),
        name="consent-approve-demo",
    ),
]

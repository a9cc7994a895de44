from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from users.models import User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["-created_at"]
    list_display = [
        "id",
        "email",
        "phone",
        "external_client_id",
        "is_staff",
        "created_at",
        "last_login",
    ]
    list_filter = ["is_staff", "is_active", "created_at"]
    search_fields = ["email", "phone", "external_client_id"]
    date_hierarchy = "created_at"
    readonly_fields = ["created_at", "last_login"]
    fieldsets = (
        (None, {"fields": ("email", "phone", "password")}),
        ("Bank identity", {"fields": ("external_client_id",)}),
        (
            "Permissions",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Dates", {"fields": ("created_at", "last_login")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("email", "phone", "external_client_id", "password1", "password2"),
            },
        ),
    )

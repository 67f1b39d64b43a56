from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from generations.models import ApiKey, Generation, Membership, Team, UsageEvent, User


@admin.register(User)
class UserAdmin(BaseUserAdmin):  # type: ignore[type-arg]  # stubs want AbstractUser
    ordering = ("email",)
    list_display = ("email", "name", "is_staff", "is_active", "date_joined")
    search_fields = ("email", "name")
    fieldsets = (
        (None, {"fields": ("email", "password", "name")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)


class MembershipInline(admin.TabularInline[Membership, Team]):
    model = Membership
    extra = 0


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin[Team]):
    list_display = ("name", "personal", "monthly_limit", "created_at")
    search_fields = ("name",)
    inlines = [MembershipInline]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin[ApiKey]):
    # The digest is not secret material a person needs; it is still never shown.
    list_display = (
        "display",
        "name",
        "team",
        "user",
        "is_test",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    fields = (
        "team",
        "user",
        "name",
        "display",
        "is_test",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    readonly_fields = ("display", "created_at", "last_used_at", "team", "user", "is_test")
    list_filter = ("is_test",)

    def has_add_permission(self, request: object) -> bool:
        return False  # keys are made with `create_api_key` or the dashboard: shown once


@admin.register(Generation)
class GenerationAdmin(admin.ModelAdmin[Generation]):
    list_display = ("generation_id", "team", "model", "status", "progress", "created_at")
    list_filter = ("status", "model", "mode", "test_mode")
    search_fields = ("generation_id", "request_id", "prompt")
    readonly_fields = ("generation_id", "request_id", "created_at")


@admin.register(UsageEvent)
class UsageEventAdmin(admin.ModelAdmin[UsageEvent]):
    list_display = ("created_at", "team", "kind", "units", "month", "model", "generation")
    list_filter = ("kind", "month")

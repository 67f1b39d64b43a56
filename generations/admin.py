from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from generations.core import quotas
from generations.models import ApiKey, Generation, Membership, Plan, Team, UsageEvent, User


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


class GrantCreditsForm(forms.Form):
    amount = forms.DecimalField(min_value=Decimal("0.01"), max_digits=12, decimal_places=2)
    note = forms.CharField(max_length=200, required=False)


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin[Plan]):
    list_display = ("name", "monthly_limit", "premium_allowed", "member_monthly_cap",
                    "requests_per_minute", "monthly_budget_usd")  # fmt: skip


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin[Team]):
    list_display = ("name", "personal", "plan", "credits", "created_at")
    search_fields = ("name",)
    readonly_fields = ("credits",)  # moved only through the ledger (the grant action)
    inlines = [MembershipInline]
    actions = ["grant_credits"]

    @admin.action(description="Grant credits to the selected teams")
    def grant_credits(self, request: HttpRequest, queryset: QuerySet[Team]) -> HttpResponse | None:
        form = GrantCreditsForm(request.POST if "amount" in request.POST else None)
        if form.is_valid():
            for team in queryset:
                quotas.team_grant_credits(
                    team=team, amount=form.cleaned_data["amount"], note=form.cleaned_data["note"]
                )
            self.message_user(request, f"Granted {form.cleaned_data['amount']} credits to "
                                       f"{queryset.count()} team(s).")  # fmt: skip
            return None
        return render(
            request,
            "admin/grant_credits.html",
            {"form": form, "teams": queryset, "opts": self.model._meta,
             "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME},
        )  # fmt: skip


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
    list_display = ("created_at", "team", "kind", "units", "credits", "month", "model",
                    "generation")  # fmt: skip
    list_filter = ("kind", "month")

"""Destructive actions ask first: delete a generation, revoke or regenerate a key, rotate the
webhook secret, remove a webhook endpoint, remove a member or leave a team.

With JavaScript, the button's form opens a <dialog> in the page (static/js/site.js) and posts
with `confirm=yes` once the person agrees. Without it, the form posts as it is, and the view
answers with a page holding that <dialog>, open, whose button posts the same fields again
with `confirm=yes`: the same question either way, and nothing is lost without scripts."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from generations.dashboard.access import same_site_path

CONFIRM_FIELD = "confirm"


def ask_first(request: HttpRequest, question: str, button: str) -> HttpResponse | None:
    """None once the person has confirmed; else the page that asks `question`, whose
    `button` posts the same request again, confirmed."""
    if request.POST.get(CONFIRM_FIELD) == "yes":
        return None
    fields = [
        (name, value)
        for name, value in request.POST.items()
        if name not in ("csrfmiddlewaretoken", CONFIRM_FIELD)
    ]
    referer = request.headers.get("Referer", "")
    host = f"{request.scheme}://{request.get_host()}"
    back = same_site_path(request, request.POST.get("next")) or (
        same_site_path(request, referer[len(host) :]) if referer.startswith(host) else None
    )
    context = {"question": question, "button": button, "action": request.path,
               "fields": fields, "back": back or "/generate"}  # fmt: skip
    return render(request, "confirm.html", context)

"""The Generate form's estimate: what the request on the form would cost (credits, US
dollars) and how long it would take, as the form changes. The page renders it for the
form's values (no JavaScript needed); static/js/generate.js asks again here as the model,
duration, resolution, audio or image change, and shows the answer in place.

Served like the live status (dashboard/live.py): under /api/ through the lean handler on a
DB thread, reading the session itself; 401 without one. Nothing is written."""

from __future__ import annotations

from collections.abc import Mapping

from django.http import HttpRequest, HttpResponseBase, JsonResponse

from generations.core import estimates, validation
from generations.dashboard.access import current_team
from generations.dashboard.live import session_user
from generations.errors import ApiError
from generations.models import Team
from generations.web.dbthreads import run_in_db_thread

# The form's fields that move the estimate, passed through as the generate body has them.
FIELDS = ("model", "duration", "resolution", "aspect_ratio")
# A stand-in for the form's image (its mode is all an estimate needs): never fetched.
IMAGE_STAND_IN = "https://estimate.invalid/image.png"


def form_body(values: Mapping[str, str]) -> dict[str, object]:
    """The generate body of the form's values that an estimate depends on."""
    body: dict[str, object] = {"prompt": "estimate"}
    for name in FIELDS:
        if values.get(name):
            body[name] = values[name]
    body["add_audio"] = values.get("add_audio") in ("on", "true", "1")
    if values.get("image") in ("on", "true", "1") or values.get("image_url"):
        body["image_url"] = IMAGE_STAND_IN
    return body


def describe(found: estimates.Estimate) -> str:
    """The estimate in words, as the form shows it."""
    parts = [f"{found.credits} credits" if found.credits else "no credits"]
    usd = f"${found.usd:.2f}"
    if found.provider:
        usd += f" at {found.provider}"
    if not found.priced:
        usd += " (no price set for this route)"
    parts.append(usd)
    minutes, seconds = divmod(found.eta_s, 60)
    parts.append(f"about {minutes} min {seconds} s" if minutes else f"about {seconds} s")
    text = "Estimate: " + " · ".join(parts)
    if not found.within_budget:
        text += " · over this month's budget"
    return text + "."


def for_form(team: Team, values: Mapping[str, str]) -> dict[str, object] | None:
    """The estimate of the form's values, None while they are not a valid request."""
    try:
        spec = validation.build_spec(form_body(values), test_mode=False)
    except ApiError:
        return None
    found = estimates.estimate(team=team, spec=spec, test_mode=False)
    return {**found.as_json(), "text": describe(found)}


async def form_estimate(request: HttpRequest) -> HttpResponseBase:
    if request.method != "GET":
        return JsonResponse({"error": "Use GET."}, status=405, headers={"Allow": "GET"})
    return await run_in_db_thread(_answer, request)


def _answer(request: HttpRequest) -> JsonResponse:
    if session_user(request) is None:
        return JsonResponse({"error": "Log in first."}, status=401)
    try:
        spec = validation.build_spec(form_body(request.GET), test_mode=False)
    except ApiError as exc:
        return JsonResponse({"error": exc.message, "field": exc.field}, status=400)
    found = estimates.estimate(team=current_team(request), spec=spec, test_mode=False)
    return JsonResponse({**found.as_json(), "text": describe(found)})

"""`POST /api/v1/estimate`: a generate body in, what it would cost and how long it would
take out ({"credits", "usd", "eta_s"}, with the provider that would serve it and the served
model), creating nothing: no generation, no ledger row, no idempotency record, no file.

The body is validated as `POST /api/v1/generate` validates it (a 400 names the field; the
member's role, the safety checker and the plan's premium models answer as there), except
that the input images are not fetched: an estimate never reaches out to another host."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse

from generations.api.common import api_endpoint, authenticate, json_body, videogen_error
from generations.core import estimates, submissions, validation, webhooks


@api_endpoint(("POST",), videogen_error)
def estimate(request: HttpRequest) -> HttpResponse:
    key = authenticate(request)
    data = json_body(request)
    spec = validation.build_spec(data, test_mode=key.is_test)
    webhooks.validate_url(data.get("webhook_url"))
    submissions.screen(team=key.team, user=key.user, specs=[spec], test_mode=key.is_test)
    found = estimates.estimate(team=key.team, spec=spec, test_mode=key.is_test)
    body: dict[str, object] = {"success": True, **found.as_json()}
    if key.is_test:
        body["test_mode"] = True
    return JsonResponse(body)

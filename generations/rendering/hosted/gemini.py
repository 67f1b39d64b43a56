"""Google Gemini API: Veo as a long-running operation.

`POST /models/{model}:predictLongRunning` starts the job and answers an Operation; we poll
`GET /{operation.name}` until `done`. The result is a `files/...:download` URI that wants the
same `x-goog-api-key` header (and redirects to storage), so `Done` carries that header for
the downloader. Errors use the google.rpc.Status envelope `{"error": {code, message, status,
details}}`; a bad key is a 400 whose ErrorInfo reason is API_KEY_INVALID, and 429s carry
their retry hint as a RetryInfo `retryDelay` rather than a `Retry-After` header.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar

import requests
from django.conf import settings

from generations.ids import split_keys
from generations.rendering.base import EngineError
from generations.rendering.hosted.base import (
    Done,
    Pending,
    ProviderHTTP,
    Transient,
    as_object,
    looks_like_policy,
    reason_of,
    retry_after_seconds,
)

if TYPE_CHECKING:
    from generations.rendering.hosted.routes import Job

PROVIDER = "gemini"
# 4xx statuses whose google.rpc.Status body we read ourselves (the rest: ProviderHTTP).
READ_STATUS = frozenset({400, 401, 403, 404, 429})
# Statuses meaning "no such method here" when we try to cancel (see `cancel`).
NO_CANCEL = frozenset({400, 404, 501})


def _progress(metadata: Any) -> float | None:
    """A percentage from the operation's metadata, if it reports one (Veo usually doesn't)."""
    for key, value in as_object(metadata).items():
        if ("percent" in key.lower() or "progress" in key.lower()) and (
            isinstance(value, int | float) and not isinstance(value, bool)
        ):
            return max(0.0, min(100.0, float(value)))
    return None


def _retry_delay(details: list[dict[str, Any]]) -> float | None:
    """google.rpc.RetryInfo's `retryDelay` is a Duration in JSON form: "37s", "1.5s"."""
    for detail in details:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)s\s*", str(detail.get("retryDelay", "")))
        if match:
            return float(match.group(1))
    return None


class GeminiEngine:
    name: ClassVar[str] = PROVIDER

    def __init__(self, base_url: str, key: str) -> None:
        self.key = key
        self.http = ProviderHTTP(PROVIDER, base_url, {"x-goog-api-key": key}, secret=key)

    @classmethod
    def from_settings(cls, key: str | None = None) -> GeminiEngine:
        """Calling with `key`, one of the pool GEMINI_API_KEY holds (None: its first)."""
        if key is None:
            key = next(iter(split_keys(settings.GEMINI_API_KEY)), "")
        return cls(settings.GEMINI_API_URL, key)

    # --- protocol -------------------------------------------------------------------------

    def submit(self, job: Job) -> dict[str, Any]:
        body: dict[str, Any] = {"instances": [job.input.get("instance") or {}]}
        if job.input.get("parameters"):
            body["parameters"] = job.input["parameters"]
        op = self._call("POST", f"models/{job.upstream_model}:predictLongRunning", json=body)
        name = op.get("name")
        if not isinstance(name, str) or not name:
            raise Transient(f"{PROVIDER}: the create response names no operation")
        return {"operation": name}

    def poll(self, job: Job, handle: dict[str, Any]) -> Pending | Done:
        op = self._call("GET", str(handle["operation"]))  # the name is opaque: use it as is
        if not op.get("done"):
            return Pending(progress=_progress(op.get("metadata")), detail="running")
        error = as_object(op.get("error"))
        if error:
            # A finished operation's error is final, whatever its gRPC code: even
            # DEADLINE_EXCEEDED (4), RESOURCE_EXHAUSTED (8) or UNAVAILABLE (14) end the job,
            # since polling the same operation again can only return the same answer.
            state = error.get("status") or f"code {error.get('code')}"
            text = self.http.redact(f"{state}: {error.get('message') or 'no message'}")
            code = "content_policy" if looks_like_policy(text) else "upstream_failed"
            raise self.http.fail(code, text)
        result = as_object(as_object(op.get("response")).get("generateVideoResponse"))
        samples = result.get("generatedSamples")
        if isinstance(samples, list) and samples:
            uri = as_object(as_object(samples[0]).get("video")).get("uri")
            if isinstance(uri, str) and uri:
                return Done(self.http.url(uri), headers={"x-goog-api-key": self.key})
        reasons = result.get("raiMediaFilteredReasons")
        if reasons or result.get("raiMediaFilteredCount"):
            text = "; ".join(map(str, reasons)) if isinstance(reasons, list) else str(reasons or "")
            raise self.http.fail(
                "content_policy",
                text or "the video was removed by Google's safety filters",
            )
        raise self.http.fail("upstream_failed", "the operation ended without a video")

    def cancel(self, job: Job, handle: dict[str, Any]) -> None:
        # The Gemini API documents no cancel for Veo operations. google.longrunning's
        # `:cancel` is tried in case it is (or becomes) served; "no such method" answers are
        # expected and ignored, and the operation then simply runs out upstream.
        path = f"{handle['operation']}:cancel"
        response = self.http.call("POST", path, expect=READ_STATUS | NO_CANCEL, json={})
        if not response.ok and response.status_code not in NO_CANCEL:
            raise self._error(response)

    # --- HTTP -----------------------------------------------------------------------------

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self.http.call(method, path, expect=READ_STATUS, **kwargs)
        if not response.ok:
            raise self._error(response)
        return self.http.json(response)

    def _error(self, response: requests.Response) -> Exception:
        """The google.rpc.Status envelope as our Transient/EngineError split."""
        try:
            error = as_object(as_object(response.json()).get("error"))
        except ValueError:
            error = {}
        details = [d for d in error.get("details") or [] if isinstance(d, dict)]
        message = self.http.redact(str(error.get("message") or reason_of(response)))
        status = str(error.get("status") or f"HTTP {response.status_code}")
        if response.status_code == 429:
            delay = retry_after_seconds(response.headers.get("Retry-After"))
            retry_after = _retry_delay(details) if delay is None else delay
            return Transient(f"{PROVIDER}: {status}: {message}", retry_after, status=429)
        if response.status_code in (401, 403) or any(
            d.get("reason") == "API_KEY_INVALID" for d in details
        ):
            return EngineError(
                "upstream_auth",
                f"The {PROVIDER} provider refused this server's credentials ({status}: "
                f"{message}); an operator must check the API key.",
            )
        code = "content_policy" if looks_like_policy(message) else "upstream_rejected"
        return self.http.fail(code, f"{status}: {message}")

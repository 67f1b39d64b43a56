"""The `replicate` remote engine: Replicate's predictions API (https://api.replicate.com/v1).

`submit` creates a prediction for an official model (`POST /models/<owner>/<name>/
predictions`) or, when the map pins a version (`owner/name:version`), for that version
(`POST /predictions`), and keeps the prediction's get and cancel URLs. `poll` reads the
prediction: `starting`/`processing` are pending (the logs are the model's own output, often a
tqdm bar, so the last percentage in them is its progress); `succeeded` carries the video URL,
`failed` the reason. We never send `Prefer: wait`: a worker must not sit on a call.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import requests
from django.conf import settings

from generations.ids import split_keys
from generations.rendering.base import EngineError
from generations.rendering.hosted.base import (
    Done,
    Pending,
    ProviderHTTP,
    Transient,
    looks_like_policy,
    reason_of,
    retry_after_seconds,
)
from generations.rendering.hosted.routes import Job

PERCENT_RE = re.compile(r"(\d{1,3}(?:\.\d+)?)\s*%")
# Replicate's 429 says when the limit resets: "Your rate limit resets in ~30s."
RESETS_RE = re.compile(r"resets in ~?\s*(\d+(?:\.\d+)?)\s*s")
MAX_DETAIL_CHARS = 200


def log_state(logs: str) -> tuple[float | None, str]:
    """(progress, last line) of a prediction's logs; tqdm redraws its bar with \\r."""
    lines = [line.strip() for line in re.split(r"[\r\n]+", logs) if line.strip()]
    percents = PERCENT_RE.findall(logs)
    progress = min(100.0, float(percents[-1])) if percents else None
    return progress, lines[-1][:MAX_DETAIL_CHARS] if lines else ""


def invalid_reason(http: ProviderHTTP, response: requests.Response) -> str:
    """What a 422 says was wrong: each invalid field, else the problem's detail."""
    try:
        data = http.json(response)
    except Transient:
        return reason_of(response)
    fields = [
        f"{str(f.get('field', '')).removeprefix('input.')}: {f.get('description', 'invalid')}"
        for f in data.get("invalid_fields") or ()
        if isinstance(f, dict)
    ]
    return "; ".join(fields) or str(data.get("detail") or data.get("title") or reason_of(response))


class ReplicateEngine:
    name: ClassVar[str] = "replicate"

    def __init__(self, base_url: str, token: str) -> None:
        self.http = ProviderHTTP(
            "replicate", base_url, {"Authorization": f"Bearer {token}"}, secret=token
        )

    @classmethod
    def from_settings(cls, key: str | None = None) -> ReplicateEngine:
        """Calling with `key`, one of the pool REPLICATE_API_TOKEN holds (None: its first)."""
        if key is None:
            key = next(iter(split_keys(settings.REPLICATE_API_TOKEN)), "")
        return cls(settings.REPLICATE_API_URL, key)

    def _call(self, method: str, path: str, expect: frozenset[int] = frozenset(),
              **kwargs: Any) -> requests.Response:  # fmt: skip
        # 429s are read here: Replicate may give the wait only in the body's text.
        response = self.http.call(method, path, expect=expect | {429}, **kwargs)
        if response.status_code == 429:
            wait = retry_after_seconds(response.headers.get("Retry-After"))
            if wait is None and (match := RESETS_RE.search(response.text)):
                wait = float(match[1])
            raise Transient(f"replicate: {reason_of(response)}", wait, status=429)
        return response

    def _url(self, given: object, fallback: str) -> str:
        # The token rides on every call, so only URLs on the API host itself are followed.
        if isinstance(given, str) and given.startswith(self.http.base_url + "/"):
            return given
        return self.http.url(fallback)

    def submit(self, job: Job) -> dict[str, Any]:
        model, _, version = job.upstream_model.partition(":")
        if version:
            path, body = "predictions", {"version": version, "input": job.input}
        else:
            path, body = f"models/{model}/predictions", {"input": job.input}
        response = self._call("POST", path, json=body, expect=frozenset({422}))
        if response.status_code == 422:
            reason = invalid_reason(self.http, response)
            raise self.http.fail("upstream_rejected", reason)
        data = self.http.json(response)
        prediction_id = data.get("id")
        if not isinstance(prediction_id, str) or not prediction_id:
            raise Transient("replicate: the create answer carries no prediction id")
        urls = data.get("urls")
        urls = urls if isinstance(urls, dict) else {}
        return {
            "id": prediction_id,
            "get": self._url(urls.get("get"), f"predictions/{prediction_id}"),
            "cancel": self._url(urls.get("cancel"), f"predictions/{prediction_id}/cancel"),
        }

    def poll(self, job: Job, handle: dict[str, Any]) -> Pending | Done:
        data = self.http.json(self._call("GET", handle["get"]))
        status = data.get("status")
        if status in ("starting", "processing"):
            progress, line = log_state(str(data.get("logs") or ""))
            return Pending(progress=progress, detail=line or str(status))
        if status == "succeeded":
            output = data.get("output")
            if isinstance(output, list):
                output = next((o for o in output if isinstance(o, str)), None)
            if not isinstance(output, str) or not output:
                raise EngineError("upstream_failed", "The replicate provider returned no video.")
            return Done(output)
        if status == "failed":
            error = str(data.get("error") or "no reason given")
            code = "content_policy" if looks_like_policy(error) else "upstream_failed"
            raise self.http.fail(code, error)
        if status in ("canceled", "aborted"):
            raise EngineError("canceled_upstream", "The replicate provider canceled the job.")
        raise Transient(f"replicate: unexpected prediction status {str(status)[:40]!r}")

    def cancel(self, job: Job, handle: dict[str, Any]) -> None:
        # Best effort: a prediction that already ended (or is gone) needs no cancel.
        self._call("POST", handle["cancel"], expect=frozenset({400, 404, 409}))

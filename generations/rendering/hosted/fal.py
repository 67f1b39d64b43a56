"""The `fal` remote engine: fal.ai's queue API (https://queue.fal.run).

`submit` posts the translated input to the full model id (`fal-ai/kling-video/v2.5-turbo/
pro/text-to-video`) and keeps the request's status, result and cancel URLs. Those use only
the owner and app (`fal-ai/kling-video/requests/<id>`): we take them from the submit answer
and rebuild them that way when it lacks them. `poll` reads the status with logs (queue
position, then the model's log lines, which often carry its step counter) and, once the
request is COMPLETED, fetches the result: fal reports a failed request only there, as an
error status with its `detail`. `cancel` is best effort.
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
    billed_units,
    looks_like_policy,
    reason_of,
)
from generations.rendering.hosted.routes import Job

# Owners whose model ids carry one more path part before the app (fal_client's AppId).
NAMESPACES = ("workflows", "comfy")
# The result's header that says how many units fal bills for the request (fal's docs:
# "Define billable units"); the route's `usd_per_unit` prices one.
BILLABLE_UNITS = "x-fal-billable-units"
# fal's error `type` for a refused prompt, image or output.
POLICY_TYPE = "content_policy_violation"
# Log lines that tell how far the model is: "step 3/25", "45%", tqdm's " 45%|###  | 9/20".
STEPS_RE = re.compile(r"(\d+)\s*/\s*(\d+)")
PERCENT_RE = re.compile(r"(\d{1,3}(?:\.\d+)?)\s*%")
MAX_DETAIL_CHARS = 200


def app_path(model_id: str) -> str:
    """`owner/app` of a model id: the part the status, result and cancel URLs use."""
    parts = model_id.strip("/").split("/")
    return "/".join(parts[: 3 if parts[0] in NAMESPACES else 2])


def progress_of(message: str) -> float | None:
    if match := PERCENT_RE.search(message):
        return min(100.0, float(match[1]))
    if (match := STEPS_RE.search(message)) and int(match[2]) > 0:
        return min(100.0, 100.0 * int(match[1]) / int(match[2]))
    return None


def error_of(http: ProviderHTTP, response: requests.Response) -> tuple[bool, bool, str]:
    """(policy?, typed?, reason) from a fal error body: `detail` is a list of
    {loc, msg, type} for model and validation errors, a plain string elsewhere."""
    try:
        data = http.json(response)
    except Transient:
        return False, False, reason_of(response)
    detail = data.get("detail")
    if not isinstance(detail, list):
        text = str(detail or data.get("error") or reason_of(response))
        return looks_like_policy(text), "error_type" in data, text
    policy, parts = False, []
    for item in detail:
        if not isinstance(item, dict):
            parts.append(str(item))
            continue
        policy = policy or item.get("type") == POLICY_TYPE
        loc = ".".join(str(p) for p in item.get("loc") or () if p != "body")
        msg = str(item.get("msg") or item.get("type") or "invalid")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return policy, True, "; ".join(parts) or reason_of(response)


class FalEngine:
    name: ClassVar[str] = "fal"

    def __init__(self, base_url: str, token: str) -> None:
        self.http = ProviderHTTP("fal", base_url, {"Authorization": f"Key {token}"}, secret=token)

    @classmethod
    def from_settings(cls, key: str | None = None) -> FalEngine:
        """Calling with `key`, one of the pool FAL_KEY holds (None: its first)."""
        if key is None:
            key = next(iter(split_keys(settings.FAL_KEY)), "")
        return cls(settings.FAL_QUEUE_URL, key)

    def _url(self, given: object, fallback: str) -> str:
        # The key rides on every call, so only URLs on the queue host itself are followed.
        if isinstance(given, str) and given.startswith(self.http.base_url + "/"):
            return given
        return self.http.url(fallback)

    def submit(self, job: Job) -> dict[str, Any]:
        response = self.http.call(
            "POST", job.upstream_model, json=job.input, expect=frozenset({400, 422})
        )
        if not response.ok:
            policy, _, reason = error_of(self.http, response)
            raise self.http.fail("content_policy" if policy else "upstream_rejected", reason)
        data = self.http.json(response)
        request_id = data.get("request_id")
        if not isinstance(request_id, str) or not request_id:
            raise Transient("fal: the submit answer carries no request_id")
        base = f"{app_path(job.upstream_model)}/requests/{request_id}"
        return {
            "request_id": request_id,
            "status_url": self._url(data.get("status_url"), f"{base}/status"),
            "response_url": self._url(data.get("response_url"), base),
            "cancel_url": self._url(data.get("cancel_url"), f"{base}/cancel"),
        }

    def poll(self, job: Job, handle: dict[str, Any]) -> Pending | Done:
        data = self.http.json(self.http.call("GET", handle["status_url"], params={"logs": "1"}))
        status = data.get("status")
        if status == "IN_QUEUE":
            position = data.get("queue_position")
            if not isinstance(position, int):
                return Pending(detail="in queue")
            return Pending(queue_position=position, detail=f"in queue, position {position}")
        if status == "IN_PROGRESS":
            logs = data.get("logs") or []
            messages = [str(e["message"]) for e in logs if isinstance(e, dict) and e.get("message")]
            progress = next(
                (p for m in reversed(messages) if (p := progress_of(m)) is not None), None
            )
            detail = messages[-1][:MAX_DETAIL_CHARS] if messages else "in progress"
            return Pending(progress=progress, detail=detail)
        if status == "COMPLETED":
            return self._result(handle["response_url"])
        raise Transient(f"fal: unexpected request status {str(status)[:40]!r}")

    def _result(self, url: str) -> Done:
        response = self.http.call("GET", url, expect=frozenset({400, 422, 500, 502, 503, 504}))
        if response.status_code >= 400:
            policy, typed, reason = error_of(self.http, response)
            if policy:
                raise self.http.fail("content_policy", reason)
            if response.status_code < 500:
                raise self.http.fail("upstream_rejected", reason)
            # A 5xx is the job's own failure when fal says so (a typed error, or
            # X-Fal-Retryable: false); a bare gateway error is worth asking again.
            retryable = response.headers.get("X-Fal-Retryable", "").lower()
            if typed and retryable == "true":
                # The job itself failed, and fal says the same request may succeed: reading
                # the result again would only repeat the failure, so submit it again.
                raise Transient(f"fal: {reason_of(response)}", resubmit=True)
            if retryable == "true" or (not typed and retryable != "false"):
                raise Transient(f"fal: {reason_of(response)}")
            raise self.http.fail("upstream_failed", reason)
        data = self.http.json(response)
        video = data.get("video")
        if isinstance(video, list):
            # Video-to-audio models (Mirelo SFX) answer one file per sample: the first.
            video = video[0] if video else None
        video_url = video.get("url") if isinstance(video, dict) else None
        if not isinstance(video_url, str) or not video_url:
            raise EngineError("upstream_failed", "The fal provider returned no video.")
        seed = data.get("seed")
        return Done(
            video_url,
            seed=seed if isinstance(seed, int) else None,
            billed_units=billed_units(response.headers.get(BILLABLE_UNITS)),
        )

    def cancel(self, job: Job, handle: dict[str, Any]) -> None:
        # 202 CANCELLATION_REQUESTED, 400 ALREADY_COMPLETED and 404 NOT_FOUND all end it; an
        # answer cut short (malformed JSON) is a glitch, so Transient: asked again.
        response = self.http.call("PUT", handle["cancel_url"], expect=frozenset({400, 404}))
        if response.ok:
            self.http.json(response)

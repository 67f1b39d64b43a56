"""OpenAI videos API (Sora 2): create, retrieve, download content.

`POST /videos` answers a video object (`status` queued -> in_progress -> completed or
failed, with an integer `progress`); `GET /videos/{id}` polls it; the MP4 is at
`GET /videos/{id}/content?variant=video` behind the same Bearer key, so `Done` carries that
header for the downloader. An input image goes as a multipart file upload (the encoding
every SDK supports); without one the body is JSON. Plain `requests` through ProviderHTTP:
this module must not need the `openai` SDK (whose package name it shadows here).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

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
)
from generations.rendering.hosted.routes import ImageInput

if TYPE_CHECKING:
    from generations.rendering.hosted.routes import Job

PROVIDER = "openai"
# 4xx statuses whose error envelope we read ourselves (the rest: ProviderHTTP).
READ_STATUS = frozenset({400, 401, 403, 404})
# A 429 is a rate limit (wait and retry) unless the account has no quota left: then no
# retry can succeed until an operator adds credit.
OUT_OF_QUOTA = "insufficient_quota"
# Error codes OpenAI uses for prompts or images its moderation refused.
POLICY_CODES = frozenset({"moderation_blocked", "sentinel_block", "content_policy_violation"})
EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}


class OpenAIEngine:
    name: ClassVar[str] = PROVIDER

    def __init__(self, base_url: str, key: str) -> None:
        self.key = key
        self.http = ProviderHTTP(PROVIDER, base_url, {"Authorization": f"Bearer {key}"}, secret=key)

    @classmethod
    def from_settings(cls, key: str | None = None) -> OpenAIEngine:
        """Calling with `key`, one of the pool OPENAI_API_KEY holds (None: its first)."""
        if key is None:
            key = next(iter(split_keys(settings.OPENAI_API_KEY)), "")
        return cls(settings.OPENAI_BASE_URL, key)

    # --- protocol -------------------------------------------------------------------------

    def submit(self, job: Job) -> dict[str, Any]:
        fields: dict[str, Any] = {"model": job.upstream_model, **job.input}
        image = fields.pop("input_reference", None)
        if isinstance(image, ImageInput):
            upload = (f"reference{EXTENSIONS.get(image.mime, '')}", image.data, image.mime)
            data = {key: str(value) for key, value in fields.items()}
            video = self._call("POST", "videos", data=data, files={"input_reference": upload})
        else:
            if isinstance(image, str):  # a map that sends a URL: the JSON form takes it so
                fields["input_reference"] = {"image_url": image}
            video = self._call("POST", "videos", json=fields)
        video_id = video.get("id")
        if not isinstance(video_id, str) or not video_id:
            raise Transient(f"{PROVIDER}: the create response has no video id")
        return {"id": video_id}

    def poll(self, job: Job, handle: dict[str, Any]) -> Pending | Done:
        path = f"videos/{quote(str(handle['id']), safe='')}"
        video = self._call("GET", path)
        status = video.get("status")
        if status in ("queued", "in_progress"):
            progress = video.get("progress")
            if not isinstance(progress, int | float) or isinstance(progress, bool):
                progress = None
            return Pending(progress=progress, detail=str(status))
        if status == "completed":
            return Done(
                self.http.url(f"{path}/content?variant=video"),
                headers={"Authorization": f"Bearer {self.key}"},
            )
        if status == "failed":
            error = as_object(video.get("error"))
            code = str(error.get("code") or "")
            text = self.http.redact(str(error.get("message") or code or "no reason given"))
            policy = code in POLICY_CODES or looks_like_policy(f"{code} {text}")
            code = "content_policy" if policy else "upstream_failed"
            raise self.http.fail(code, text)
        # An unknown status is a response we cannot read: retry until the deadline.
        raise Transient(f"{PROVIDER}: unexpected video status {status!r}")

    def cancel(self, job: Job, handle: dict[str, Any]) -> None:
        # OpenAI has no cancel for videos; deleting removes the job and its assets upstream.
        # A 404 means it is already gone.
        path = f"videos/{quote(str(handle['id']), safe='')}"
        response = self.http.call("DELETE", path, expect=READ_STATUS)
        if not response.ok and response.status_code != 404:
            raise self._error(response)

    # --- HTTP -----------------------------------------------------------------------------

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self.http.call(method, path, expect=READ_STATUS | {429}, **kwargs)
        if response.status_code == 429:
            raise self._too_many(response)
        if not response.ok:
            raise self._error(response)
        return self.http.json(response)

    def _too_many(self, response: requests.Response) -> Exception:
        error = _envelope(response)
        if OUT_OF_QUOTA in (error.get("code"), error.get("type")):
            return EngineError(
                "upstream_quota",
                f"The {PROVIDER} account of this server has no quota left ({OUT_OF_QUOTA}); "
                "an operator must check its plan and billing.",
            )
        return self.http.transient(response)

    def _error(self, response: requests.Response) -> EngineError:
        """OpenAI's `{"error": {message, type, param, code}}` as an EngineError."""
        error = _envelope(response)
        message = self.http.redact(str(error.get("message") or reason_of(response)))
        code = str(error.get("code") or error.get("type") or f"HTTP {response.status_code}")
        if response.status_code in (401, 403):
            # 401 bodies quote part of the key; the code alone says enough.
            return EngineError(
                "upstream_auth",
                f"The {PROVIDER} provider refused this server's credentials ({code}); "
                "an operator must check the API key.",
            )
        if code in POLICY_CODES or looks_like_policy(message):
            return self.http.fail("content_policy", message)
        param = error.get("param")
        where = f" (parameter `{param}`)" if param else ""
        return self.http.fail("upstream_rejected", f"{message}{where}")


def _envelope(response: requests.Response) -> dict[str, Any]:
    """The `error` object of OpenAI's `{"error": {message, type, param, code}}`, or {}."""
    try:
        return as_object(as_object(response.json()).get("error"))
    except ValueError:
        return {}

"""A fake OpenAI videos API (Sora 2): create, retrieve, download content, delete.

It follows the documented protocol (see docs/providers.md section 4): `POST
/v1/videos` takes JSON or multipart/form-data (with `input_reference` as an image file) and
answers the video object; each `GET /v1/videos/{id}` advances it queued -> in_progress
(progress rising) -> completed after `polls` polls; `GET /v1/videos/{id}/content` answers
the MP4 once completed and 404 before. Errors use the `{"error": {message, type, param,
code}}` envelope, with the parameter checks of the real API (seconds "4"/"8"/"12", the
listed sizes).

Per-job behaviour comes from words in the prompt (`policy_word`: 400 moderation_blocked at
create; `late_policy_word`: fails with moderation_blocked; `fail_word`: fails with an
internal error; `stuck_word`: never finishes); the rest is set on the fake (`polls`,
`expire_results`; `rate_limited`: the next N calls get a 429 with `retry-after`;
`out_of_quota`: every call gets the 429 `insufficient_quota` of an account without credit).
"""

from __future__ import annotations

import email
import email.policy
import re
import tempfile
import time
import uuid
from functools import cache
from pathlib import Path
from typing import Any

from tests.fakeupstream import FakeUpstream, Faults, Reply, Request, make_mp4

PREFIX = "/v1"
SIZES = {
    "sora-2": ("720x1280", "1280x720"),
    "sora-2-pro": ("720x1280", "1280x720", "1024x1792", "1792x1024"),
}
SECONDS = ("4", "8", "12")
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")
FIELDS = {"model", "prompt", "seconds", "size", "input_reference"}
VIDEO = re.compile(rf"{PREFIX}/videos/(video_[0-9a-f]+)(/content)?")


@cache
def result_video() -> bytes:
    """The MP4 every finished job returns, made once per test process."""
    with tempfile.TemporaryDirectory() as tmp:
        return make_mp4(Path(tmp) / "sora.mp4", audio=True)


def api_error(
    status: int,
    message: str,
    param: str | None = None,
    code: str | None = None,
    kind: str = "invalid_request_error",
    **headers: str,
) -> Reply:
    error = {"message": message, "type": kind, "param": param, "code": code}
    return Reply.json(status, {"error": error}, **headers)


def parse_form(req: Request) -> dict[str, Any]:
    """multipart/form-data as {name: str value, or (filename, mime, bytes) for files}."""
    head = f"Content-Type: {req.headers.get('content-type', '')}\r\n\r\n".encode()
    message = email.message_from_bytes(head + req.body, policy=email.policy.HTTP)
    form: dict[str, Any] = {}
    for part in message.iter_parts():
        name = str(part.get_param("name", header="content-disposition"))
        data = part.get_payload(decode=True)
        assert isinstance(data, bytes)
        filename = part.get_filename()
        form[name] = (filename, part.get_content_type(), data) if filename else data.decode()
    return form


class FakeOpenAI(FakeUpstream):
    def __init__(
        self, faults: Faults | None = None, *, key: str = "sk-test-openai-key", polls: int = 2
    ) -> None:
        super().__init__(faults)
        self.key = key
        self.polls = polls
        self.policy_word = "forbidden"
        self.late_policy_word = "gory"
        self.fail_word = "crash"
        self.stuck_word = "forever"
        self.expire_results = False
        self.rate_limited = 0
        self.out_of_quota = False
        self.videos: dict[str, dict[str, Any]] = {}  # id -> video object + "_polls", "_prompt"
        self.uploads: dict[str, tuple[str, str, bytes]] = {}  # id -> input_reference file

    def handle(self, req: Request) -> Reply:
        auth = req.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            return api_error(
                401,
                "You didn't provide an API key. You need to provide your API "
                "key in an Authorization header using Bearer auth.",
            )
        if auth.removeprefix("Bearer ") != self.key:
            given = auth.removeprefix("Bearer ")
            masked = f"{given[:3]}{'*' * max(0, len(given) - 7)}{given[-4:]}"
            return api_error(
                401,
                f"Incorrect API key provided: {masked}. You can find your API "
                "key at https://platform.openai.com/account/api-keys.",
                code="invalid_api_key",
            )
        if self.out_of_quota:
            return api_error(
                429,
                "You exceeded your current quota, please check your plan and billing details.",
                code="insufficient_quota",
                kind="insufficient_quota",
            )
        if self.rate_limited:
            self.rate_limited -= 1
            return api_error(
                429,
                "Rate limit reached for sora-2 on requests per minute (RPM).",
                code="rate_limit_exceeded",
                kind="requests",
                **{"retry-after": "20", "x-ratelimit-remaining-requests": "0"},
            )
        if req.path == f"{PREFIX}/videos" and req.method == "POST":
            return self.create(req)
        match = VIDEO.fullmatch(req.path)
        video = self.videos.get(match.group(1)) if match else None
        if match is None or video is None:
            return api_error(
                404, f"Video {req.path.rsplit('/', 1)[-1]!r} not found.", code="video_not_found"
            )
        if match.group(2) and req.method == "GET":
            return self.content(req, video)
        if req.method == "GET":
            return Reply.json(200, self.advance(video))
        if req.method == "DELETE":
            del self.videos[video["id"]]
            return Reply.json(200, {"id": video["id"], "deleted": True, "object": "video.deleted"})
        return api_error(405, "Method not allowed.")

    def create(self, req: Request) -> Reply:
        ctype = req.headers.get("content-type", "")
        try:
            body = parse_form(req) if ctype.startswith("multipart/form-data") else req.json()
        except ValueError:
            return api_error(400, "We could not parse the JSON body of your request.")
        for name in body:
            if name not in FIELDS:
                return api_error(400, f"Unknown parameter: '{name}'.", name, "unknown_parameter")
        model, seconds, size = (
            body.get("model", "sora-2"),
            body.get("seconds", "4"),
            body.get("size", "720x1280"),
        )
        if model not in SIZES:
            return api_error(
                400,
                f"Invalid value: '{model}'. Supported values are: 'sora-2' and 'sora-2-pro'.",
                "model",
                "invalid_value",
            )
        if not isinstance(body.get("prompt"), str) or not body["prompt"]:
            return api_error(
                400, "Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter"
            )
        if not isinstance(seconds, str):
            return api_error(
                400,
                "Invalid type for 'seconds': expected one of '4', '8', or "
                "'12', but got a number instead.",
                "seconds",
                "invalid_type",
            )
        if seconds not in SECONDS:
            return api_error(
                400,
                f"Invalid value: '{seconds}'. Supported values are: '4', '8', and '12'.",
                "seconds",
                "invalid_value",
            )
        if size not in SIZES[model]:
            return api_error(
                400,
                f"Invalid value: '{size}'. Supported values are: {', '.join(SIZES[model])}.",
                "size",
                "invalid_value",
            )
        reference = body.get("input_reference")
        if isinstance(reference, tuple) and reference[1] not in IMAGE_TYPES:
            return api_error(
                400,
                f"Invalid file 'input_reference': unsupported mimetype "
                f"('{reference[1]}'). Supported file formats are 'image/jpeg', "
                "'image/png', and 'image/webp'.",
                "input_reference",
                "unsupported_file",
            )
        if self.policy_word in body["prompt"].lower():
            return api_error(
                400, "Your request was blocked by our moderation system.", code="moderation_blocked"
            )
        video_id = f"video_{uuid.uuid4().hex}{uuid.uuid4().hex[:16]}"
        if isinstance(reference, tuple):
            self.uploads[video_id] = reference
        video = {
            "id": video_id,
            "object": "video",
            "model": model,
            "status": "queued",
            "progress": 0,
            "created_at": int(time.time()),
            "completed_at": None,
            "expires_at": None,
            "seconds": seconds,
            "size": size,
            "remixed_from_video_id": None,
            "error": None,
        }
        self.videos[video_id] = {**video, "_polls": 0, "_prompt": body["prompt"].lower()}
        return Reply.json(200, video)

    def advance(self, video: dict[str, Any]) -> dict[str, Any]:
        """One retrieve: queued on the first, in_progress with rising progress, then done."""
        video["_polls"] += 1
        polls, prompt = video["_polls"], video["_prompt"]
        if polls <= self.polls or self.stuck_word in prompt:
            video["status"] = "queued" if polls == 1 else "in_progress"
            video["progress"] = round(100 * (min(polls, self.polls) - 1) / max(self.polls, 1))
        elif video["status"] in ("queued", "in_progress"):
            video["completed_at"] = int(time.time())
            if self.late_policy_word in prompt:
                video["status"] = "failed"
                video["error"] = {
                    "code": "moderation_blocked",
                    "message": "Your video was blocked by our moderation system.",
                }
            elif self.fail_word in prompt:
                video["status"] = "failed"
                video["error"] = {
                    "code": "internal_error",
                    "message": "Video generation failed. Please try again.",
                }
            else:
                video.update(
                    status="completed", progress=100, expires_at=video["created_at"] + 86_400
                )
        return {k: v for k, v in video.items() if not k.startswith("_")}

    def content(self, req: Request, video: dict[str, Any]) -> Reply:
        variant = req.query.get("variant", ["video"])[0]
        if variant != "video":
            return api_error(
                400,
                f"Invalid value: '{variant}'. This fake serves 'video' only.",
                "variant",
                "invalid_value",
            )
        if video["status"] != "completed" or self.expire_results:
            return api_error(
                404, f"Video content for {video['id']!r} is not available.", code="video_not_found"
            )
        return Reply(200, result_video(), {"Content-Type": "video/mp4"})

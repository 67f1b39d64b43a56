"""A fake Gemini API serving Veo: predictLongRunning, operation polling, file download.

It follows the documented protocol (see docs/providers.md section 3): create
answers `{"name": "models/<model>/operations/<id>"}`; the operation answers `done: false`
with metadata for `polls` polls, then `done: true` with a generatedSamples video whose URI
is the fake's own `/v1beta/files/<id>:download?alt=media`, which wants the API key and
redirects to the base class's /files/<name>. Errors use the google.rpc.Status envelope.

An instance may carry `lastFrame` (with `image`: interpolation) or `video` (inline
`{"bytesBase64Encoded", "mimeType": "video/mp4"}`, without `image`: a video extension). An
extension's result is what the Gemini API returns: one video, the input clip followed by
`durationSeconds` more seconds (its last frame drifting on), at the input's size and rate.
`last_body` is the latest create request, as sent.

Per-job behaviour comes from words in the prompt (`policy_word`: filtered after
generation; `refuse_word`: refused at create; `fail_word`: the operation ends in an error;
`stuck_word`: never finishes); the rest is set on the fake (`polls`, `expire_results`,
`short_names`, `omit_done`, `report_progress`; `exhausted`: the next N calls get a 429 with
a RetryInfo detail).
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import tempfile
import uuid
from functools import cache
from pathlib import Path
from typing import Any

import av
import numpy as np

from generations.media.encode import Mp4Writer
from tests.fakeupstream import FakeUpstream, Faults, Reply, Request, make_mp4

PREFIX = "/v1beta"
MODELS = (
    "veo-3.0-generate-001",
    "veo-3.0-fast-generate-001",
    "veo-3.1-generate-preview",
    "veo-3.1-fast-generate-preview",
)
CREATE = re.compile(rf"{PREFIX}/models/([^/:]+):predictLongRunning")
OPERATION = re.compile(rf"{PREFIX}/((?:models/[^/:]+/)?operations/([0-9a-f]+))(:cancel)?")
DOWNLOAD = re.compile(rf"{PREFIX}/files/([0-9a-f]+):download")


@cache
def result_video() -> bytes:
    """The MP4 every finished job returns, made once per test process."""
    with tempfile.TemporaryDirectory() as tmp:
        return make_mp4(Path(tmp) / "veo.mp4", audio=True)


def extended_video(clip: bytes, seconds: int) -> bytes:
    """`clip` followed by `seconds` more seconds: its last frame, sliding on sideways."""
    with av.open(io.BytesIO(clip), "r") as container:
        stream = container.streams.video[0]
        fps = round(float(stream.average_rate or 24))
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    last = frames[-1]
    more = [np.roll(last, 2 * (i + 1), axis=1) for i in range(seconds * fps)]
    everything = frames + more
    height, width = last.shape[:2]
    sound = np.zeros((48_000 * len(everything) // fps, 2), dtype=np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "extended.mp4"
        with Mp4Writer(path, width, height, fps, sound) as writer:
            for frame in everything:
                writer.write(np.ascontiguousarray(frame))
        return path.read_bytes()


def rpc_error(
    code: int, state: str, message: str, *details: dict[str, Any], **headers: str
) -> Reply:
    error = {"code": code, "message": message, "status": state}
    if details:
        error["details"] = list(details)
    return Reply.json(code, {"error": error}, **headers)


def invalid(message: str) -> Reply:
    return rpc_error(400, "INVALID_ARGUMENT", message)


class FakeGemini(FakeUpstream):
    def __init__(
        self, faults: Faults | None = None, *, key: str = "gm-test-key", polls: int = 2
    ) -> None:
        super().__init__(faults)
        self.key = key
        self.polls = polls
        self.policy_word = "forbidden"
        self.refuse_word = "banned"
        self.fail_word = "crash"
        self.stuck_word = "forever"
        self.fail_error = {
            "code": 13,
            "message": "Internal error encountered.",
            "status": "INTERNAL",
        }
        self.expire_results = False
        self.short_names = False
        self.omit_done = False
        self.report_progress = True
        self.exhausted = 0
        # id -> {"name", "prompt", "polls", "video": the input clip and seconds, if any}
        self.operations: dict[str, dict[str, Any]] = {}
        self.last_body: dict[str, Any] = {}
        self.downloads: dict[str, str] = {}  # file id -> name under /files/

    def handle(self, req: Request) -> Reply:
        if (match := DOWNLOAD.fullmatch(req.path)) and req.method == "GET":
            return self.download(req, match.group(1))
        given = req.headers.get("x-goog-api-key")
        if not given:
            return rpc_error(
                403,
                "PERMISSION_DENIED",
                "Method doesn't allow unregistered callers (callers without "
                "established identity). Please use API Key or other form of API "
                "consumer identity to call this API.",
            )
        if given != self.key:
            return rpc_error(
                400,
                "INVALID_ARGUMENT",
                "API key not valid. Please pass a valid API key.",
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                },
            )
        if self.exhausted:
            self.exhausted -= 1
            return rpc_error(
                429,
                "RESOURCE_EXHAUSTED",
                "Resource has been exhausted (e.g. check quota).",
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"},
            )
        if (match := CREATE.fullmatch(req.path)) and req.method == "POST":
            return self.create(req, match.group(1))
        if (match := OPERATION.fullmatch(req.path)) and match.group(2) in self.operations:
            if match.group(3):  # the API documents no cancel for Veo operations
                return rpc_error(404, "NOT_FOUND", "Method not found.")
            if req.method == "GET":
                return self.operation(match.group(2))
        return rpc_error(404, "NOT_FOUND", f"Requested entity was not found: {req.path}")

    def create(self, req: Request, model: str) -> Reply:
        if model not in MODELS:
            return rpc_error(
                404,
                "NOT_FOUND",
                f"models/{model} is not found for API version "
                "v1beta, or is not supported for predictLongRunning.",
            )
        try:
            body = req.json()
        except ValueError:
            return invalid("Invalid JSON payload received.")
        instances = body.get("instances")
        if not isinstance(instances, list) or len(instances) != 1:
            return invalid("* instances: exactly one instance is required.")
        instance, params = instances[0], body.get("parameters", {})
        self.last_body = body
        problem = self.validate(instance, params)
        if problem:
            return invalid(problem)
        prompt = instance["prompt"]
        if self.refuse_word in prompt.lower():
            return invalid(
                "The prompt could not be submitted. This prompt contains sensitive "
                "words that violate Google's Responsible AI practices."
            )
        op_id = uuid.uuid4().hex[:12]
        name = f"operations/{op_id}" if self.short_names else f"models/{model}/operations/{op_id}"
        self.operations[op_id] = {"name": name, "prompt": prompt.lower(), "polls": 0}
        if "video" in instance:
            clip = base64.b64decode(instance["video"]["bytesBase64Encoded"])
            self.operations[op_id]["extend"] = (clip, params.get("durationSeconds", 8))
        return Reply.json(200, {"name": name})

    @staticmethod
    def validate(instance: Any, params: Any) -> str:
        if not isinstance(instance, dict) or not isinstance(instance.get("prompt"), str):
            return "* instances[0].prompt: a prompt is required."
        unknown = set(instance) - {"prompt", "image", "lastFrame", "referenceImages", "video"}
        if unknown:
            return f"* instances[0]: unknown fields {sorted(unknown)}."
        if "lastFrame" in instance and "image" not in instance:
            return "* instances[0].lastFrame: a last frame needs a first frame (image)."
        if "video" in instance and ("image" in instance or "lastFrame" in instance):
            return "* instances[0].video: a video extension takes no image."
        for field, kind in (("image", "image/"), ("lastFrame", "image/"), ("video", "video/")):
            if field not in instance:
                continue
            media = instance[field]
            if not isinstance(media, dict) or not str(media.get("mimeType", "")).startswith(kind):
                return f"* instances[0].{field}.mimeType: a {kind}* MIME type is required."
            try:
                base64.b64decode(media.get("bytesBase64Encoded", ""), validate=True)
            except (binascii.Error, ValueError):
                return f"* instances[0].{field}.bytesBase64Encoded: invalid base64."
        if not isinstance(params, dict):
            return "* parameters: must be an object."
        if params.get("aspectRatio", "16:9") not in ("16:9", "9:16"):
            return f"Aspect ratio {params['aspectRatio']} is not supported; use 16:9 or 9:16."
        if params.get("resolution", "720p") not in ("720p", "1080p"):
            return f"Resolution {params['resolution']} is not supported; use 720p or 1080p."
        duration = params.get("durationSeconds", 8)
        if type(duration) is not int or duration not in (4, 6, 8):
            return "durationSeconds must be 4, 6 or 8."
        if params.get("resolution") == "1080p" and duration != 8:
            return "1080p resolution requires durationSeconds 8."
        return ""

    def operation(self, op_id: str) -> Reply:
        op = self.operations[op_id]
        op["polls"] += 1
        prompt = op["prompt"]
        if self.stuck_word in prompt or op["polls"] <= self.polls:
            # proto3 JSON may leave out a false `done`; `omit_done` sends it that way.
            reply: dict[str, Any] = (
                {"name": op["name"]} if self.omit_done else {"name": op["name"], "done": False}
            )
            if self.report_progress:
                done = min(op["polls"], self.polls)
                reply["metadata"] = {
                    "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta."
                    "PredictLongRunningMetadata",
                    "progressPercent": round(100 * (done - 1) / max(self.polls, 1)),
                }
            return Reply.json(200, reply)
        reply = {"name": op["name"], "done": True}
        if self.fail_word in prompt:
            reply["error"] = self.fail_error
            return Reply.json(200, reply)
        videos: dict[str, Any]
        if self.policy_word in prompt:
            videos = {
                "raiMediaFilteredCount": 1,
                "raiMediaFilteredReasons": [
                    "Your video was filtered because it may violate our safety policies."
                ],
            }
        else:
            file_id = self.result_file(op_id)
            uri = f"{self.url}{PREFIX}/files/{file_id}:download?alt=media"
            videos = {"generatedSamples": [{"video": {"uri": uri}}]}
        reply["response"] = {
            "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta."
            "PredictLongRunningResponse",
            "generateVideoResponse": videos,
        }
        return Reply.json(200, reply)

    def result_file(self, op_id: str) -> str:
        """The operation's file id (its own id here), stored under /files/ once."""
        if op_id not in self.downloads:
            extend = self.operations[op_id].get("extend")
            video = extended_video(*extend) if extend else result_video()
            self.downloads[op_id] = self.add_file(video).rsplit("/", 1)[1]
        return op_id

    def download(self, req: Request, file_id: str) -> Reply:
        if req.headers.get("x-goog-api-key") != self.key:
            return rpc_error(403, "PERMISSION_DENIED", "The caller does not have permission")
        if file_id not in self.downloads or self.expire_results:
            return rpc_error(404, "NOT_FOUND", "Requested entity was not found.")
        return Reply(302, b"", {"Location": f"{self.url}/files/{self.downloads[file_id]}"})

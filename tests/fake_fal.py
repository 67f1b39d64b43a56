"""A fake fal.ai queue API (https://queue.fal.run), faithful to the documented protocol.

Submit is `POST /<full model id>`; status, result and cancel live under the owner/app only
(`/fal-ai/kling-video/requests/<id>[/status|/cancel]`), and the submit answer says so, so a
client that builds its own URLs from the full id gets 404s here. Status answers 202 while
IN_QUEUE (the position falls poll by poll) and IN_PROGRESS (with "step k/n" logs), then 200
COMPLETED; the result is the model output itself, its video served from this fake's /files/.

Kling's image-to-video takes an optional `tail_image_url` (its other endpoints refuse it),
and the first-last-frame endpoints require both of their images (END_FRAME_FIELDS).

Video-to-audio (the audio step): `mirelo-ai/sfx-v1.5/video-to-video` takes `video_url`
(required) and optionally `text_prompt`, `num_samples`, `seed`, `duration`, `start_offset`
(anything else is refused, as fal's schema does), and answers `{"video": [{"url",
"content_type", "file_name", "file_size"}]}`: one file per sample. `fal-ai/mmaudio-v2` takes
`video_url` and `prompt` (both required) and answers `{"video": {...}}`. Their videos have
a SOUND_HZ sine as their soundtrack and frames with a full blue channel, so a test can tell
that sound (and those frames) from any other. `audio_fail`: the audio models whose submits
answer 503 (a transient failure, every time).

Knobs (attributes, changeable between requests): `queue_polls`/`run_polls` (how slow a job
is), `never_finish`, `policy_word` + `policy_on` ("submit": 422 content_policy_violation at
once; "result": the request completes and its result is the 422), `omit_urls` (a bare
submit answer), `expire_results`, `result_reply` (the result every request returns instead),
`script`: replies returned, in order, before anything else (None: answer normally), and
`billable_units`: when set, the result carries it in `x-fal-billable-units`, the header fal
bills a request by (None: the header is absent, as for models priced per output).

Key pools: `keys` are the valid keys (`key` alone by default), each its own account, so a
request is found only with the key that submitted it (404 otherwise); a key put in `refused`
answers 401 from then on. In flight: requests submitted and not yet ended for us (their
result read, or canceled); `in_flight` counts them now and `max_in_flight` the most ever at
once.
Fault modes and per-kind call counts (`received`: "submit", "status", "result", "cancel",
"file") come from tests/fakeupstream.py.
"""

from __future__ import annotations

import re
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.fakeupstream import FakeUpstream, Faults, Reply, Request, make_mp4

KEY = "fal-test-key"
REQUEST_RE = re.compile(r"^/(?P<app>[^/]+/[^/]+)/requests/(?P<id>[^/]+)(?P<tail>/status|/cancel)?$")
# Models that take an image (and require it), and the ones whose duration is "5" or "10".
IMAGE_MODELS = ("image-to-video", "fal-ai/framepack")
KLING = "fal-ai/kling-video/"
# First-last-frame endpoints and the image fields each requires (their model pages).
# The audio step's models, the input fields each documents, and the one it requires.
MIRELO = "mirelo-ai/sfx-v1.5/video-to-video"
MMAUDIO = "fal-ai/mmaudio-v2"
AUDIO_FIELDS = {
    MIRELO: {"video_url", "text_prompt", "num_samples", "seed", "duration", "start_offset"},
    MMAUDIO: {"video_url", "prompt", "negative_prompt", "seed", "num_steps", "duration",
              "cfg_strength", "mask_away_clip"},
}  # fmt: skip
SOUND_HZ = 440.0
END_FRAME_FIELDS = {
    "fal-ai/framepack/flf2v": ("image_url", "end_image_url"),
    "fal-ai/veo3.1/first-last-frame-to-video": ("first_frame_url", "last_frame_url"),
}


@dataclass
class FalJob:
    id: str
    model: str
    app: str
    input: dict[str, Any]
    refuse: bool
    never_finish: bool
    polls: int = 0
    state: str = "IN_QUEUE"
    canceled: bool = False
    video_url: str = ""
    logs: list[dict[str, str]] = field(default_factory=list)
    key: str = ""  # the key that submitted it
    ended: bool = False  # its result was read (or it was canceled): no longer in flight


def problem(status: int, loc: list[str], msg: str, type_: str, **extra: Any) -> Reply:
    """fal's error shape: {"detail": [{loc, msg, type, url, ...}]}."""
    item = {"loc": loc, "msg": msg, "type": type_, "url": f"https://docs.fal.ai/errors/#{type_}"}
    return Reply.json(status, {"detail": [{**item, **extra}]})


class FakeFal(FakeUpstream):
    def __init__(
        self, faults: Faults | None = None, key: str = KEY, keys: Sequence[str] = ()
    ) -> None:
        super().__init__(faults)
        self.key = key
        self.keys = list(keys) or [key]
        self.refused: set[str] = set()
        self.max_in_flight = 0
        self.queue_polls = 1
        self.run_polls = 1
        self.never_finish = False
        self.policy_word = "forbidden"
        self.policy_on = "submit"
        self.omit_urls = False
        self.expire_results = False
        self.result_reply: Reply | None = None
        self.script: list[Reply | None] = []
        self.billable_units: str | None = None
        self.jobs: dict[str, FalJob] = {}
        with tempfile.TemporaryDirectory() as tmp:
            self.video = make_mp4(Path(tmp) / "out.mp4")
            self.sound_video = make_mp4(Path(tmp) / "sfx.mp4", frames=48, audio=True,
                                        tone_hz=SOUND_HZ, blue=255)  # fmt: skip
        self.audio_fail: set[str] = set()

    def kind_of(self, req: Request) -> str:
        if req.path.startswith("/files/"):
            return "file"
        match = REQUEST_RE.match(req.path)
        if match is None:
            return "submit" if req.method == "POST" else "other"
        return {"/status": "status", "/cancel": "cancel"}.get(match["tail"] or "", "result")

    def handle(self, req: Request) -> Reply:
        if self.script and (scripted := self.script.pop(0)) is not None:
            return scripted
        key = self.key_of(req)
        if key is None:
            return Reply.json(401, {"detail": "Invalid Key authorization header."})
        match = REQUEST_RE.match(req.path)
        if req.method == "POST" and not match:
            return self.submit(req, key)
        job = self.jobs.get(match["id"]) if match else None
        if match is None or job is None or job.app != match["app"] or job.key != key:
            return Reply.json(404, {"detail": "Request not found"})
        if req.method == "GET" and match["tail"] == "/status":
            return self.status(job, logs=req.query.get("logs") == ["1"])
        if req.method == "GET" and not match["tail"]:
            return self.result(job)
        if req.method == "PUT" and match["tail"] == "/cancel":
            if job.state == "COMPLETED":
                return Reply.json(400, {"status": "ALREADY_COMPLETED"})
            job.canceled = job.ended = True
            return Reply.json(202, {"status": "CANCELLATION_REQUESTED"})
        return Reply.json(405, {"detail": "Method Not Allowed"})

    def key_of(self, req: Request) -> str | None:
        """The valid key the request carries, None if it carries none."""
        given = req.headers.get("authorization", "").removeprefix("Key ")
        return given if given in self.keys and given not in self.refused else None

    @property
    def in_flight(self) -> int:
        return sum(not job.ended for job in self.jobs.values())

    def urls(self, job: FalJob) -> dict[str, str]:
        base = f"{self.url}/{job.app}/requests/{job.id}"
        return {
            "response_url": base,
            "status_url": f"{base}/status",
            "cancel_url": f"{base}/cancel",
        }

    def submit(self, req: Request, key: str = KEY) -> Reply:
        model = req.path.strip("/")
        try:
            data = req.json()
        except ValueError:
            data = None
        if model.count("/") < 1 or not isinstance(data, dict):
            return problem(422, ["body"], "Input should be a valid dictionary", "dict_type")
        if model in AUDIO_FIELDS:
            return self.submit_audio(model, data, key)
        prompt = data.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            return problem(422, ["body", "prompt"], "Field required", "missing")
        image = str(data.get("image_url", ""))
        if any(m in model for m in IMAGE_MODELS) and not image.startswith(("data:", "http")):
            return problem(422, ["body", "image_url"], "Field required", "missing")
        for name in END_FRAME_FIELDS.get(model, ()):
            if not str(data.get(name, "")).startswith(("data:", "http")):
                return problem(422, ["body", name], "Field required", "missing")
        tail = data.get("tail_image_url")
        if tail is not None and not (model.startswith(KLING) and model.endswith("image-to-video")):
            return problem(422, ["body", "tail_image_url"], "Extra inputs are not permitted",
                           "extra_forbidden")  # fmt: skip
        if model.startswith(KLING) and data.get("duration", "5") not in ("5", "10"):
            return problem(422, ["body", "duration"], "Input should be '5' or '10'", "one_of",
                           ctx={"expected": ["5", "10"]}, input=data.get("duration"))  # fmt: skip
        refuse = bool(self.policy_word) and self.policy_word in prompt.lower()
        if refuse and self.policy_on == "submit":
            return self.refusal()
        parts = model.split("/")
        job = FalJob(id=str(uuid.uuid4()), model=model, app="/".join(parts[:2]), input=data,
                     refuse=refuse, never_finish=self.never_finish, key=key)  # fmt: skip
        self.jobs[job.id] = job
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        answer: dict[str, Any] = {"request_id": job.id}
        if not self.omit_urls:
            answer |= {**self.urls(job), "status": "IN_QUEUE", "queue_position": self.queue_polls}
        return Reply.json(200, answer)

    def submit_audio(self, model: str, data: dict[str, Any], key: str = KEY) -> Reply:
        if model in self.audio_fail:
            return Reply.json(503, {"detail": "Service temporarily unavailable"})
        for name in sorted(set(data) - AUDIO_FIELDS[model]):
            return problem(422, ["body", name], "Extra inputs are not permitted", "extra_forbidden")
        if not str(data.get("video_url", "")).startswith(("data:video/", "http")):
            return problem(422, ["body", "video_url"], "Field required", "missing")
        if model == MMAUDIO and not data.get("prompt"):
            return problem(422, ["body", "prompt"], "Field required", "missing")
        duration = data.get("duration", 10)
        if isinstance(duration, bool) or not isinstance(duration, int | float) or duration <= 0:
            return problem(422, ["body", "duration"], "Input should be a number", "float_type")
        job = FalJob(id=str(uuid.uuid4()), model=model, app="/".join(model.split("/")[:2]),
                     input=data, refuse=False, never_finish=self.never_finish,
                     key=key)  # fmt: skip
        self.jobs[job.id] = job
        return Reply.json(200, {"request_id": job.id, **self.urls(job), "status": "IN_QUEUE",
                                "queue_position": self.queue_polls})  # fmt: skip

    def refusal(self) -> Reply:
        return problem(422, ["body", "prompt"], "The content could not be processed because it "
                       "contained material flagged by a content checker.",
                       "content_policy_violation")  # fmt: skip

    def status(self, job: FalJob, logs: bool) -> Reply:
        job.polls += 1
        if job.state != "COMPLETED":
            if job.polls <= self.queue_polls and not job.canceled:
                body = {"status": "IN_QUEUE", "queue_position": self.queue_polls - job.polls}
                return Reply.json(202, {**body, "response_url": self.urls(job)["response_url"]})
            step = job.polls - self.queue_polls
            if not job.canceled and (job.never_finish or step <= self.run_polls):
                job.state = "IN_PROGRESS"
                message = f"step {step}/{self.run_polls}" if step <= self.run_polls else "working"
                job.logs.append({"timestamp": "2025-10-01T12:00:01Z", "level": "INFO",
                                 "source": "user", "message": message})  # fmt: skip
                body = {"status": "IN_PROGRESS", "logs": job.logs if logs else None}
                return Reply.json(202, {**body, "response_url": self.urls(job)["response_url"]})
            job.state = "COMPLETED"
        return Reply.json(200, {"status": "COMPLETED", "logs": job.logs if logs else None,
                                "metrics": {"inference_time": 1.5},
                                "response_url": self.urls(job)["response_url"]})  # fmt: skip

    def result(self, job: FalJob) -> Reply:
        if job.state != "COMPLETED":
            return Reply.json(400, {"detail": "Request is still in progress"})
        job.ended = True
        if self.result_reply is not None:
            return self.result_reply
        if job.canceled:
            return Reply.json(400, {"detail": "Request was cancelled"})
        if job.refuse:
            return self.refusal()
        if job.model in AUDIO_FIELDS:
            job.video_url = job.video_url or self.add_file(self.sound_video)
            sample = {"url": job.video_url, "content_type": "video/mp4",
                      "file_name": "sfx.mp4", "file_size": len(self.sound_video)}  # fmt: skip
            return Reply.json(200, {"video": [sample] if job.model == MIRELO else sample})
        if not job.video_url:
            job.video_url = self.add_file(self.video)
        if self.expire_results:
            self.expired.add(job.video_url.rsplit("/", 1)[1])
        seed = job.input.get("seed", 42)
        video = {"url": job.video_url, "content_type": "video/mp4", "file_name": "output.mp4",
                 "file_size": len(self.video)}  # fmt: skip
        headers = {} if self.billable_units is None else {
            "x-fal-billable-units": self.billable_units
        }  # fmt: skip
        return Reply.json(200, {"video": video, "seed": seed}, **headers)

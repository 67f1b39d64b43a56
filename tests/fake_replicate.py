"""A fake Replicate predictions API, served under /v1 like https://api.replicate.com/v1.

`POST /v1/models/<owner>/<name>/predictions` ({"input": ...}) and `POST /v1/predictions`
({"version": ..., "input": ...}) answer 201 with the prediction, whose `urls` point back
here. Each `GET /v1/predictions/<id>` moves it on: `starting`, then `processing` with
tqdm-style logs, then `succeeded` with `output` a URL on this fake's /files/ (or `failed`
with Replicate's "flagged as sensitive (E005)" error when the prompt holds `policy_word`).
`POST .../cancel` cancels a running prediction and answers it. `Prefer: wait` is ignored,
which the API allows (it answers the incomplete prediction when the wait runs out).

Knobs (attributes): `starting_polls`/`run_polls` (how slow), `never_finish`, `policy_word`,
`fail_word` (failed with a plain error), `expire_results`, and `script`: replies returned, in
order, before anything else (None: answer normally).

Token pools: `tokens` are the valid tokens (`token` alone by default), each its own account,
so a prediction is found only with the token that created it (404 otherwise); a token put in
`refused` answers 401 from then on. In flight: predictions created and not yet ended for us
(read once finished, or canceled); `in_flight` counts them now, `max_in_flight` the most
ever at once.
Fault modes and per-kind call counts (`received`: "create", "get", "cancel", "file") come
from tests/fakeupstream.py.
"""

from __future__ import annotations

import re
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fakeupstream import FakeUpstream, Faults, Reply, Request, make_mp4

TOKEN = "r8_test_token"
POLICY_ERROR = (
    "The input or output was flagged as sensitive. Please try again with different inputs. (E005)"
)
KLING = "kwaivgi/kling-v2.5-turbo-pro"
CREATE_RE = re.compile(r"^/v1/models/(?P<model>[^/]+/[^/]+)/predictions$")
PREDICTION_RE = re.compile(r"^/v1/predictions/(?P<id>[^/]+)(?P<cancel>/cancel)?$")


@dataclass
class Prediction:
    id: str
    model: str
    version: str
    input: dict[str, Any]
    never_finish: bool
    polls: int = 0
    status: str = "starting"
    logs: str = ""
    output: str | None = None
    error: str | None = None
    token: str = ""  # the token that created it
    ended: bool = False  # read once finished, or canceled: no longer in flight


def invalid(field: str, description: str) -> Reply:
    return Reply.json(422, {"title": "Input validation failed", "status": 422,
                            "detail": f"- input.{field}: {description}",
                            "invalid_fields": [{"type": "invalid", "field": f"input.{field}",
                                                "description": description}]})  # fmt: skip


class FakeReplicate(FakeUpstream):
    def __init__(
        self, faults: Faults | None = None, token: str = TOKEN, tokens: Sequence[str] = ()
    ) -> None:
        super().__init__(faults)
        self.token = token
        self.tokens = list(tokens) or [token]
        self.refused: set[str] = set()
        self.max_in_flight = 0
        self.starting_polls = 1
        self.run_polls = 2
        self.never_finish = False
        self.policy_word = "forbidden"
        self.fail_word = "crash"
        self.expire_results = False
        self.script: list[Reply | None] = []
        self.predictions: dict[str, Prediction] = {}
        with tempfile.TemporaryDirectory() as tmp:
            self.video = make_mp4(Path(tmp) / "out.mp4")

    def kind_of(self, req: Request) -> str:
        if req.path.startswith("/files/"):
            return "file"
        if req.method == "POST" and (CREATE_RE.match(req.path) or req.path == "/v1/predictions"):
            return "create"
        match = PREDICTION_RE.match(req.path)
        if match is None:
            return "other"
        return "cancel" if match["cancel"] else "get"

    def handle(self, req: Request) -> Reply:
        if self.script and (scripted := self.script.pop(0)) is not None:
            return scripted
        token = req.headers.get("authorization", "").removeprefix("Bearer ")
        if token not in self.tokens or token in self.refused:
            detail = "You did not pass a valid authentication token"
            return Reply.json(401, {"title": "Unauthenticated", "status": 401, "detail": detail})
        if req.method == "POST" and (match := CREATE_RE.match(req.path)):
            return self.create(req, match["model"], "", token)
        if req.method == "POST" and req.path == "/v1/predictions":
            version = req.json().get("version") if req.body else None
            if not isinstance(version, str) or not version or ":" in version:
                return Reply.json(422, {"title": "Invalid version", "status": 422,
                                        "detail": "version must be a version id"})  # fmt: skip
            return self.create(req, "", version, token)
        match = PREDICTION_RE.match(req.path)
        prediction = self.predictions.get(match["id"]) if match else None
        if match is None or prediction is None or prediction.token != token:
            return Reply.json(404, {"title": "Not found", "status": 404, "detail": "Not found."})
        if req.method == "GET" and not match["cancel"]:
            self.advance(prediction)
            prediction.ended = prediction.status not in ("starting", "processing")
            return Reply.json(200, self.view(prediction))
        if req.method == "POST" and match["cancel"]:
            if prediction.status in ("starting", "processing"):
                prediction.status = "canceled"
                prediction.ended = True
            return Reply.json(200, self.view(prediction))
        return Reply.json(405, {"title": "Method not allowed", "status": 405})

    @property
    def in_flight(self) -> int:
        return sum(not p.ended for p in self.predictions.values())

    def create(self, req: Request, model: str, version: str, token: str = TOKEN) -> Reply:
        body = req.json()
        data = body.get("input") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            return invalid("input", "input is required")
        prompt = data.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            return invalid("prompt", "prompt is required")
        if model == KLING and data.get("duration", 5) not in (5, 10):
            return invalid("duration", "duration must be one of the following: 5, 10")
        prediction = Prediction(id=uuid.uuid4().hex[:26], model=model or "owner/model",
                                version=version or uuid.uuid4().hex, input=data,
                                never_finish=self.never_finish, token=token)  # fmt: skip
        self.predictions[prediction.id] = prediction
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        return Reply.json(201, self.view(prediction))

    def advance(self, p: Prediction) -> None:
        if p.status not in ("starting", "processing"):
            return
        p.polls += 1
        step = p.polls - self.starting_polls
        if step <= 0:
            return
        if step <= self.run_polls or p.never_finish:
            p.status = "processing"
            # tqdm redraws its bar in place: "\r 33%|###       | 1/3".
            total = self.run_polls + 1
            p.logs = p.logs or "Generating video...\n"
            p.logs += f"\r{min(100, 100 * step // total):3d}%|###       | {step}/{total}"
            return
        prompt = str(p.input["prompt"]).lower()
        if self.policy_word and self.policy_word in prompt:
            p.status, p.error = "failed", POLICY_ERROR
        elif self.fail_word and self.fail_word in prompt:
            p.status, p.error = "failed", "CUDA out of memory while decoding frames"
        else:
            p.status, p.output = "succeeded", self.add_file(self.video)
            if self.expire_results:
                self.expired.add(p.output.rsplit("/", 1)[1])

    def view(self, p: Prediction) -> dict[str, Any]:
        base = f"{self.url}/v1/predictions/{p.id}"
        return {"id": p.id, "model": p.model, "version": p.version, "input": p.input,
                "logs": p.logs, "output": p.output, "error": p.error, "status": p.status,
                "data_removed": False, "created_at": "2025-09-08T16:19:34.765994657Z",
                "urls": {"get": base, "cancel": f"{base}/cancel",
                         "stream": f"{self.url}/stream/{p.id}"}}  # fmt: skip

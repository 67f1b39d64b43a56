"""What the hosted-provider engine tests share: an input picture, and the checks that an
error names its reason and never the server's credential."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from PIL import Image

from generations.core.validation import build_spec
from generations.rendering.base import EngineError
from generations.rendering.hosted import providers, routes
from generations.rendering.hosted.base import Done, Pending, Transient


def png(width: int, height: int, color: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


def routed_job(
    provider: str,
    request: dict[str, Any],
    image: routes.ImageInput | None,
    *,
    test_mode: bool = False,
    end_image: routes.ImageInput | None = None,
    source_video: routes.VideoInput | None = None,
) -> routes.Job:
    """The job the default provider map makes of this API request; it must go to
    `provider`. (`test_mode` skips the route's narrower limits, as test keys do.) An end
    image is also put in the request, as the data: URL end_image_url it came from."""
    if end_image is not None:
        request = {**request, "end_image_url": end_image.data_url()}
    spec = build_spec(request, test_mode=test_mode)
    route = providers.route_for(request["model"], spec.mode)
    assert route is not None and route.provider == provider
    return routes.job_for(route, spec, image, end_image=end_image, source_video=source_video)


def run(engine: Any, job: routes.Job, max_polls: int = 20) -> tuple[list[Pending], Done]:
    """Submit and poll to the end: the pending states seen, and the result."""
    handle = engine.submit(job)
    seen: list[Pending] = []
    for _ in range(max_polls):
        state = engine.poll(job, handle)
        if isinstance(state, Done):
            return seen, state
        seen.append(state)
    raise AssertionError(f"not done after {max_polls} polls")


def refused(call: Callable[[], object], code: str, *, secret: str) -> EngineError:
    """`call` fails for good with `code`, and neither the error nor its message holds the
    provider credential."""
    with pytest.raises(EngineError) as info:
        call()
    assert info.value.code == code, info.value.message
    assert secret not in str(info.value) and secret not in info.value.message
    return info.value


def transient(call: Callable[[], object], *, secret: str) -> Transient:
    """`call` fails in a way worth retrying, without the credential in the error."""
    with pytest.raises(Transient) as info:
        call()
    assert secret not in str(info.value)
    return info.value


def finish(engine: Any, job: routes.Job, handle: dict[str, Any]) -> Done:
    """Poll until the fake finishes the job (20 polls at most)."""
    for _ in range(20):
        outcome = engine.poll(job, handle)
        if isinstance(outcome, Done):
            return outcome
    raise AssertionError("the fake never finished")

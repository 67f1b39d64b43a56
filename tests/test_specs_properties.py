"""Property tests of request parsing: whatever arrives, build_spec either returns a spec the
engines can render or raises a 400 that names a field. Never anything else."""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generations import catalog
from generations.core.validation import build_spec
from generations.errors import ApiError

EXAMPLES = int(os.environ.get("VIDEOGEN_PROPERTY_EXAMPLES", "300"))
FIELDS = ["model", "prompt", "image_url", "duration", "resolution", "aspect_ratio", "seed",
          "camera_fixed", "add_audio", "audio_prompt", "negative_prompt", "num_frames",
          "cfg_scale", "guidance_scale", "style", "enable_safety_checker"]  # fmt: skip
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40),
    st.sampled_from([m.key for m in catalog.MODELS]), st.sampled_from(catalog.RESOLUTIONS),
    st.sampled_from(catalog.ALL_ASPECTS), st.sampled_from(["5", "10", "-1", "true", "4k"]),
    st.sampled_from(["https://example.com/a.png", "data:image/png;base64,AAAA", "ftp://x"]),
)  # fmt: skip
bodies = st.dictionaries(st.sampled_from(FIELDS), scalars | st.lists(scalars, max_size=2))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=bodies, test_mode=st.booleans())
def test_any_body_gives_a_renderable_spec_or_a_named_400(
    body: dict[str, Any], test_mode: bool
) -> None:
    try:
        spec = build_spec(body, test_mode=test_mode)
    except ApiError as exc:
        assert exc.status == 400 and exc.message
        assert exc.field is None or exc.field in FIELDS
        return
    model = catalog.get_model(spec.model)
    assert model is not None and spec.mode in model.modes
    assert spec.duration in model.durations and spec.resolution in model.resolutions
    assert (spec.width, spec.height) == catalog.frame_size(spec.resolution, spec.aspect_ratio)
    assert spec.width % 2 == 0 and spec.height % 2 == 0
    assert 1 <= spec.num_frames <= model.max_duration * spec.fps
    assert 0 <= spec.seed < 2**32 and 0 < len(spec.prompt) <= 1000


@settings(max_examples=EXAMPLES, deadline=None)
@given(prompt=st.text(min_size=1, max_size=1200))
def test_prompts_of_any_text_are_accepted_or_refused_by_length(prompt: str) -> None:
    try:
        spec = build_spec({"model": "local", "prompt": prompt}, test_mode=False)
    except ApiError as exc:
        assert exc.field == "prompt"
        assert not prompt.strip() or len(prompt.strip()) > 1000
        return
    assert spec.prompt == prompt.strip()

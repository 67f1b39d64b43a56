"""The Engine protocol: the seam between the generation lifecycle and whatever renders.

An engine receives a validated :class:`~generations.specs.GenerationSpec` and a
:class:`RenderContext`. Local engines render inside one worker task and report progress
through the context; remote engines (later) split into submit/poll so no worker waits idle.
Adding an engine must not touch the API, the views or the models.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from generations.media.watermark import Mark
    from generations.spec import GenerationSpec


class EngineError(Exception):
    """A failure the user should read: stored on the generation as code + message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Canceled(Exception):
    """Raised inside an engine when the context says the job was canceled."""


@dataclass(frozen=True)
class RenderContext:
    # Folder the engine may write its outputs into (created by the caller, removed after).
    output_dir: Path
    # Called with 0-100 as work advances; cheap to call often (the caller throttles writes).
    progress: Callable[[float], None]
    # True once the job was canceled or lost its claim: stop at the next frame.
    should_stop: Callable[[], bool]
    # The decoded, validated input image for image-to-video (a stored copy), or None.
    input_image: Path | None = None
    # The decoded, validated last frame (spec.end_image_url set), or None.
    end_image: Path | None = None
    # The invisible watermark every frame carries (core/provenance.py): engines hand it to
    # the Mp4Writer they encode with. None only outside the worker (tests, benches).
    mark: Mark | None = None
    # A visible corner label to burn into every frame (VIDEOGEN_VISIBLE_LABEL; "" for none).
    label: str = ""


@dataclass(frozen=True)
class RenderResult:
    video_path: Path
    poster_path: Path
    frame_count: int
    fps: int
    width: int
    height: int
    has_audio: bool
    # Extra files stored beside the video (e.g. "preview" -> animated WebP); may be empty.
    extras: dict[str, Path]

    @classmethod
    def of(
        cls,
        spec: GenerationSpec,
        video: Path,
        poster: Path,
        preview: Path,
        sprites: Path,
        *,
        has_audio: bool,
    ) -> RenderResult:
        """A finished clip of exactly the spec's size, length and rate (every engine's)."""
        return cls(video_path=video, poster_path=poster, frame_count=spec.num_frames,
                   fps=spec.fps, width=spec.width, height=spec.height, has_audio=has_audio,
                   extras={"preview": preview, "spritesheet": sprites})  # fmt: skip


class Engine(Protocol):
    #: Short identifier recorded on the generation ("local", "fal", ...).
    name: str

    def render(self, spec: GenerationSpec, ctx: RenderContext) -> RenderResult: ...

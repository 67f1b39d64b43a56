"""Provenance (issue 18, CONTRACT 8) through the service: every stored video carries a signed
C2PA manifest and our watermark, and `POST /api/v1/verify` reads both back from an upload.
Manifests are read with c2pa-python's Reader (media/c2pa_manifest.read), as an outside
verifier would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from generations.media import c2pa_manifest, watermark
from generations.media.encode import Mp4Writer
from generations.models import Generation, Sequence
from tests.conftest import Account

BASE = {"model": "local", "resolution": "480p", "aspect_ratio": "16:9"}


def render(account: Account, **fields: Any) -> Generation:
    # A fixed seed: the same frames every run (the mark's strength depends on the picture).
    answer = account.client().post("/api/v1/generate", {**BASE, "duration": 2, "seed": 11,
                                                        **fields})  # fmt: skip
    assert answer.status_code == 200, answer.content
    gen = Generation.objects.get(generation_id=answer.json()["generation_id"])
    assert gen.status == "completed", gen.error_message
    return gen


def upload(account: Account | None, path: Path, **headers: str) -> Any:
    from tests.asgi_client import AsgiClient

    auth = {"Authorization": f"Bearer {account.raw_key}"} if account else {}
    with path.open("rb") as fh:
        return AsgiClient().post("/api/v1/verify", {"file": fh}, headers={**auth, **headers})


def foreign_video(path: Path, seconds: int = 2) -> Path:
    """Someone else's video: no manifest, no mark."""
    rng = np.random.default_rng(3)
    base = rng.integers(0, 255, (45, 80, 3), dtype=np.uint8)
    with Mp4Writer(path, 640, 360, 30, mark=None) as writer:
        for i in range(30 * seconds):
            frame = np.kron(np.roll(base, i, axis=1), np.ones((8, 8, 1), dtype=np.uint8))
            writer.write(np.ascontiguousarray(frame))
    return path


def test_a_local_video_is_signed_and_marked(owner: Account, sync_tasks: None) -> None:
    gen = render(owner, prompt="a lighthouse in fog")
    report = c2pa_manifest.read(Path(gen.video.path))
    assert report.present and report.valid and not report.trusted  # the development chain
    assert report.codes == ["signingCredential.untrusted"]
    assert report.generator and report.generator.startswith("videogen/")
    assert report.digital_source_type == c2pa_manifest.ALGORITHMIC_MEDIA
    assert report.model == "local"
    found = watermark.detect(gen.video.path)
    assert found.found and gen.mark is not None and found.payload == gen.mark


def test_an_extension_and_a_sequence_list_their_ingredients(
    owner: Account, sync_tasks: None
) -> None:
    source = render(owner, prompt="waves at dusk")
    answer = owner.client().post(f"/api/v1/generations/{source.generation_id}/extend",
                                 {"duration": 1})  # fmt: skip
    ext = Generation.objects.get(generation_id=answer.json()["generation_id"])
    report = c2pa_manifest.read(Path(ext.video.path))
    assert report.valid and len(report.ingredients) == 1
    made = owner.client().post("/api/v1/sequences", {**BASE, "transition": "cut", "shots": [
        {"prompt": "a red kite", "duration": 1}, {"prompt": "a blue kite", "duration": 1},
        {"prompt": "a green kite", "duration": 1}]}).json()  # fmt: skip
    seq = Sequence.objects.get(sequence_id=made["sequence_id"])
    report = c2pa_manifest.read(Path(seq.video.path))
    assert report.valid and report.model == "local" and len(report.ingredients) == 3


def test_verify_recognises_ours_and_names_it_only_to_its_team(
    owner: Account, outsider: Account, sync_tasks: None
) -> None:
    gen = render(owner, prompt="a paper boat")
    path = Path(gen.video.path)
    body = upload(owner, path).json()
    assert body["c2pa"]["present"] and body["c2pa"]["valid"]
    assert body["c2pa"]["model"] == "local"
    assert body["c2pa"]["digital_source_type"].endswith("/algorithmicMedia")
    assert body["watermark"] == {"found": True, "ours": True, "generation_id": gen.generation_id}
    for caller in (None, outsider):
        answer = upload(caller, path).json()
        assert answer["watermark"] == {"found": True, "ours": True, "generation_id": None}


def test_verify_does_not_recognise_a_foreign_video(owner: Account, tmp_path: Path) -> None:
    body = upload(owner, foreign_video(tmp_path / "theirs.mp4")).json()
    assert body["c2pa"]["present"] is False
    assert body["watermark"] == {"found": False, "ours": False, "generation_id": None}


def test_a_flipped_byte_in_the_video_makes_the_manifest_invalid(
    owner: Account, sync_tasks: None, tmp_path: Path
) -> None:
    gen = render(owner, prompt="a red door")
    data = bytearray(Path(gen.video.path).read_bytes())
    mdat = data.index(b"mdat")
    data[mdat + (len(data) - mdat) // 2] ^= 0x01
    tampered = tmp_path / "tampered.mp4"
    tampered.write_bytes(bytes(data))
    body = upload(None, tampered).json()
    assert body["c2pa"]["present"] and body["c2pa"]["valid"] is False
    assert any("mismatch" in code for code in body["c2pa"]["codes"])


def test_bad_uploads_are_4xx_naming_the_file(owner: Account, settings: Any, tmp_path: Path) -> None:
    from tests.asgi_client import AsgiClient

    http = AsgiClient()
    assert http.post("/api/v1/verify", {}).json()["error"]["field"] == "file"
    text = tmp_path / "notes.txt"
    text.write_bytes(b"not a video at all" * 100)
    answer = upload(None, text)
    assert answer.status_code == 400 and answer.json()["error"]["field"] == "file"
    settings.VIDEOGEN_VERIFY_MAX_BYTES = 50_000
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0" * 2_000_000)
    answer = upload(None, big)
    assert answer.status_code == 413 and answer.json()["error"]["field"] == "file"


def test_verify_is_rate_limited_per_address(settings: Any, tmp_path: Path, db: None) -> None:
    settings.VIDEOGEN_VERIFY_PER_MINUTE = 2
    clip = foreign_video(tmp_path / "clip.mp4", seconds=1)
    codes = [upload(None, clip).status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def test_no_engine_encodes_without_handing_on_the_mark() -> None:
    """Every Mp4Writer in the engines and the hosted ingest passes `mark=` (the watermark is
    applied in the shared encode path, and no engine can leave it out by omission)."""
    import ast

    root = Path(__file__).resolve().parent.parent / "generations"
    calls = []
    for path in [*(root / "rendering").rglob("*.py"), *(root / "media").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Mp4Writer":
                calls.append((path.name, {k.arg for k in node.keywords}))
    assert calls and all("mark" in keywords for _, keywords in calls), calls


def test_a_watermarked_video_reads_after_a_platform_reencode(
    owner: Account, sync_tasks: None, tmp_path: Path
) -> None:
    import av

    gen = render(owner, prompt="a windmill on a hill")
    out = tmp_path / "reencoded.mp4"
    with av.open(gen.video.path) as src, av.open(str(out), "w") as dst:
        stream = dst.add_stream("libx264", rate=30)
        stream.width, stream.height = 426, 240
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "30"}
        for frame in src.decode(video=0):
            small = frame.reformat(width=426, height=240)
            small.pts = None
            for packet in stream.encode(small):
                dst.mux(packet)
        for packet in stream.encode(None):
            dst.mux(packet)
    found = watermark.detect(out)
    assert found.found and found.payload == gen.mark


def test_a_visible_label_is_burnt_in_when_the_operator_asks(
    owner: Account, sync_tasks: None, settings: Any
) -> None:
    import av

    def corner(gen: Generation) -> tuple[float, float]:
        with av.open(gen.video.path) as container:
            frame = next(container.decode(video=0)).to_ndarray(format="gray")
        h, w = frame.shape
        return float(frame[int(h * 0.9) :, int(w * 0.75) :].std()), float(frame.mean())

    plain = render(owner, prompt="a forest of birches at noon", seed=4)
    settings.VIDEOGEN_VISIBLE_LABEL = "on"
    labelled = render(owner, prompt="a forest of birches at noon", seed=4)
    # White letters on a dark box: the corner gains contrast; the rest of the frame not.
    assert corner(labelled)[0] > corner(plain)[0] + 10
    assert abs(corner(labelled)[1] - corner(plain)[1]) < 5
    assert watermark.detect(labelled.video.path).payload == labelled.mark

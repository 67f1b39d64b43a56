"""Shots on the dashboard (CONTRACT 6): the Generate form's end frame, extending a finished
clip from its page, exports links, and sequences: the storyboard that makes one, the list,
a sequence's page (its shots, its timeline once stitched, why it failed) and its cancel."""

from __future__ import annotations

import base64
import io
import re
from html import unescape
from typing import Any

from django.core.files.base import ContentFile
from django.test import Client
from django.utils import timezone
from PIL import Image

from generations.core import submissions
from generations.core.validation import build_spec
from generations.models import Generation, Membership, Sequence
from generations.vocabulary import Status
from tests.conftest import Account, make_account


def logged_in(account: Account) -> Client:
    client = Client()
    client.force_login(account.user)
    return client


def viewer_of(owner: Account) -> Client:
    """A viewer on the owner's team, working in it."""
    vic = make_account("vic@example.com")
    Membership.objects.create(team=owner.team, user=vic.user, role=Membership.Role.VIEWER)
    client = logged_in(vic)
    client.post("/teams/switch", {"team": str(owner.team.code)})
    return client


def png(color: str = "red") -> io.BytesIO:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 36), color).save(buffer, format="PNG")
    buffer.seek(0)
    buffer.name = f"{color}.png"
    return buffer


def html_of(response: Any) -> str:
    return unescape(response.content.decode())


# --- the end frame -----------------------------------------------------------------------


def generate_form(**overrides: Any) -> dict[str, Any]:
    data = {"prompt": "A lighthouse in a storm", "model": "local", "duration": "1",
            "resolution": "480p", "aspect_ratio": "16:9", "seed": "5"}  # fmt: skip
    data.update(overrides)
    return data


def test_the_generate_form_offers_an_end_frame_and_names_the_models_that_take_it(
    owner: Account,
) -> None:
    html = logged_in(owner).get("/generate").content.decode()
    assert ">End frame (upload or URL)</label>" in html
    assert 'name="end_image"' in html and 'name="end_image_url"' in html
    assert re.search(r'<option value="local"[^>]* data-end-frame>', html)
    hint = html[html.index('id="end-frame-help"') :][:600]
    assert "Local" in hint or "local" in hint


def test_an_uploaded_end_frame_reaches_the_generation(owner: Account) -> None:
    response = logged_in(owner).post("/generate", {**generate_form(), "end_image": png("blue")})
    gen = Generation.objects.get()
    assert (
        response.status_code == 302 and response["Location"] == f"/generations/{gen.generation_id}"
    )
    assert gen.end_image and gen.end_image_url.startswith("data:image/png")
    with gen.end_image.open("rb") as stored, Image.open(stored) as image:
        assert image.size == (64, 36) and image.getpixel((10, 10)) == (0, 0, 255)


def test_an_end_frame_url_is_sent_as_end_image_url(owner: Account) -> None:
    encoded = base64.b64encode(png("green").getvalue()).decode()
    url = f"data:image/png;base64,{encoded}"
    logged_in(owner).post("/generate", generate_form(end_image_url=url))
    gen = Generation.objects.get()
    assert gen.end_image and gen.end_image_url.startswith("data:image/png")


def test_end_frame_errors_show_beside_the_end_frame(owner: Account, settings: Any) -> None:
    settings.FAL_KEY = "fal-test-key"  # ltxv-13b is served (through fal): no end frame
    client = logged_in(owner)
    data = {**generate_form(model="ltxv-13b"), "end_image": png()}
    html = html_of(client.post("/generate", data))
    words = "'ltxv-13b'"
    assert words in html
    assert html.index('id="id_end_image_url"') < html.index(words) < html.index("id_remix_of")
    both = {**generate_form(end_image_url="https://example.com/a.png"), "end_image": png()}
    html = html_of(client.post("/generate", both))
    assert "Give an end frame file or URL, not both." in html
    assert not Generation.objects.exists()


# --- extend and exports ------------------------------------------------------------------


def finished(owner: Account, **fields: Any) -> Generation:
    """A generation of `local` marked completed, with a video file (never decoded here)."""
    spec = build_spec(
        {"prompt": "A kite over a beach", "model": "local", "duration": 1, "resolution": "480p"},
        test_mode=False,
    )
    gen, _ = submissions.generation_create(
        team=owner.team, user=owner.user, spec=spec, source="dashboard"
    )
    gen.video.save(f"{gen.generation_id}.mp4", ContentFile(b"not really a video"), save=False)
    gen.status = Status.COMPLETED
    gen.progress = 100
    gen.finished_at = timezone.now()
    for name, value in fields.items():
        setattr(gen, name, value)
    gen.save()
    return gen


def test_a_finished_clip_offers_extend_and_its_exports(owner: Account) -> None:
    gen = finished(owner)
    html = logged_in(owner).get(f"/generations/{gen.generation_id}").content.decode()
    assert f'action="/generations/{gen.generation_id}/extend"' in html
    assert ">Seconds to add</label>" in html
    for fmt in ("gif", "webm", "loop"):
        assert f'href="/api/v1/video/{gen.generation_id}?format={fmt}" data-export' in html
    assert "js/exports.js" in html


def test_extending_makes_a_new_generation_that_links_its_source(owner: Account) -> None:
    gen = finished(owner)
    client = logged_in(owner)
    response = client.post(f"/generations/{gen.generation_id}/extend",
                           {"duration": "2", "prompt": "The kite dives"})  # fmt: skip
    new = Generation.objects.exclude(pk=gen.pk).get()
    assert (
        response.status_code == 302 and response["Location"] == f"/generations/{new.generation_id}"
    )
    assert new.extended_from == gen and new.duration == 2 and new.prompt == "The kite dives"
    assert new.source == "dashboard" and new.mode == "image-to-video"
    page = html_of(client.get(response["Location"]))
    assert "Extended from" in page and f'href="/generations/{gen.generation_id}"' in page
    source_page = html_of(client.get(f"/generations/{gen.generation_id}"))
    assert "Extended as" in source_page and f"/generations/{new.generation_id}" in source_page
    # The prompt is the source's when left empty.
    client.post(f"/generations/{gen.generation_id}/extend", {"duration": "1", "prompt": ""})
    assert gen.extensions.order_by("-pk")[0].prompt == "A kite over a beach"


def test_extending_an_unfinished_clip_says_why_on_its_page(owner: Account) -> None:
    gen = finished(owner, status=Status.IN_PROGRESS)
    client = logged_in(owner)
    response = client.post(f"/generations/{gen.generation_id}/extend", {"duration": "2"},
                           follow=True)  # fmt: skip
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == f"/generations/{gen.generation_id}"
    assert "only a completed generation can be extended" in html_of(response)
    # A length the model does not make: the service's own words, no 500.
    done = finished(owner)
    response = client.post(f"/generations/{done.generation_id}/extend", {"duration": "999"},
                           follow=True)  # fmt: skip
    assert response.status_code == 200 and "Not extended:" in html_of(response)
    assert Generation.objects.count() == 2


def test_a_viewer_sees_no_extend_and_cannot_extend(owner: Account) -> None:
    gen = finished(owner)
    client = viewer_of(owner)
    page = client.get(f"/generations/{gen.generation_id}").content.decode()
    assert "/extend" not in page and "?format=gif" in page
    response = client.post(f"/generations/{gen.generation_id}/extend", {"duration": "2"},
                           follow=True)  # fmt: skip
    assert "does not allow" in html_of(response)
    assert Generation.objects.count() == 1


# --- the storyboard ----------------------------------------------------------------------


def storyboard(*shots: dict[str, Any], numbers: list[int] | None = None,
               **overrides: Any) -> dict[str, Any]:  # fmt: skip
    """The storyboard's post: the sequence's settings, then each shot's fields under the
    number its card has (0, 1, 2... unless `numbers` says otherwise)."""
    data: dict[str, Any] = {
        "title": "", "model": "local", "resolution": "480p", "aspect_ratio": "16:9",
        "transition": "cut", "op": "render",
    }  # fmt: skip
    data.update(overrides)
    for number, shot in zip(numbers or range(len(shots)), shots, strict=True):
        for name, value in shot.items():
            data[f"shots-{number}-{name}"] = value
    return data


SHOTS = (
    {"prompt": "A red door in a white wall", "duration": "2"},
    {"prompt": "The door opens on a garden", "duration": "3"},
    {"prompt": "A bird flies out of the garden", "duration": "2"},
)


def test_the_storyboard_page_has_its_fields_and_two_shot_cards(owner: Account) -> None:
    html = logged_in(owner).get("/sequences/new").content.decode()
    for label in ("Title", "Model", "Resolution", "Aspect ratio", "Add audio", "Prompt",
                  "Duration (s)", "Image (upload or URL)"):  # fmt: skip
        assert f">{label}</label>" in html, label
    assert html.count('class="shot-card"') == 2
    for word in ("Cut", "Crossfade", "Continue from the last frame"):
        assert word in html
    assert "js/storyboard.js" in html and ">Render</button>" in html
    assert '<a href="/sequences/">Sequences</a>' in html  # in the nav


def test_rendering_a_storyboard_makes_a_sequence_with_its_shots_in_order(
    owner: Account,
) -> None:
    client = logged_in(owner)
    # Cards numbered with gaps (one removed in the page): their order is kept.
    data = storyboard(*SHOTS, numbers=[0, 3, 7], title="The garden", transition="crossfade",
                      add_audio="on")  # fmt: skip
    response = client.post("/sequences/new", data)
    seq = Sequence.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/sequences/{seq.sequence_id}"
    shots = list(seq.shots.order_by("shot_index"))
    assert [(g.shot_index, g.prompt, g.duration) for g in shots] == [
        (0, SHOTS[0]["prompt"], 2), (1, SHOTS[1]["prompt"], 3), (2, SHOTS[2]["prompt"], 2),
    ]  # fmt: skip
    assert seq.title == "The garden" and seq.transition == "crossfade" and seq.add_audio
    assert seq.source == "dashboard" and seq.user == owner.user
    assert {(g.source, g.model, g.resolution) for g in shots} == {("dashboard", "local", "480p")}

    page = html_of(client.get(response["Location"]))
    found = [page.index(f'href="/generations/{g.generation_id}"') for g in shots]
    assert found == sorted(found)
    assert "hx-trigger=" in page and f'action="/sequences/{seq.sequence_id}/cancel"' in page
    assert "<progress" in page and "<video" not in page
    shot_page = html_of(client.get(f"/generations/{shots[1].generation_id}"))
    assert (
        f'href="/sequences/{seq.sequence_id}"' in shot_page
        and "Shot 2 of “The garden”" in shot_page
    )
    listing = html_of(client.get("/sequences/"))
    assert f'href="/sequences/{seq.sequence_id}"' in listing and "The garden" in listing
    assert "0 of 3 rendered" in listing


def test_the_sequence_list_is_newest_first(owner: Account) -> None:
    client = logged_in(owner)
    for title in ("first", "second"):
        client.post("/sequences/new", storyboard(*SHOTS[:2], title=title))
    listing = client.get("/sequences/").content.decode()
    assert listing.index("second") < listing.index("first")


def _beside(html: str, field_id: str, next_id: str, words: str) -> None:
    """The message sits after the field, before the next one."""
    assert words in html, html[html.find('class="error"') - 300 :][:800]
    assert html.index(f'id="{field_id}"') < html.index(words) < html.index(f'id="{next_id}"')


def test_a_shot_error_shows_beside_that_shot_field_and_keeps_what_was_typed(
    owner: Account,
) -> None:
    client = logged_in(owner)
    bad = dict(SHOTS[1], duration="999", prompt="Typed, and kept")
    response = client.post("/sequences/new", storyboard(SHOTS[0], bad, SHOTS[2], title="Kept"))
    assert response.status_code == 400
    html = html_of(response)
    error = re.search(r'<p class="error" role="alert">([^<]*)</p>', html)
    assert error is not None
    _beside(html, "id_shots-1-duration", "id_shots-1-image", error[1])
    assert "Typed, and kept" in html and 'value="Kept"' in html and 'value="999"' in html
    assert html.count('class="shot-card"') == 3
    assert not Sequence.objects.exists() and not Generation.objects.exists()


def test_other_storyboard_errors_show_where_they_belong(owner: Account) -> None:
    client = logged_in(owner)
    # An empty prompt, beside the second card's prompt.
    html = html_of(
        client.post("/sequences/new", storyboard(SHOTS[0], {"prompt": "", "duration": "1"}))
    )
    assert html.count('role="alert"') == 1
    start = html.index('id="id_shots-1-prompt"')
    assert start < html.index('role="alert"') < html.index('id="id_shots-1-duration"')
    # One shot: the shot list's own error, above the cards.
    html = html_of(client.post("/sequences/new", storyboard(SHOTS[0])))
    assert "A sequence has 2 to 20 shots (1 given)." in html
    assert html.index("A sequence has") < html.index('class="shot-card"')
    # `continue` takes no image after the first shot: beside that shot's image.
    with_image = dict(SHOTS[1], image_url="https://example.com/a.png")
    data = storyboard(SHOTS[0], with_image, transition="continue")
    html = html_of(client.post("/sequences/new", data))
    assert html.index('id="id_shots-1-image_url"') < html.index("leave out its `image_url`")
    assert html.index("leave out its `image_url`") < html.index("Move up: shot 2")
    # A file and a URL on one card.
    both = dict(SHOTS[0], image=png(), image_url="https://example.com/a.png")
    html = html_of(client.post("/sequences/new", storyboard(both, SHOTS[1])))
    assert "Give an image file or an image URL, not both." in html
    assert html.index("not both") < html.index('id="id_shots-1-prompt"')
    assert not Sequence.objects.exists() and not Generation.objects.exists()


def test_a_shot_image_upload_reaches_its_shot(owner: Account) -> None:
    client = logged_in(owner)
    response = client.post("/sequences/new", storyboard(dict(SHOTS[0], image=png()), SHOTS[1]))
    assert response.status_code == 302
    first, second = Sequence.objects.get().shots.order_by("shot_index")
    assert first.input_image and first.mode == "image-to-video"
    assert not second.input_image and second.mode == "text-to-video"


def test_the_storyboard_buttons_work_without_javascript(owner: Account) -> None:
    client = logged_in(owner)
    added = html_of(client.post("/sequences/new", storyboard(*SHOTS[:2], op="add")))
    assert added.count('class="shot-card"') == 3 and not Sequence.objects.exists()
    moved = html_of(client.post("/sequences/new", storyboard(*SHOTS, op="up-2")))
    order = [moved.index(s["prompt"]) for s in (SHOTS[0], SHOTS[2], SHOTS[1])]
    assert order == sorted(order)
    removed = html_of(client.post("/sequences/new", storyboard(*SHOTS, op="remove-0")))
    assert SHOTS[0]["prompt"] not in removed and removed.count('class="shot-card"') == 2
    assert not Sequence.objects.exists()


def _made(owner: Account) -> Sequence:
    response = logged_in(owner).post("/sequences/new", storyboard(*SHOTS[:2], title="Two"))
    assert response.status_code == 302
    return Sequence.objects.get()


def test_a_viewer_looks_but_cannot_render_or_cancel(owner: Account) -> None:
    seq = _made(owner)
    client = viewer_of(owner)
    new = html_of(client.get("/sequences/new"))
    assert "You are a viewer on this team" in new
    assert re.search(
        r'<button type="submit" name="op" value="render" class="primary" disabled>', new
    )
    response = client.post("/sequences/new", storyboard(*SHOTS[:2]))
    assert response.status_code == 403 and "does not allow rendering sequences" in html_of(response)
    assert Sequence.objects.count() == 1
    page = html_of(client.get(f"/sequences/{seq.sequence_id}"))
    assert "Two" in page and "/cancel" not in page
    response = client.post(f"/sequences/{seq.sequence_id}/cancel", {"confirm": "yes"}, follow=True)
    assert "does not allow canceling sequences" in html_of(response)
    seq.refresh_from_db()
    assert seq.status == Status.PENDING
    assert not seq.shots.filter(status=Status.CANCELED).exists()
    assert "New sequence" not in client.get("/sequences/").content.decode()


def test_a_member_cancels_a_sequence_after_confirming(owner: Account) -> None:
    seq = _made(owner)
    client = logged_in(owner)
    asked = client.post(f"/sequences/{seq.sequence_id}/cancel")
    assert asked.status_code == 200 and "Cancel the sequence" in asked.content.decode()
    response = client.post(f"/sequences/{seq.sequence_id}/cancel", {"confirm": "yes"})
    assert response.status_code == 302
    seq.refresh_from_db()
    assert seq.status == Status.CANCELED
    assert set(seq.shots.values_list("status", flat=True)) == {Status.CANCELED}
    page = html_of(client.get(f"/sequences/{seq.sequence_id}"))
    assert "hx-trigger=" not in page and "/cancel" not in page


def test_a_failed_sequence_says_which_shot_failed(owner: Account) -> None:
    seq = _made(owner)
    first, second = seq.shots.order_by("shot_index")
    Generation.objects.filter(pk=second.pk).update(
        status=Status.FAILED, error_code="engine_error", error_message="The engine fell over"
    )
    Sequence.objects.filter(pk=seq.pk).update(
        status=Status.FAILED, failed_shot=1, error_code="shot_failed",
        error_message="Shot 2 failed (engine_error): The engine fell over",
    )  # fmt: skip
    html = html_of(logged_in(owner).get(f"/sequences/{seq.sequence_id}"))
    assert "Shot 2 failed (engine_error): The engine fell over" in html
    row = html[html.index('class="shot-row failed-shot"') :]
    assert row.index(second.generation_id) < row.index("This shot failed: The engine fell over")
    assert html.count("failed-shot") == 1 and "hx-trigger=" not in html


def test_a_stitched_sequence_plays_with_its_shot_markers_and_exports(owner: Account) -> None:
    seq = _made(owner)
    seq.video.save(f"{seq.sequence_id}.mp4", ContentFile(b"not really a video"), save=False)
    seq.status, seq.markers, seq.num_frames = Status.COMPLETED, [0.0, 2.0], 5 * seq.fps
    seq.save()
    Generation.objects.filter(sequence=seq).update(status=Status.COMPLETED, progress=100)
    html = html_of(logged_in(owner).get(f"/sequences/{seq.sequence_id}"))
    assert f'src="/api/v1/video/{seq.sequence_id}"' in html and "data-sequence-video" in html
    assert re.search(r'data-start="0\.0+" data-end="2\.0+"', html)
    assert re.search(r'data-start="2\.0+" data-end="5\.0+"', html)
    marker = re.sub(r"<[^>]+>", "", html[html.index('title="Shot 2: ') :].split("</button>")[0])
    assert marker.endswith("Shot 2 at 2.0 s: The door opens on a garden")
    for fmt in ("gif", "webm", "loop"):
        assert f'href="/api/v1/video/{seq.sequence_id}?format={fmt}" data-export' in html
    assert "js/sequence.js" in html and "hx-trigger=" not in html


def test_another_teams_sequence_is_not_found(owner: Account, outsider: Account) -> None:
    seq = _made(owner)
    client = logged_in(outsider)
    assert client.get(f"/sequences/{seq.sequence_id}").status_code == 404
    assert (
        client.post(f"/sequences/{seq.sequence_id}/cancel", {"confirm": "yes"}).status_code == 404
    )

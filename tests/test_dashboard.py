"""The dashboard through Django's test client: pages, forms and the shared validation."""

from __future__ import annotations

import io
import re
from html import unescape
from typing import Any

from django.core import mail
from django.test import Client
from PIL import Image

from generations import tasks
from generations.core import lifecycle
from generations.models import Generation, User
from tests.asgi_client import AsgiClient
from tests.conftest import Account, body_bytes


def logged_in(account: Account) -> Client:
    client = Client()
    client.force_login(account.user)
    return client


def form(**overrides: Any) -> dict[str, Any]:
    data = {"prompt": "A lighthouse in a storm", "model": "local", "duration": "1",
            "resolution": "480p", "aspect_ratio": "16:9", "seed": "5"}  # fmt: skip
    data.update(overrides)
    return data


def test_pages_need_a_login_but_the_home_page_does_not(db: None) -> None:
    assert Client().get("/").status_code == 200
    for path in ("/generate", "/generations/"):
        response = Client().get(path)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_people_sign_up_with_an_email_and_land_on_generate(db: None) -> None:
    client = Client()
    response = client.post(
        "/accounts/signup/",
        {"email": "new@example.com", "name": "New", "password1": "a long pass phrase 9",
         "password2": "a long pass phrase 9"},
    )  # fmt: skip
    assert response.status_code == 302 and response["Location"] == "/generate"
    assert User.objects.get(email="new@example.com").teams.filter(personal=True).exists()
    assert client.get("/generate").status_code == 200


def test_sign_up_can_be_closed(db: None, settings: Any) -> None:
    settings.VIDEOGEN_SIGNUP = "closed"
    assert Client().get("/accounts/signup/").status_code == 403


def test_login_is_by_email_and_logout_is_a_post(owner: Account) -> None:
    client = Client()
    response = client.post(
        "/accounts/login/", {"username": "alice@example.com", "password": "correct horse battery"}
    )
    assert response.status_code == 302 and response["Location"] == "/generate"
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/generate").status_code == 302


def test_password_reset_sends_a_link(owner: Account) -> None:
    response = Client().post("/accounts/password_reset/", {"email": "alice@example.com"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1 and "/accounts/reset/" in mail.outbox[0].body


def test_the_form_has_the_labels_users_look_for(owner: Account) -> None:
    html = logged_in(owner).get("/generate").content.decode()
    for label in ("Prompt", "Negative prompt", "Model", "Image (upload or URL)", "Duration",
                  "Resolution", "Aspect ratio", "Seed", "Camera fixed", "Add audio",
                  "Audio prompt"):  # fmt: skip
        assert f">{label}</label>" in html, label
    assert '<button type="submit" class="primary">Generate</button>' in html


def test_choosing_a_model_rerenders_its_choices(owner: Account, settings: Any) -> None:
    settings.FAL_KEY = "fal-test-key"  # ltxv-13b is served here through fal
    html = logged_in(owner).get("/generate/fields", {"model": "ltxv-13b"}).content.decode()
    assert 'id="model-fields"' in html and "<form" not in html
    assert '<option value="480p" selected>' in html and "720p" not in html
    # 1 to 60 s: a number field bounded by the model, not a 60-item list.
    assert re.search(r'<input type="number" name="duration"[^>]*min="1"[^>]*max="60"', html)
    assert '<option value="60">' not in html
    assert re.search(r"Text-to-video · 1–60 s · [\d.]+ credits at 5 s 480p, 1 of the team's "
                     r"monthly generations", unescape(html))  # fmt: skip
    assert "not run on this server yet" in html


def test_the_model_picker_lists_available_models_first_and_greys_out_the_rest(
    owner: Account, settings: Any
) -> None:
    """Unconfigured models sat first in the list and could be submitted, failing only after
    the round trip. Now the served ones come first; the rest are a disabled group; one sent
    anyway is refused on the form, saying which key would serve it, and nothing is made."""
    client = logged_in(owner)

    def picker() -> tuple[list[str], list[str]]:
        html = client.get("/generate").content.decode()
        select = re.search(r'<select name="model" id="id_model".*?</select>', html, re.S)
        assert select is not None
        options = re.findall(r'<option value="([^"]+)"( disabled)?', select[0])
        served = [key for key, disabled in options if not disabled]
        assert served == [key for key, _ in options[: len(served)]]  # every served one first
        group = re.search(r'<optgroup label="Not configured on this server">(.*?)</optgroup>',
                          select[0], re.S)  # fmt: skip
        assert group is not None
        greyed = re.findall(r'<option value="([^"]+)" disabled>', group[1])
        assert sorted(served + greyed) == sorted(key for key, _ in options)
        return served, greyed

    served, greyed = picker()
    assert served == ["local"] and "sora-2" in greyed and "ltxv-13b" in greyed
    refused = client.post("/generate", form(model="sora-2"))
    assert refused.status_code == 400 and not Generation.objects.exists()
    text = unescape(refused.content.decode())
    assert "Sora 2 is not configured on this server" in text and "OPENAI_API_KEY" in text

    settings.FAL_KEY = "fal-test-key"
    served, greyed = picker()
    assert "ltxv-13b" in served and "sora-2" in served and "higgsfield_v1" in greyed


def test_submitting_creates_a_generation_and_shows_it(owner: Account) -> None:
    client = logged_in(owner)
    response = client.post("/generate", form())
    gen = Generation.objects.get(team=owner.team)
    assert (
        response.status_code == 302 and response["Location"] == f"/generations/{gen.generation_id}"
    )
    assert (gen.source, gen.user, gen.seed, gen.width) == ("dashboard", owner.user, 5, 854)
    page = client.get(response["Location"]).content.decode()
    assert 'hx-trigger="every 1s"' in page and "<progress" in page


def test_errors_appear_beside_their_field(owner: Account) -> None:
    client = logged_in(owner)
    response = client.post("/generate", form(prompt=""))
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    # A model this server does not serve, refused beside the model picker.
    response = client.post("/generate", form(model="wan-25"))
    assert response.status_code == 400
    assert "is not configured on this server" in response.content.decode()
    assert not Generation.objects.exists()


def test_an_uploaded_image_makes_an_image_to_video_job(owner: Account) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (80, 60), (10, 200, 90)).save(buf, "PNG")
    buf.seek(0)
    buf.name = "me.png"
    response = logged_in(owner).post("/generate", {**form(), "image": buf})
    assert response.status_code == 302
    gen = Generation.objects.get(team=owner.team)
    assert gen.mode == "image-to-video" and gen.input_image.name.endswith(".png")


def test_a_broken_upload_is_an_error_on_the_image_field(owner: Account) -> None:
    junk = io.BytesIO(b"not an image at all")
    junk.name = "x.png"
    response = logged_in(owner).post("/generate", {**form(), "image": junk})
    assert response.status_code == 400 and "image" in response.content.decode().lower()


def test_polling_stops_once_the_job_is_final(owner: Account) -> None:
    client = logged_in(owner)
    client.post("/generate", form())
    gen = Generation.objects.get(team=owner.team)
    Generation.objects.filter(pk=gen.pk).update(status="failed", error_message="boom")
    fragment = client.get(f"/generations/{gen.generation_id}", headers={"HX-Request": "true"})
    html = fragment.content.decode()
    assert "hx-trigger" not in html and "boom" in html and "Retry" in html
    assert "<html" not in html


def test_a_running_job_can_be_canceled_and_is_refunded(owner: Account) -> None:
    client = logged_in(owner)
    client.post("/generate", form())
    gen = Generation.objects.get(team=owner.team)
    client.post(f"/generations/{gen.generation_id}/cancel")
    gen.refresh_from_db()
    assert gen.status == "canceled"
    assert owner.client().get("/api/v1/user").json()["usage"]["current_month_usage"] == 0


def test_retry_makes_a_new_generation_with_the_same_request(owner: Account) -> None:
    client = logged_in(owner)
    client.post("/generate", form())
    gen = Generation.objects.get(team=owner.team)
    Generation.objects.filter(pk=gen.pk).update(status="failed")
    response = client.post(f"/generations/{gen.generation_id}/retry")
    new = Generation.objects.exclude(pk=gen.pk).get()
    assert response["Location"] == f"/generations/{new.generation_id}"
    assert (new.prompt, new.seed, new.duration) == (gen.prompt, gen.seed, gen.duration)


def test_history_filters_and_searches(owner: Account) -> None:
    client = logged_in(owner)
    client.post("/generate", form(prompt="red fox"))
    client.post("/generate", form(prompt="blue whale"))
    html = client.get("/generations/", {"q": "whale"}).content.decode()
    assert "blue whale" in html and "red fox" not in html
    html = client.get("/generations/", {"status": "completed"}).content.decode()
    assert "No generations match." in html


def test_other_teams_generations_are_404(owner: Account, outsider: Account) -> None:
    logged_in(owner).post("/generate", form())
    gen = Generation.objects.get(team=owner.team)
    assert logged_in(outsider).get(f"/generations/{gen.generation_id}").status_code == 404
    assert logged_in(outsider).post(f"/generations/{gen.generation_id}/cancel").status_code == 404


def test_remix_prefills_the_form_from_a_generation(owner: Account) -> None:
    client = logged_in(owner)
    client.post("/generate", form(prompt="a paper boat on a pond", seed="77"))
    gen = Generation.objects.get(team=owner.team)
    html = client.get("/generate", {"remix": gen.generation_id}).content.decode()
    assert "a paper boat on a pond</textarea>" in html and 'value="77"' in html


def _png(color: tuple[int, int, int], name: str = "me.png") -> io.BytesIO:
    buf = io.BytesIO()
    Image.new("RGB", (80, 60), color).save(buf, "PNG")
    buf.seek(0)
    buf.name = name
    return buf


def _stored(gen: Generation) -> bytes:
    with gen.input_image.open("rb") as fh:
        return fh.read()


def test_remixing_a_video_made_from_an_upload_reuses_its_image(owner: Account) -> None:
    """The remix form was pre-filled with the record's shortened `data:image/png;base64,...`,
    and submitting it failed ("base64 payload is invalid"). Now the stored image is shown as
    a thumbnail (to the team only) and kept, replaced or removed, as the person chooses."""
    client = logged_in(owner)
    client.post("/generate", {**form(prompt="a green field"), "image": _png((10, 200, 90))})
    source = Generation.objects.get()
    html = client.get("/generate", {"remix": source.generation_id}).content.decode()
    assert "data:image" not in html  # the record's shortened data: URL is nowhere in the form
    thumb = f"/generations/{source.generation_id}/input"
    assert f'<img src="{thumb}"' in html
    assert re.search(r'<input type="radio" name="source_image" value="keep"[^>]*checked', html)
    image = client.get(thumb)
    assert image.status_code == 200 and image["Content-Type"] == "image/png"
    assert body_bytes(image) == _stored(source)
    assert "private" in image["Cache-Control"]
    assert Client().get(thumb).status_code == 302  # to the login page

    def remix(**fields: Any) -> Generation:
        body = {**form(prompt="the same field at night"), "remix_of": source.generation_id,
                **fields}  # fmt: skip
        response = client.post("/generate", body)
        assert response.status_code == 302, response.content.decode()[-2000:]
        made = Generation.objects.get(generation_id=response["Location"].rsplit("/", 1)[1])
        assert made.remixed_from == source
        return made

    kept = remix(source_image="keep")
    assert kept.mode == "image-to-video" and _stored(kept) == _stored(source)
    assert kept.image_url == source.image_url
    detail = client.get(f"/generations/{kept.generation_id}").content.decode()
    assert f'<img class="input-image" src="/generations/{kept.generation_id}/input"' in detail
    replaced = remix(source_image="replace", image=_png((200, 10, 10)))
    assert replaced.mode == "image-to-video" and _stored(replaced) != _stored(source)
    removed = remix(source_image="remove", image=_png((1, 2, 3)))
    assert removed.mode == "text-to-video" and not removed.input_image

    empty = client.post("/generate", {**form(), "remix_of": source.generation_id,
                                      "source_image": "replace"})  # fmt: skip
    assert empty.status_code == 400
    assert "Choose an image file or URL to replace" in unescape(empty.content.decode())
    assert f'<img src="{thumb}"' in empty.content.decode()  # the choice is still offered


def test_a_file_and_a_url_together_are_refused(owner: Account) -> None:
    response = logged_in(owner).post(
        "/generate", {**form(), "image": _png((1, 2, 3)), "image_url": "https://example.com/a.png"}
    )
    assert response.status_code == 400 and not Generation.objects.exists()
    assert "Give an image file or an image URL, not both." in response.content.decode()


def test_retry_of_a_video_made_from_an_upload_reuses_its_image(owner: Account) -> None:
    client = logged_in(owner)
    client.post("/generate", {**form(), "image": _png((10, 200, 90))})
    source = Generation.objects.get()
    lifecycle.fail(generation=source, code="engine_error", message="boom")
    response = client.post(f"/generations/{source.generation_id}/retry")
    again = Generation.objects.get(generation_id=response["Location"].rsplit("/", 1)[1])
    assert again.pk != source.pk and again.mode == "image-to-video"
    assert _stored(again) == _stored(source)


def test_history_rows_can_be_deleted(owner: Account) -> None:
    client = logged_in(owner)
    client.post("/generate", form())
    gen = Generation.objects.get(team=owner.team)
    assert (
        f"/generations/{gen.generation_id}/delete" in client.get("/generations/").content.decode()
    )
    client.post(f"/generations/{gen.generation_id}/delete", {"confirm": "yes"})
    assert not Generation.objects.exists()


def test_deleting_from_a_filtered_history_keeps_its_filters(owner: Account) -> None:
    """The row's delete form is submitted as a browser would (its hidden fields included);
    the answer goes back to the same filtered, searched page, not to all of History."""
    client = logged_in(owner)
    # The first goes straight to the broker; the others wait for their turn (pending).
    for prompt in ("a grey gull", "a red kite", "a red boat", "a blue boat"):
        client.post("/generate", form(prompt=prompt))
    listing = "/generations/?q=red&status=pending&model=local"
    html = client.get(listing).content.decode()
    victim = Generation.objects.get(prompt="a red boat")
    found = re.search(
        rf'<form method="post" action="(/generations/{victim.generation_id}/delete)"'
        r"[^>]*>(.*?)</form>", html, re.S,
    )  # fmt: skip
    assert found is not None
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', found[2]))
    fields = {name: unescape(value) for name, value in fields.items()}
    # Without JavaScript the server asks first, on a page whose form posts it all again.
    asked = client.post(found[1], fields).content.decode()
    assert "<dialog open" in asked and Generation.objects.filter(pk=victim.pk).exists()
    dialog = asked[asked.index("<dialog open") :]
    confirm = re.search(r'<form method="post" action="([^"]+)"[^>]*>(.*?)</form>', dialog, re.S)
    assert confirm is not None and confirm[1] == found[1]
    again = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', confirm[2]))
    again = {name: unescape(value) for name, value in again.items()}
    assert again["confirm"] == "yes" and again["next"] == listing
    response = client.post(confirm[1], again)
    assert response.status_code == 302 and response["Location"] == listing
    after = client.get(response["Location"]).content.decode()
    assert "a red kite" in after and "a red boat" not in after and "a blue boat" not in after


def test_a_bad_usage_month_shows_this_month_and_never_fails(owner: Account) -> None:
    """Whatever `month` says (a newline that once reached the CSV's Content-Disposition, a
    year no date can hold, a 13th month), the page and the CSV answer this month's report."""
    client = logged_in(owner)
    for month in ("2026-01\n", "2026-01%0D%0AX: y", "99999-01", "0000-01", "2026-13", "x", "-"):
        page = client.get("/usage", {"month": month})
        assert page.status_code == 200, month
        csv = client.get("/usage", {"month": month, "format": "csv"})
        assert csv.status_code == 200, month
        disposition = csv["Content-Disposition"]
        assert re.fullmatch(r'attachment; filename="videogen-usage-\d{4}-\d{2}\.csv"', disposition)


def test_the_team_switcher_only_goes_back_to_pages_of_this_site(owner: Account) -> None:
    client = logged_in(owner)
    team = owner.team.code
    for bad in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "https:evil"):
        response = client.post("/teams/switch", {"team": str(team), "next": bad})
        assert response.status_code == 302 and response["Location"] == "/generate", bad
    kept = client.post("/teams/switch", {"team": str(team), "next": "/generations/?status=failed"})
    assert kept["Location"] == "/generations/?status=failed"


def test_the_model_line_says_how_long_a_model_takes_here(owner: Account) -> None:
    client = logged_in(owner)
    client.post("/generate", form())
    assert tasks.generation_run(Generation.objects.get().pk) == "completed"
    html = client.get("/generate/fields", {"model": "local"}).content.decode()
    assert re.search(r"Text-to-video and image-to-video · 1–60 s · .* · typically \d+ s "
                     r"to render here\.", html)  # fmt: skip


def test_live_status_answers_for_the_teams_own_generations_only(
    owner: Account, outsider: Account
) -> None:
    client = logged_in(owner)
    client.post("/generate", form(prompt="first"))
    client.post("/generate", form(prompt="second"))
    logged_in(outsider).post("/generate", form(prompt="not yours"))
    first, second, theirs = Generation.objects.order_by("created_at")
    assert tasks.generation_run(first.pk) == "completed"
    # While `first` ran, teams took turns: the other team's went to the broker before
    # `second` (this team had one in flight, that team none).
    theirs.refresh_from_db()
    assert theirs.status == "in_queue"
    ids = ",".join(g.generation_id for g in (first, second, theirs))
    live = client.get("/api/dashboard/live", {"ids": ids}).json()["generations"]
    assert set(live) == {first.generation_id, second.generation_id}
    assert live[first.generation_id]["final"] and live[first.generation_id]["label"] == "Completed"
    waiting = live[second.generation_id]
    assert waiting["status"] == "pending" and not waiting["final"]
    assert waiting["position"] == 1  # the other team's, handed over, goes first
    assert isinstance(waiting["eta_s"], int)  # the first run gave a typical time
    assert Client().get("/api/dashboard/live", {"ids": ids}).status_code == 401  # log in first
    # Production serves it through the lean API handler, which reads the session itself.
    cookie = {"Cookie": f"sessionid={client.cookies['sessionid'].value}"}
    served = AsgiClient().get("/api/dashboard/live", {"ids": ids}, headers=cookie)
    assert served.status_code == 200
    again = served.json()["generations"]
    assert {k: (v["status"], v["position"]) for k, v in again.items()} == {
        k: (v["status"], v["position"]) for k, v in live.items()
    }
    assert AsgiClient().get("/api/dashboard/live", {"ids": ids}).status_code == 401
    forged = {"Cookie": "sessionid=not-a-session"}
    assert AsgiClient().get("/api/dashboard/live", {"ids": ids}, headers=forged).status_code == 401

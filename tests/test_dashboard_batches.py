"""Takes on the dashboard (CONTRACT 7): the Generate form's variations, compared models,
seed sweeps, prompt lists and CSV files make batches; the batch page, its pick and cancel;
the team's queue page and its pause switch."""

from __future__ import annotations

import io
from html import unescape
from typing import Any

from django.test import Client

from generations.core import accounts, batches, fairshare
from generations.core.validation import build_spec
from generations.models import Batch, Generation, Membership
from generations.vocabulary import Status
from tests.conftest import Account, make_account
from tests.test_dashboard import form, logged_in


def _batch_of(response: Any) -> Batch:
    assert response.status_code == 302, response.content.decode()[:2000]
    assert response["Location"].startswith("/batches/bat_")
    return Batch.objects.get(batch_id=response["Location"].rsplit("/", 1)[1])


def _csv(text: str) -> io.BytesIO:
    upload = io.BytesIO(text.encode())
    upload.name = "takes.csv"
    return upload


def _refused(response: Any, field: str, words: str) -> None:
    """A 4xx with the form again, the message beside the field it names."""
    assert 400 <= response.status_code < 500, response.status_code
    html = unescape(response.content.decode())
    assert words in html, html[html.find('class="error"') - 200 :][:600]
    # The message comes after the field's own input, before the next field's.
    assert html.index(f'id="id_{field}') < html.index(words)
    assert not Batch.objects.exists()


def test_takes_make_a_batch_of_that_many_with_fresh_seeds(owner: Account) -> None:
    client = logged_in(owner)
    batch = _batch_of(client.post("/generate", form(takes="4", seed="-1")))
    items = list(batch.items.order_by("pk"))
    assert len(items) == 4 and len({g.seed for g in items}) == 4
    assert {(g.prompt, g.model, g.source) for g in items} == {
        ("A lighthouse in a storm", "local", "dashboard")
    }
    assert batch.source == "dashboard" and batch.user == owner.user
    page = client.get(f"/batches/{batch.batch_id}").content.decode()
    assert page.count('<li class="take') == 4
    for g in items:
        assert f'data-live="{g.generation_id}"' in page and f"seed {g.seed}" in page
    assert "Cancel the rest" in page and "data-confirm=" in page
    listing = client.get("/batches/").content.decode()
    assert f"/batches/{batch.batch_id}" in listing and "0 of 4 finished" in listing


def test_one_take_stays_an_ordinary_generation(owner: Account) -> None:
    response = logged_in(owner).post("/generate", form(takes="1"))
    gen = Generation.objects.get()
    assert response["Location"] == f"/generations/{gen.generation_id}" and gen.batch is None


def test_comparing_models_makes_one_take_per_model(owner: Account, settings: Any) -> None:
    settings.FAL_KEY = "fal-test-key"  # ltxv-13b is served (through fal)
    client = logged_in(owner)
    data = form(seed="7", compare_models=["local", "ltxv-13b"])
    batch = _batch_of(client.post("/generate", data))
    items = batch.items.order_by("pk")
    assert [(g.model, g.seed) for g in items] == [("local", 7), ("ltxv-13b", 7)]


def test_a_pasted_seed_sweep_makes_one_take_per_seed(owner: Account) -> None:
    client = logged_in(owner)
    batch = _batch_of(client.post("/generate", form(seed="-1", seed_list="3\n 5 \n\n8\n")))
    assert [g.seed for g in batch.items.order_by("pk")] == [3, 5, 8]


def test_a_prompt_list_makes_one_take_per_prompt(owner: Account) -> None:
    data = form(prompt="", seed="-1", prompt_list="a red kite\na blue kite")
    batch = _batch_of(logged_in(owner).post("/generate", data))
    assert [g.prompt for g in batch.items.order_by("pk")] == ["a red kite", "a blue kite"]


def test_a_csv_file_gives_prompts_seeds_or_both(owner: Account) -> None:
    client = logged_in(owner)
    one_column = {**form(prompt="", seed="-1"), "list_file": _csv("a fox\nan owl\n")}
    batch = _batch_of(client.post("/generate", one_column))
    assert [g.prompt for g in batch.items.order_by("pk")] == ["a fox", "an owl"]
    seeds = {**form(seed="-1"), "list_file": _csv("seed\n11\n12\n13\n")}
    batch = _batch_of(client.post("/generate", seeds))
    assert [g.seed for g in batch.items.order_by("pk")] == [11, 12, 13]
    # A header row (after the byte-order mark spreadsheets write): each row is one take.
    pairs = {**form(prompt="", seed="-1"),
             "list_file": _csv("\ufeffPrompt,Seed\na fox,1\n\"a fox, at night\",2\n")}  # fmt: skip
    batch = _batch_of(client.post("/generate", pairs))
    found = [(g.prompt, g.seed) for g in batch.items.order_by("pk")]
    assert found == [("a fox", 1), ("a fox, at night", 2)]


def test_bad_takes_are_form_errors_beside_their_field(owner: Account, settings: Any) -> None:
    client = logged_in(owner)
    _refused(client.post("/generate", form(takes="9")), "takes", "less than or equal to 8")
    _refused(client.post("/generate", form(seed="-1", seed_list="4\n4")), "seed_list",
             "Seed 4 is listed twice in the seed list")  # fmt: skip
    _refused(client.post("/generate", form(seed="-1", seed_list="4\nfour")), "seed_list",
             "Line 2 is 'four'")  # fmt: skip
    _refused(client.post("/generate", form(compare_models=["local", "no-such-model"])),
             "compare_models", "Select a valid choice")  # fmt: skip
    many = "\n".join(str(n) for n in range(40))
    _refused(client.post("/generate", form(seed="-1", takes="2", prompt="", prompt_list=many)),
             "takes", "A batch has at most 64 items")  # fmt: skip
    _refused(client.post("/generate", form(seed="-1", takes="3", seed_list="1\n2")), "takes",
             "Give the seed list or Takes, not both")  # fmt: skip
    _refused(client.post("/generate", form(seed="5", takes="3")), "takes",
             "Takes makes variations with fresh seeds")  # fmt: skip
    _refused(client.post("/generate", {**form(seed="-1"), "list_file": _csv("a,b\nc,d\n")}),
             "list_file", "The CSV file has several columns")  # fmt: skip
    _refused(client.post("/generate", {**form(seed="-1"), "list_file": _csv("seed\n1\nx\n")}),
             "list_file", "CSV seed 2 is 'x'")  # fmt: skip
    junk = io.BytesIO(b"\xff\xfe\x00bad")
    junk.name = "x.csv"
    _refused(client.post("/generate", {**form(seed="-1"), "list_file": junk}), "list_file",
             "not UTF-8")  # fmt: skip
    # Every take is checked: a duration one compared model cannot make names that model.
    settings.FAL_KEY = "fal-test-key"
    _refused(client.post("/generate", form(resolution="720p",
                                           compare_models=["local", "ltxv-13b"])),
             "resolution", "Compare models lists 'ltxv-13b'")  # fmt: skip
    assert not Generation.objects.exists()


def test_takes_answer_json_with_the_batch_page_for_the_generate_script(owner: Account) -> None:
    client = logged_in(owner)
    made = client.post("/generate", form(takes="2", seed="-1"), HTTP_ACCEPT="application/json")
    assert made.status_code == 201
    batch = Batch.objects.get()
    assert made.json() == {"batch_id": batch.batch_id, "url": f"/batches/{batch.batch_id}"}
    single = client.post("/generate", form(), HTTP_ACCEPT="application/json")
    assert single.status_code == 201 and "card" in single.json()


def _made(account: Account, n: int = 3) -> Batch:
    specs = [build_spec({"model": "local", "prompt": "takes", "duration": 1, "seed": s},
                        test_mode=False) for s in range(n)]  # fmt: skip
    batch, _, _ = batches.batch_create(team=account.team, user=account.user, specs=specs,
                                       source="dashboard")  # fmt: skip
    return batch


def test_a_batch_is_404_for_another_team(owner: Account, outsider: Account) -> None:
    batch = _made(owner)
    client = logged_in(outsider)
    assert client.get(f"/batches/{batch.batch_id}").status_code == 404
    item = batch.items.first()
    assert item is not None
    pick = client.post(f"/batches/{batch.batch_id}/pick", {"generation_id": item.generation_id})
    assert pick.status_code == 404
    cancel = client.post(f"/batches/{batch.batch_id}/cancel", {"confirm": "yes"})
    assert cancel.status_code == 404
    assert batch.batch_id not in client.get("/batches/").content.decode()
    batch.refresh_from_db()
    assert batch.pick is None and not batch.items.filter(status=Status.CANCELED).exists()


def test_the_pick_is_kept_and_shown_in_history_and_the_batch(owner: Account) -> None:
    batch = _made(owner)
    second = batch.items.order_by("pk")[1]
    client = logged_in(owner)
    response = client.post(
        f"/batches/{batch.batch_id}/pick", {"generation_id": second.generation_id}
    )
    assert response.status_code == 302 and response["Location"] == f"/batches/{batch.batch_id}"
    batch.refresh_from_db()
    assert batch.pick == second
    page = client.get(f"/batches/{batch.batch_id}").content.decode()
    assert page.count('<span class="badge pick">Pick</span>') == 1
    assert f'class="take picked" id="take-{second.generation_id}"' in page
    history = client.get("/generations/").content.decode()
    assert history.count('<span class="badge pick">Pick</span>') == 1
    assert history.count(f'href="/batches/{batch.batch_id}"') == 3
    batch.items.update(status=Status.COMPLETED)
    gallery = client.get("/gallery").content.decode()
    assert gallery.count('<span class="tag pick">Pick</span>') == 1
    assert gallery.count(f'class="batch-link" href="/batches/{batch.batch_id}"') == 3
    # Not a take of this batch: refused, the pick stays.
    other = _made(owner, 1).items.get()
    client.post(f"/batches/{batch.batch_id}/pick", {"generation_id": other.generation_id})
    batch.refresh_from_db()
    assert batch.pick == second
    client.post(f"/batches/{batch.batch_id}/pick", {"generation_id": ""})
    batch.refresh_from_db()
    assert batch.pick is None


def test_cancel_the_rest_asks_first_then_cancels_what_has_not_finished(owner: Account) -> None:
    batch = _made(owner)
    client = logged_in(owner)
    asked = client.post(f"/batches/{batch.batch_id}/cancel")
    assert asked.status_code == 200 and "Cancel the 3 takes" in asked.content.decode()
    assert not batch.items.filter(status=Status.CANCELED).exists()
    done = client.post(f"/batches/{batch.batch_id}/cancel", {"confirm": "yes"})
    assert done.status_code == 302
    assert batch.items.filter(status=Status.CANCELED).count() == 3


def test_the_queue_page_lists_waiting_work_with_positions(owner: Account) -> None:
    batch = _made(owner)
    page = logged_in(owner).get("/queue").content.decode()
    for g in batch.items.all():
        assert f'data-live="{g.generation_id}"' in page
    assert "Pause queue" in page and "queue is paused" not in page
    # Positions: one handed to the workers, then the others in line behind it.
    assert "<tr><td>0</td>" in page and "<tr><td>1</td>" in page


def test_a_paused_queue_holds_its_work_until_resumed(owner: Account) -> None:
    client = logged_in(owner)
    assert client.post("/queue/pause", {"paused": "1"}).status_code == 302
    owner.team.refresh_from_db()
    assert owner.team.queue_paused
    gen = Generation.objects.get(pk=_made(owner, 1).items.get().pk)
    assert gen.status == Status.PENDING
    assert fairshare.release() == 0
    gen.refresh_from_db()
    assert gen.status == Status.PENDING
    page = client.get("/queue").content.decode()
    assert "queue is paused" in page and "Resume queue" in page
    # Resuming hands the waiting work over at once.
    assert client.post("/queue/pause", {"paused": "0"}).status_code == 302
    owner.team.refresh_from_db()
    gen.refresh_from_db()
    assert not owner.team.queue_paused and gen.status == Status.IN_QUEUE
    assert "queue is paused" not in client.get("/queue").content.decode()


def test_only_owners_and_admins_pause_the_queue(owner: Account, outsider: Account) -> None:
    team = accounts.team_create(name="Shared", owner=owner.user)
    Membership.objects.create(team=team, user=outsider.user, role=Membership.Role.MEMBER)
    member = Client()
    member.force_login(outsider.user)
    member.post("/teams/switch", {"team": str(team.code)})
    assert "Pause queue" not in member.get("/queue").content.decode()
    member.post("/queue/pause", {"paused": "1"})
    team.refresh_from_db()
    assert not team.queue_paused


def test_a_viewer_sees_a_batch_but_cannot_pick_or_cancel(owner: Account) -> None:
    batch = _made(owner)
    vic = make_account("vic@example.com")
    Membership.objects.create(team=owner.team, user=vic.user, role=Membership.Role.VIEWER)
    client = logged_in(vic)
    client.post("/teams/switch", {"team": str(owner.team.code)})
    assert client.get(f"/batches/{batch.batch_id}").status_code == 200
    chosen = batch.items.order_by("pk")[0].generation_id
    client.post(f"/batches/{batch.batch_id}/pick", {"generation_id": chosen})
    client.post(f"/batches/{batch.batch_id}/cancel", {"confirm": "yes"})
    batch.refresh_from_db()
    assert batch.pick is None
    assert not batch.items.filter(status=Status.CANCELED).exists()

"""Teams: create, invite by e-mail link, roles, remove, leave, switch."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape
from typing import Any

from django.core import mail
from django.test import Client
from django.utils import timezone

from generations.core import accounts, apikeys
from generations.models import ApiKey, Generation, Invitation, Membership, Team
from tests.conftest import Account, ApiClient, make_account
from tests.test_dashboard import form, logged_in


def make_studio(owner: Account) -> tuple[Client, Team]:
    client = logged_in(owner)
    response = client.post("/teams", {"name": "Studio North"})
    team = Team.objects.get(name="Studio North")
    assert response["Location"] == f"/teams/{team.code}"
    return client, team


def invite(client: Client, team: Team, email: str, role: str = "member") -> str:
    client.post(f"/teams/{team.code}/invite", {"email": email, "role": role})
    link = re.search(r"http://testserver(/invite/\w+)", str(mail.outbox[-1].body))
    assert link is not None
    return link.group(1)


def test_creating_a_team_makes_you_its_owner_and_current_team(owner: Account) -> None:
    client, team = make_studio(owner)
    assert Membership.objects.get(team=team, user=owner.user).role == "owner"
    client.post("/generate", form())
    assert Generation.objects.get().team == team


def test_an_invitation_link_adds_the_person_once(owner: Account) -> None:
    client, team = make_studio(owner)
    path = invite(client, team, "bob@example.com")
    assert mail.outbox[-1].to == ["bob@example.com"]
    assert Invitation.objects.get().token_digest not in mail.outbox[-1].body  # digest only stored
    bob = make_account("bob@example.com")
    bob_client = logged_in(bob)
    assert "Join Studio North" in bob_client.get(path).content.decode()
    assert bob_client.post(path)["Location"] == "/generate"
    assert Membership.objects.get(team=team, user=bob.user).role == "member"
    # Single use: the link is dead now, for Bob and for anyone else.
    assert logged_in(make_account("eve@example.com")).post(path).status_code == 404


def test_an_expired_invitation_does_not_work(owner: Account) -> None:
    client, team = make_studio(owner)
    path = invite(client, team, "late@example.com")
    Invitation.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    assert logged_in(make_account("late@example.com")).post(path).status_code == 404


def test_viewers_can_look_but_not_generate_or_make_keys(owner: Account) -> None:
    client, team = make_studio(owner)
    path = invite(client, team, "vic@example.com", role="viewer")
    vic = make_account("vic@example.com")
    vic_client = logged_in(vic)
    vic_client.post(path)
    response = vic_client.post("/generate", form())
    assert response.status_code == 403 and "does not allow" in response.content.decode()
    vic_client.post("/keys", {"name": "nope"})
    assert not ApiKey.objects.filter(team=team, user=vic.user).exists()
    assert vic_client.get("/generations/").status_code == 200


def test_a_viewers_api_key_cannot_generate(owner: Account) -> None:
    _, team = make_studio(owner)
    vic = make_account("vic2@example.com")
    Membership.objects.create(team=team, user=vic.user, role="member")
    _, raw = apikeys.api_key_create(team=team, user=vic.user)
    Membership.objects.filter(team=team, user=vic.user).update(role="viewer")
    response = ApiClient(raw).post("/api/v1/generate", {"model": "local", "prompt": "x"})
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"


def test_removing_a_member_revokes_their_keys_for_that_team(owner: Account) -> None:
    client, team = make_studio(owner)
    bob = make_account("bob2@example.com")
    Membership.objects.create(team=team, user=bob.user, role="member")
    _, raw = apikeys.api_key_create(team=team, user=bob.user)
    client.post(f"/teams/{team.code}/members/{bob.user.pk}/remove", {"confirm": "yes"})
    assert not Membership.objects.filter(team=team, user=bob.user).exists()
    assert ApiClient(raw).get("/api/v1/user").status_code == 401
    assert ApiClient(bob.raw_key).get("/api/v1/user").status_code == 200  # personal team key


def test_members_can_leave_but_the_last_owner_cannot(owner: Account) -> None:
    client, team = make_studio(owner)
    bob = make_account("bob3@example.com")
    Membership.objects.create(team=team, user=bob.user, role="admin")
    logged_in(bob).post(f"/teams/{team.code}/members/{bob.user.pk}/remove", {"confirm": "yes"})
    assert not Membership.objects.filter(team=team, user=bob.user).exists()
    client.post(f"/teams/{team.code}/members/{owner.user.pk}/remove", {"confirm": "yes"})
    assert Membership.objects.filter(team=team, user=owner.user).exists()


def test_only_managers_change_roles_and_only_owners_make_owners(owner: Account) -> None:
    client, team = make_studio(owner)
    admin, member = make_account("adm@example.com"), make_account("mem@example.com")
    Membership.objects.create(team=team, user=admin.user, role="admin")
    Membership.objects.create(team=team, user=member.user, role="member")
    logged_in(member).post(f"/teams/{team.code}/members/{admin.user.pk}/role", {"role": "viewer"})
    assert Membership.objects.get(team=team, user=admin.user).role == "admin"
    logged_in(admin).post(f"/teams/{team.code}/members/{member.user.pk}/role", {"role": "owner"})
    assert Membership.objects.get(team=team, user=member.user).role == "member"
    client.post(f"/teams/{team.code}/members/{member.user.pk}/role", {"role": "owner"})
    assert Membership.objects.get(team=team, user=member.user).role == "owner"


def test_switching_teams_changes_where_work_goes(owner: Account) -> None:
    client, team = make_studio(owner)
    personal = accounts.team_personal_get(user=owner.user)
    client.post("/teams/switch", {"team": str(personal.code)})
    client.post("/generate", form())
    assert Generation.objects.get().team == personal
    assert client.post("/teams/switch", {"team": "not-a-uuid"}).status_code == 404


def test_outsiders_cannot_see_a_team(owner: Account, outsider: Account) -> None:
    _, team = make_studio(owner)
    assert logged_in(outsider).get(f"/teams/{team.code}").status_code == 404
    assert logged_in(outsider).post("/teams/switch", {"team": str(team.code)}).status_code == 404


def test_invite_only_sign_up_needs_an_invitation(owner: Account, settings: Any) -> None:
    settings.VIDEOGEN_SIGNUP = "invite"
    client, team = make_studio(owner)
    assert Client().get("/accounts/signup/").status_code == 403
    token = invite(client, team, "nina@example.com").rsplit("/", 1)[1]
    new = Client()
    response = new.post(
        f"/accounts/signup/?invite={token}",
        {"email": "nina@example.com", "name": "Nina", "password1": "a long pass phrase 9",
         "password2": "a long pass phrase 9"},
    )  # fmt: skip
    assert response.status_code == 302
    assert Membership.objects.filter(team=team, user__email="nina@example.com").exists()


def test_each_member_action_posts_to_a_url_of_its_own(owner: Account) -> None:
    client, team = make_studio(owner)
    bob = make_account("bob4@example.com")
    Membership.objects.create(team=team, user=bob.user, role="member")
    html = client.get(f"/teams/{team.code}").content.decode()
    assert 'name="action"' not in html
    for url in (
        f"/teams/{team.code}/invite",
        f"/teams/{team.code}/members/{bob.user.pk}/role",
        f"/teams/{team.code}/members/{bob.user.pk}/remove",
    ):
        assert f'action="{url}"' in html, url
        assert client.get(url).status_code == 405, url
    # The team page itself no longer takes an action field.
    response = client.post(f"/teams/{team.code}", {"action": "remove", "user": bob.user.pk})
    assert response.status_code == 405
    assert Membership.objects.filter(team=team, user=bob.user).exists()


def test_the_invite_link_is_shown_once_and_kept_nowhere(owner: Account) -> None:
    client, team = make_studio(owner)
    response = client.post(f"/teams/{team.code}/invite", {"email": "ivy@example.com"})
    found = re.search(r"http://testserver/invite/(\w+)", str(mail.outbox[-1].body))
    assert found is not None
    assert response.status_code == 200 and found.group(0) in response.content.decode()
    assert Invitation.objects.get().role == "member"
    assert found.group(1) not in client.get(f"/teams/{team.code}").content.decode()
    assert found.group(1) not in str(dict(client.session.items()))


def test_role_changes_and_removals_go_back_to_the_team_page(owner: Account) -> None:
    client, team = make_studio(owner)
    mia = make_account("mia@example.com")
    Membership.objects.create(team=team, user=mia.user, role="member")
    members = f"/teams/{team.code}/members"
    response = client.post(f"{members}/{mia.user.pk}/role", {"role": "viewer"})
    assert response.status_code == 302 and response["Location"] == f"/teams/{team.code}"
    assert Membership.objects.get(team=team, user=mia.user).role == "viewer"
    # Refusals come back as messages on the team page.
    page = client.post(f"{members}/999999/role", {"role": "admin"}, follow=True)
    assert "No such member." in page.content.decode()
    page = client.post(f"{members}/{owner.user.pk}/remove", {"confirm": "yes"}, follow=True)
    assert page.redirect_chain == [(f"/teams/{team.code}", 302)]
    assert "A team needs an owner" in page.content.decode()
    # Leaving goes back to the list of teams.
    page = logged_in(mia).post(f"{members}/{mia.user.pk}/remove", {"confirm": "yes"}, follow=True)
    assert page.redirect_chain == [("/teams", 302)]
    assert "You left Studio North." in page.content.decode()


def test_after_creating_a_team_your_earlier_generations_are_still_yours(
    owner: Account, outsider: Account
) -> None:
    """Creating a team switched you into it silently, and your personal generations then
    answered 404. The switch is said out loud, the header shows the current team with a
    switcher, and a link to a generation of another of *your* teams switches to that team."""
    client = logged_in(owner)
    client.post("/generate", form(prompt="made before the team"))
    mine = Generation.objects.get()
    personal = mine.team
    created = client.post("/teams", {"name": "Studio North"}, follow=True)
    text = unescape(created.content.decode())
    assert "Created Studio North. You now work in it" in text
    assert f"{personal.name}'s generations are where they were" in text
    header = re.search(r'<form method="post" action="/teams/switch" class="team-switch">.*?</form>',
                       text, re.S)  # fmt: skip
    assert header is not None
    options = re.findall(r'<option value="([^"]+)"( selected)?>([^<]+)</option>', header[0])
    studio = Team.objects.get(name="Studio North")
    assert (str(studio.code), " selected", "Studio North") in options
    assert (str(personal.code), "", personal.name) in options

    page = client.get(f"/generations/{mine.generation_id}")
    assert page.status_code == 200 and "made before the team" in page.content.decode()
    assert "Switched to" in unescape(page.content.decode())
    assert "made before the team" in client.get("/generations/").content.decode()  # History
    client.post("/generate", form(prompt="made after"))
    assert Generation.objects.get(prompt="made after").team == personal

    # Someone in neither team still gets a 404, and stays where they were.
    stranger = logged_in(outsider)
    assert stranger.get(f"/generations/{mine.generation_id}").status_code == 404


def test_the_header_switcher_goes_back_to_the_same_page_of_the_new_team(owner: Account) -> None:
    client, team = make_studio(owner)
    html = client.get("/usage").content.decode()
    assert '<input type="hidden" name="next" value="/usage">' in html
    personal = accounts.team_personal_get(user=owner.user)
    back = client.post("/teams/switch", {"team": str(personal.code), "next": "/usage"})
    assert back["Location"] == "/usage"
    client.post("/generate", form())
    gen = Generation.objects.get()
    # A generation's page is the old team's: the switcher there leads to Generate instead.
    page = client.get(f"/generations/{gen.generation_id}").content.decode()
    assert '<input type="hidden" name="next" value="/generate">' in page

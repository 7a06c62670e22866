"""Team management: add members by username or email with a role, change and remove roles; the owner
stays; every rule tried with the forbidden access (non-member 404, viewer 403, anonymous → login)."""

import pytest
from django.urls import reverse

from annotator import services
from annotator.errors import Conflict, InvalidInput
from annotator.models import Membership
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def team_url(project) -> str:
    return reverse("annotator:team", args=[project.slug])


def change_url(project, membership) -> str:
    return reverse("annotator:member_change", args=[project.slug, membership.pk])


def remove_url(project, membership) -> str:
    return reverse("annotator:member_remove", args=[project.slug, membership.pk])


def roles(project) -> dict[str, str]:
    return dict(Membership.objects.filter(project=project).values_list("user__username", "role"))


@pytest.fixture
def colleague(db):
    return UserFactory(username="ada", email="Ada.Lovelace@example.org")


@pytest.fixture
def viewer(project):
    user = UserFactory(username="vic")
    services.membership_set(project=project, user=user, role="viewer")
    return user


# Services -----------------------------------------------------------------------------------------------


def test_add_by_username_or_email(project, colleague):
    membership = services.membership_add(project=project, user_reference="ada", role="viewer")
    assert (membership.user, membership.role) == (colleague, "viewer")
    services.membership_remove(membership=membership)
    by_email = services.membership_add(project=project, user_reference=" ada.lovelace@EXAMPLE.org ", role="researcher")
    assert (by_email.user, by_email.role) == (colleague, "researcher")


@pytest.mark.parametrize(("reference", "role", "field", "error"), [
    ("nobody", "viewer", "user", InvalidInput),
    ("", "viewer", "user", InvalidInput),
    ("ada", "admin", "role", InvalidInput),
])
def test_bad_additions_name_the_field(project, colleague, reference, role, field, error):
    with pytest.raises(error) as err:
        services.membership_add(project=project, user_reference=reference, role=role)
    assert err.value.field == field
    assert "ada" not in roles(project)


def test_ambiguous_email_and_inactive_accounts_are_refused(project):
    UserFactory(username="twin1", email="twin@example.org")
    UserFactory(username="twin2", email="twin@example.org")
    UserFactory(username="gone", is_active=False)
    with pytest.raises(InvalidInput, match="Several accounts"):
        services.membership_add(project=project, user_reference="twin@example.org", role="viewer")
    with pytest.raises(InvalidInput, match="No account"):
        services.membership_add(project=project, user_reference="gone", role="viewer")


def test_adding_a_member_twice_is_a_conflict(project, viewer):
    with pytest.raises(Conflict) as err:
        services.membership_add(project=project, user_reference="vic", role="researcher")
    assert err.value.field == "user"
    assert roles(project)["vic"] == "viewer"


def test_the_owner_keeps_their_role_and_place(project, researcher):
    owner = Membership.objects.get(project=project, user=researcher)
    with pytest.raises(Conflict) as err:
        services.membership_change(membership=owner, role="viewer")
    assert err.value.field == "role"
    with pytest.raises(Conflict):
        services.membership_remove(membership=owner)
    with pytest.raises(Conflict):
        services.membership_set(project=project, user=researcher, role="viewer")
    assert roles(project)[researcher.username] == "researcher"


# Pages ---------------------------------------------------------------------------------------------------


def test_researcher_adds_changes_and_removes_members(client, project, researcher, colleague):
    client.force_login(researcher)
    page = client.get(team_url(project))
    assert page.status_code == 200 and researcher.username in page.content.decode()
    added = client.post(team_url(project), {"user": "ada.lovelace@example.org", "role": "viewer"})
    assert added.status_code == 302
    assert roles(project)["ada"] == "viewer"
    membership = Membership.objects.get(project=project, user=colleague)
    changed = client.post(change_url(project, membership), {f"m{membership.pk}-role": "researcher"})
    assert changed.status_code == 302 and roles(project)["ada"] == "researcher"
    removed = client.post(remove_url(project, membership))
    assert removed.status_code == 302 and "ada" not in roles(project)
    client.force_login(colleague)
    assert client.get(reverse("annotator:project_detail", args=[project.slug])).status_code == 404


def test_a_bad_addition_is_a_4xx_naming_the_problem(client, project, researcher, viewer):
    client.force_login(researcher)
    unknown = client.post(team_url(project), {"user": "nobody", "role": "viewer"})
    assert unknown.status_code == 400
    assert "No account has the username or email" in str(unknown.context["form"].errors["user"])
    twice = client.post(team_url(project), {"user": "vic", "role": "researcher"})
    assert twice.status_code == 409 and "already a member" in str(twice.context["form"].errors["user"])
    bad_role = client.post(team_url(project), {"user": "vic", "role": "owner"})
    assert bad_role.status_code == 400 and "role" in bad_role.context["form"].errors
    assert roles(project) == {researcher.username: "researcher", "vic": "viewer"}


def test_the_owner_cannot_be_demoted_or_removed_from_the_page(client, project, researcher):
    second = UserFactory()
    services.membership_set(project=project, user=second, role="researcher")
    owner = Membership.objects.get(project=project, user=researcher)
    client.force_login(second)
    demoted = client.post(change_url(project, owner), {f"m{owner.pk}-role": "viewer"})
    assert demoted.status_code == 409 and "always a researcher" in demoted.content.decode()
    removed = client.post(remove_url(project, owner))
    assert removed.status_code == 409 and "cannot be removed" in removed.content.decode()
    bad = client.post(change_url(project, owner), {f"m{owner.pk}-role": "superuser"})
    assert bad.status_code == 400
    assert roles(project)[researcher.username] == "researcher"


def test_viewer_sees_the_team_but_every_change_is_403(client, project, viewer, colleague, researcher):
    client.force_login(viewer)
    page = client.get(team_url(project))
    assert page.status_code == 200
    html = page.content.decode()
    assert researcher.username in html and 'id="add-member"' not in html and "Change role" not in html
    owner = Membership.objects.get(project=project, user=researcher)
    mine = Membership.objects.get(project=project, user=viewer)
    assert client.post(team_url(project), {"user": "ada", "role": "researcher"}).status_code == 403
    assert client.post(change_url(project, mine), {f"m{mine.pk}-role": "researcher"}).status_code == 403
    assert client.post(change_url(project, owner), {f"m{owner.pk}-role": "viewer"}).status_code == 403
    assert client.post(remove_url(project, owner)).status_code == 403
    assert roles(project) == {researcher.username: "researcher", "vic": "viewer"}


def test_non_members_get_404_everywhere(client, project, researcher):
    outsider = UserFactory()
    services.project_create(owner=outsider, name="Theirs")
    owner = Membership.objects.get(project=project, user=researcher)
    client.force_login(outsider)
    assert client.get(team_url(project)).status_code == 404
    assert client.post(team_url(project), {"user": outsider.username, "role": "researcher"}).status_code == 404
    assert client.post(change_url(project, owner), {f"m{owner.pk}-role": "viewer"}).status_code == 404
    assert client.post(remove_url(project, owner)).status_code == 404
    assert roles(project) == {researcher.username: "researcher"}


def test_a_membership_of_another_project_is_404(client, project, researcher):
    other_owner = UserFactory()
    other = services.project_create(owner=other_owner, name="Other")
    guest = UserFactory()
    services.membership_set(project=other, user=guest, role="viewer")
    theirs = Membership.objects.get(project=other, user=guest)
    client.force_login(researcher)  # a researcher of `project`, not of `other`
    assert client.post(remove_url(project, theirs)).status_code == 404
    assert client.post(change_url(project, theirs), {f"m{theirs.pk}-role": "researcher"}).status_code == 404
    assert Membership.objects.filter(pk=theirs.pk, role="viewer").exists()


def test_anonymous_users_are_sent_to_the_login(client, project, researcher):
    owner = Membership.objects.get(project=project, user=researcher)
    for response in (client.get(team_url(project)),
                     client.post(team_url(project), {"user": "x", "role": "viewer"}),
                     client.post(change_url(project, owner), {f"m{owner.pk}-role": "viewer"}),
                     client.post(remove_url(project, owner))):
        assert response.status_code == 302 and response.url.startswith(reverse("login"))
    assert roles(project) == {researcher.username: "researcher"}


def test_get_on_the_change_and_remove_urls_is_refused(client, project, researcher):
    owner = Membership.objects.get(project=project, user=researcher)
    client.force_login(researcher)
    assert client.get(remove_url(project, owner)).status_code == 405
    assert client.get(change_url(project, owner)).status_code == 405


def test_an_added_viewer_can_read_but_not_write_the_project(client, project, researcher, colleague):
    services.membership_add(project=project, user_reference="ada", role="viewer")
    client.force_login(colleague)
    assert client.get(reverse("annotator:project_detail", args=[project.slug])).status_code == 200
    assert client.post(reverse("annotator:instructions", args=[project.slug]), {"text": "x"}).status_code == 403

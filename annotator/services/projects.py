"""Projects, their settings and their team: create, update, members."""

from __future__ import annotations

import re

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from annotator import selectors
from annotator.errors import Conflict, InvalidInput
from annotator.models import Membership, Project, Role

MAX_REPEAT_RATE = 0.5
MAX_CHECK_RATE = 0.5
MAX_CHECK_FAIL_LIMIT = 1000
MIN_RADIUS, MAX_RADIUS = 0.005, 0.5
MAX_TASKS_PER_RATER = 100_000
_CODE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

#: The fields :func:`project_update` may change.
MAX_ADAPTIVE_BATCH = 100_000
UPDATABLE_FIELDS = (
    "name", "description", "overlap", "tasks_per_rater", "repeat_rate", "effective_radius", "allow_tie",
    "completion_code", "completion_redirect_url", "no_places_code", "consent_declined_code", "is_open",
    "pairwise_flags", "adaptive_batch", "adaptive_target", "prolific_webhook_secret",
    "check_rate", "check_fail_limit", "screened_out_code",
)
_SECRET = re.compile(r"^[\x21-\x7e]{16,128}$")


def project_create(
    *,
    owner: AbstractBaseUser,
    name: str,
    slug: str = "",
    description: str = "",
    overlap: int = 3,
    tasks_per_rater: int = 0,
    repeat_rate: float = 0.0,
    completion_redirect_url: str = "",
    is_open: bool = True,
) -> Project:
    """A new project with its owner as researcher.

    ``is_open=False`` creates it closed (the pages do: a project opens to raters in its settings, once it
    has consent and instructions). Open or not, raters can join only once it has both
    (:func:`annotator.selectors.project_readiness`).
    """
    name = _clean_name(name)
    slug = slugify(slug or name)[:64]
    if not slug:
        raise InvalidInput("The slug must contain letters or digits.", field="slug")
    _check_overlap(overlap)
    repeat_rate = _check_repeat_rate(repeat_rate)
    _check_tasks_per_rater(tasks_per_rater)
    completion_redirect_url = _clean_url(completion_redirect_url)
    with transaction.atomic():
        if Project.objects.filter(slug=slug).exists():
            raise Conflict(f"A project with the slug '{slug}' already exists.", field="slug")
        project = Project.objects.create(
            owner=owner,
            name=name,
            slug=slug,
            description=description or "",
            overlap=overlap,
            tasks_per_rater=tasks_per_rater,
            repeat_rate=repeat_rate,
            completion_redirect_url=completion_redirect_url,
            is_open=bool(is_open),
        )
        Membership.objects.create(project=project, user=owner, role=Role.RESEARCHER)
    return project


def project_update(*, project: Project, **fields) -> Project:
    """Change some of the project's settings (:data:`UPDATABLE_FIELDS`), all validated first.

    Any bad value raises InvalidInput naming its field, and nothing is changed. Opening the project
    (``is_open=True``) needs a consent text and instructions: raters could not start without them.
    """
    unknown = set(fields) - set(UPDATABLE_FIELDS)
    if unknown:
        raise InvalidInput(f"Unknown project field(s): {', '.join(sorted(unknown))}.", field=sorted(unknown)[0])
    clean = dict(fields)
    if "name" in clean:
        clean["name"] = _clean_name(clean["name"])
    if "description" in clean:
        clean["description"] = _clean_text(clean["description"], field="description", limit=5000)
    if "overlap" in clean:
        _check_overlap(clean["overlap"])
    if "tasks_per_rater" in clean:
        _check_tasks_per_rater(clean["tasks_per_rater"])
    if "repeat_rate" in clean:
        clean["repeat_rate"] = _check_repeat_rate(clean["repeat_rate"])
    if "effective_radius" in clean:
        clean["effective_radius"] = _check_radius(clean["effective_radius"])
    if "check_rate" in clean:
        rate = clean["check_rate"]
        if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 0 <= rate <= MAX_CHECK_RATE:
            raise InvalidInput(f"check_rate must be a number from 0 to {MAX_CHECK_RATE}.", field="check_rate")
        clean["check_rate"] = float(rate)
    if "check_fail_limit" in clean and (not isinstance(clean["check_fail_limit"], int)
                                        or isinstance(clean["check_fail_limit"], bool)
                                        or not 0 <= clean["check_fail_limit"] <= MAX_CHECK_FAIL_LIMIT):
        raise InvalidInput(f"check_fail_limit must be 0 (never screen out) or a whole number up to "
                           f"{MAX_CHECK_FAIL_LIMIT}.", field="check_fail_limit")
    if "adaptive_batch" in clean and (not isinstance(clean["adaptive_batch"], int)
                                      or isinstance(clean["adaptive_batch"], bool)
                                      or not 0 <= clean["adaptive_batch"] <= MAX_ADAPTIVE_BATCH):
        raise InvalidInput(f"adaptive_batch must be 0 (off) or a whole number up to {MAX_ADAPTIVE_BATCH:,}.",
                           field="adaptive_batch")
    if "adaptive_target" in clean and clean["adaptive_target"] not in ("items", "models"):
        raise InvalidInput("adaptive_target must be items or models.", field="adaptive_target")
    for flag in ("allow_tie", "is_open"):
        if flag in clean and not isinstance(clean[flag], bool):
            raise InvalidInput(f"{flag} must be true or false.", field=flag)
    if "completion_code" in clean:
        clean["completion_code"] = _clean_code(clean["completion_code"], field="completion_code", required=True)
    for name in ("no_places_code", "consent_declined_code", "screened_out_code"):
        if name in clean:
            clean[name] = _clean_code(clean[name], field=name, required=False)
    if "completion_redirect_url" in clean:
        clean["completion_redirect_url"] = _clean_url(clean["completion_redirect_url"])
    if "prolific_webhook_secret" in clean:
        secret = clean["prolific_webhook_secret"]
        if not isinstance(secret, str) or (secret and not _SECRET.match(secret)):
            raise InvalidInput("prolific_webhook_secret must be blank (webhook off) or 16–128 printable characters "
                               "without spaces, as Prolific shows it.", field="prolific_webhook_secret")
    if "pairwise_flags" in clean:
        flags = clean["pairwise_flags"]
        if not isinstance(flags, list) or not all(isinstance(f, str) and 0 < len(f) <= 40 for f in flags):
            raise InvalidInput("pairwise_flags must be a list of short strings.", field="pairwise_flags")
    with transaction.atomic():
        if clean.get("is_open"):
            Project.objects.select_for_update().filter(pk=project.pk).first()
            missing = selectors.project_readiness(project=project).missing
            if missing:
                raise InvalidInput(
                    f"The project cannot open to raters without {' and '.join(missing)}: write "
                    f"{'them' if len(missing) > 1 else 'it'} first.", field="is_open")
        for key, value in clean.items():
            setattr(project, key, value)
        if clean:
            project.save(update_fields=list(clean))
    return project


def _clean_name(name) -> str:
    name = (name or "").strip() if isinstance(name, str) or name is None else name
    if not isinstance(name, str) or not name:
        raise InvalidInput("A project needs a name.", field="name")
    if len(name) > 200:
        raise InvalidInput("name must be at most 200 characters.", field="name")
    return name


def _clean_text(value, *, field: str, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidInput(f"{field} must be text of at most {limit} characters.", field=field)
    return value.strip()


def _check_overlap(overlap: int) -> None:
    if not isinstance(overlap, int) or isinstance(overlap, bool) or not 1 <= overlap <= 100:
        raise InvalidInput("overlap must be a whole number from 1 to 100.", field="overlap")


def _check_tasks_per_rater(tasks_per_rater: int) -> None:
    if (not isinstance(tasks_per_rater, int) or isinstance(tasks_per_rater, bool)
            or not 0 <= tasks_per_rater <= MAX_TASKS_PER_RATER):
        raise InvalidInput(f"tasks_per_rater must be 0 (no limit) or a whole number up to {MAX_TASKS_PER_RATER:,}.",
                           field="tasks_per_rater")


def _check_repeat_rate(repeat_rate) -> float:
    if (not isinstance(repeat_rate, (int, float)) or isinstance(repeat_rate, bool)
            or not 0 <= repeat_rate <= MAX_REPEAT_RATE):
        raise InvalidInput(f"repeat_rate must be a number from 0 to {MAX_REPEAT_RATE}.", field="repeat_rate")
    return float(repeat_rate)


def _check_radius(radius) -> float:
    if (not isinstance(radius, (int, float)) or isinstance(radius, bool)
            or not MIN_RADIUS <= radius <= MAX_RADIUS):
        raise InvalidInput(f"effective_radius must be a fraction of the image height from {MIN_RADIUS} to "
                           f"{MAX_RADIUS} (RichHF-18K: 0.05).", field="effective_radius")
    return float(radius)


def _clean_code(value, *, field: str, required: bool) -> str:
    value = (value or "").strip() if isinstance(value, str) or value is None else value
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be text.", field=field)
    if not value and not required:
        return ""
    if not _CODE.match(value):
        raise InvalidInput(f"{field} must be 1 to 64 letters, digits, '-' or '_' (crowd platforms' codes are).",
                           field=field)
    return value


def _clean_url(value) -> str:
    value = (value or "").strip() if isinstance(value, str) or value is None else value
    if not isinstance(value, str):
        raise InvalidInput("completion_redirect_url must be a URL.", field="completion_redirect_url")
    if not value:
        return ""
    try:
        URLValidator(schemes=["http", "https"])(value)
    except ValidationError:
        raise InvalidInput("completion_redirect_url must be an http(s) URL, e.g. the crowd platform's "
                           "completion URL.", field="completion_redirect_url") from None
    if len(value) > 200:
        raise InvalidInput("completion_redirect_url must be at most 200 characters.", field="completion_redirect_url")
    return value


# Team -------------------------------------------------------------------------------------------------


def _check_role(role) -> None:
    if role not in Role.values:
        raise InvalidInput(f"role must be one of {', '.join(Role.values)}.", field="role")


def membership_set(*, project: Project, user: AbstractBaseUser, role: str) -> Membership:
    """Give ``user`` ``role`` in the project, adding them if needed (fixtures and scripts; the team page
    uses :func:`membership_add`, :func:`membership_change` and :func:`membership_remove`)."""
    _check_role(role)
    if user.pk == project.owner_id and role != Role.RESEARCHER:
        raise Conflict("The project's owner is always a researcher.", field="role")
    membership, _ = Membership.objects.update_or_create(project=project, user=user, defaults={"role": role})
    return membership


def _user_by_reference(reference: str) -> AbstractBaseUser:
    """The active user whose username (exactly, else case-insensitively) or email is ``reference``."""
    User = get_user_model()
    users = User.objects.filter(is_active=True)
    exact = users.filter(username=reference).first()
    if exact is not None:
        return exact
    for lookup, what in (("username__iexact", "username"), ("email__iexact", "email")):
        matches = list(users.filter(**{lookup: reference})[:2])
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InvalidInput(f"Several accounts have the {what} '{reference}'; give the exact username.",
                               field="user")
    raise InvalidInput(
        f"No account has the username or email '{reference}'. They need an account first (an administrator "
        "creates it in the admin), then add them here.", field="user")


def membership_add(*, project: Project, user_reference: str, role: str) -> Membership:
    """Add the person named by username or email to the project's team with ``role``.

    InvalidInput (field ``user``) when no active account matches or the reference is ambiguous, or (field
    ``role``) for an unknown role; Conflict when they are a member already.
    """
    _check_role(role)
    reference = (user_reference or "").strip() if isinstance(user_reference, str) else ""
    if not reference:
        raise InvalidInput("Give the username or email of the person to add.", field="user")
    if len(reference) > 254:
        raise InvalidInput("A username or email has at most 254 characters.", field="user")
    user = _user_by_reference(reference)
    try:
        with transaction.atomic():
            existing = Membership.objects.filter(project=project, user=user).first()
            if existing is not None:
                raise Conflict(f"{user.get_username()} is already a member ({existing.get_role_display().lower()}); "
                               "change their role in the list.", field="user")
            return Membership.objects.create(project=project, user=user, role=role)
    except IntegrityError:
        raise Conflict(f"{user.get_username()} is already a member.", field="user") from None


def membership_change(*, membership: Membership, role: str) -> Membership:
    """Change a member's role. The owner's role never changes (they are always a researcher)."""
    _check_role(role)
    with transaction.atomic():
        locked = Membership.objects.select_for_update().select_related("project").get(pk=membership.pk)
        if locked.user_id == locked.project.owner_id and role != Role.RESEARCHER:
            raise Conflict("The project's owner is always a researcher.", field="role")
        if locked.role != role:
            locked.role = role
            locked.save(update_fields=["role"])
    return locked


def membership_remove(*, membership: Membership) -> None:
    """Remove a member from the team. The owner cannot be removed."""
    with transaction.atomic():
        locked = Membership.objects.select_for_update().select_related("project").filter(pk=membership.pk).first()
        if locked is None:
            return
        if locked.user_id == locked.project.owner_id:
            raise Conflict("The project's owner cannot be removed.", field="user")
        locked.delete()

"""Projects and their settings: create, update, members."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils.text import slugify

from annotator.errors import Conflict, InvalidInput
from annotator.models import Membership, Project, Role

MAX_REPEAT_RATE = 0.5


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
) -> Project:
    name = (name or "").strip()
    if not name:
        raise InvalidInput("A project needs a name.", field="name")
    slug = slugify(slug or name)[:64]
    if not slug:
        raise InvalidInput("The slug must contain letters or digits.", field="slug")
    _check_overlap(overlap)
    repeat_rate = _check_repeat_rate(repeat_rate)
    if tasks_per_rater < 0:
        raise InvalidInput("tasks_per_rater must be 0 (no limit) or more.", field="tasks_per_rater")
    with transaction.atomic():
        if Project.objects.filter(slug=slug).exists():
            raise Conflict(f"A project with the slug '{slug}' already exists.", field="slug")
        project = Project.objects.create(
            owner=owner,
            name=name,
            slug=slug,
            description=description,
            overlap=overlap,
            tasks_per_rater=tasks_per_rater,
            repeat_rate=repeat_rate,
            completion_redirect_url=completion_redirect_url,
        )
        Membership.objects.create(project=project, user=owner, role=Role.RESEARCHER)
    return project


def project_update(*, project: Project, **fields) -> Project:
    allowed = {"name", "description", "overlap", "tasks_per_rater", "repeat_rate", "completion_redirect_url",
               "is_open", "pairwise_flags", "completion_code"}
    unknown = set(fields) - allowed
    if unknown:
        raise InvalidInput(f"Unknown project field(s): {', '.join(sorted(unknown))}.", field=sorted(unknown)[0])
    if "overlap" in fields:
        _check_overlap(fields["overlap"])
    if "repeat_rate" in fields:
        fields["repeat_rate"] = _check_repeat_rate(fields["repeat_rate"])
    if "pairwise_flags" in fields:
        flags = fields["pairwise_flags"]
        if not isinstance(flags, list) or not all(isinstance(f, str) and 0 < len(f) <= 40 for f in flags):
            raise InvalidInput("pairwise_flags must be a list of short strings.", field="pairwise_flags")
    for key, value in fields.items():
        setattr(project, key, value)
    project.save(update_fields=list(fields))
    return project


def _check_overlap(overlap: int) -> None:
    if not isinstance(overlap, int) or not 1 <= overlap <= 100:
        raise InvalidInput("overlap must be a whole number from 1 to 100.", field="overlap")


def _check_repeat_rate(repeat_rate) -> float:
    if (not isinstance(repeat_rate, (int, float)) or isinstance(repeat_rate, bool)
            or not 0 <= repeat_rate <= MAX_REPEAT_RATE):
        raise InvalidInput(f"repeat_rate must be a number from 0 to {MAX_REPEAT_RATE}.", field="repeat_rate")
    return float(repeat_rate)


def membership_set(*, project: Project, user: AbstractBaseUser, role: str) -> Membership:
    if role not in Role.values:
        raise InvalidInput(f"role must be one of {', '.join(Role.values)}.", field="role")
    membership, _ = Membership.objects.update_or_create(project=project, user=user, defaults={"role": role})
    return membership

"""Instruction and consent texts: each save is a new, immutable version."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Max

from annotator.errors import InvalidInput
from annotator.models import ConsentVersion, InstructionVersion, Project

MAX_TEXT_CHARS = 50_000


def instruction_version_create(*, project: Project, text: str, created_by: AbstractBaseUser | None) -> InstructionVersion:
    """Store new instruction text as the next version. Earlier versions are never edited."""
    text = (text or "").strip()
    if not text:
        raise InvalidInput("Instructions cannot be empty.", field="text")
    with transaction.atomic():
        Project.objects.select_for_update().filter(pk=project.pk).first()
        latest = project.instruction_versions.aggregate(v=Max("version"))["v"] or 0
        current = project.instruction_versions.filter(version=latest).first()
        if current is not None and current.text == text:
            return current
        return InstructionVersion.objects.create(project=project, version=latest + 1, text=text, created_by=created_by)


def consent_version_create(*, project: Project, text: str,
                           created_by: AbstractBaseUser | None = None) -> ConsentVersion:
    """Store new consent text as the next version (the same text again stores nothing).

    Raters who agreed to an earlier version are asked again before their next page; earlier versions are
    never edited (on PostgreSQL a trigger refuses it, and refuses deleting one a rater answered).
    """
    text = (text or "").strip()
    if not text:
        raise InvalidInput("Consent text cannot be empty.", field="text")
    if len(text) > MAX_TEXT_CHARS:
        raise InvalidInput(f"Consent text must be at most {MAX_TEXT_CHARS:,} characters.", field="text")
    with transaction.atomic():
        Project.objects.select_for_update().filter(pk=project.pk).first()
        latest = project.consent_versions.aggregate(v=Max("version"))["v"] or 0
        current = project.consent_versions.filter(version=latest).first()
        if current is not None and current.text == text:
            return current
        return ConsentVersion.objects.create(project=project, version=latest + 1, text=text, created_by=created_by)

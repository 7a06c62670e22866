"""Images already in a project: describe them (prompt, model, metadata), retire and restore them.

Uploads themselves go through :func:`annotator.imports.items_import`, which uses the same checks
(:func:`item_changes_clean`) when a manifest describes images uploaded earlier.
"""

from __future__ import annotations

import json

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from annotator.errors import Conflict, InvalidInput
from annotator.feedback import normalise_prompt
from annotator.models import Annotation, Item, Task, TaskKind

MAX_PROMPT_CHARS = 4000
MAX_MODEL_CHARS = 200
MAX_METADATA_CHARS = 20_000

_UNSET = object()


def item_changes_clean(*, item: Item, prompt=_UNSET, source_model=_UNSET, metadata=_UNSET) -> dict:
    """The validated changes to ``item`` (only the fields given, and only those that differ).

    Raises InvalidInput naming the field: a prompt longer than :data:`MAX_PROMPT_CHARS`, a model name
    longer than :data:`MAX_MODEL_CHARS`, metadata that is not a JSON object (or is too large); and
    Conflict (field ``prompt``) for a new prompt once raters gave rich feedback on the image, whose
    marked words are positions in the prompt it had.
    """
    changes: dict = {}
    if prompt is not _UNSET:
        if not isinstance(prompt, str):
            raise InvalidInput("prompt must be text.", field="prompt")
        prompt = normalise_prompt(prompt).strip()
        if len(prompt) > MAX_PROMPT_CHARS:
            raise InvalidInput(f"prompt must be at most {MAX_PROMPT_CHARS} characters.", field="prompt")
        if prompt != item.prompt.strip():
            if item.pk and Annotation.objects.filter(item=item, kind=TaskKind.RICH).exists():
                raise Conflict("Raters already marked words of this image's prompt; its prompt cannot change "
                               "(upload the image to a new project to use another prompt).", field="prompt")
            changes["prompt"] = prompt
    if source_model is not _UNSET:
        if not isinstance(source_model, str):
            raise InvalidInput("model must be text.", field="source_model")
        source_model = source_model.strip()
        if len(source_model) > MAX_MODEL_CHARS:
            raise InvalidInput(f"model must be at most {MAX_MODEL_CHARS} characters.", field="source_model")
        if source_model != item.source_model:
            changes["source_model"] = source_model
    if metadata is not _UNSET:
        if not isinstance(metadata, dict):
            raise InvalidInput("metadata must be a JSON object, e.g. {\"seed\": 7}.", field="metadata")
        try:
            size = len(json.dumps(metadata, ensure_ascii=False))
        except (TypeError, ValueError):
            raise InvalidInput("metadata must hold JSON values only.", field="metadata") from None
        if size > MAX_METADATA_CHARS:
            raise InvalidInput(f"metadata is {size:,} characters as JSON; the limit is {MAX_METADATA_CHARS:,}.",
                               field="metadata")
        if metadata != item.metadata:
            changes["metadata"] = metadata
    return changes


def item_update(*, item: Item, prompt=_UNSET, source_model=_UNSET, metadata=_UNSET) -> Item:
    """Change an image's prompt, model and/or metadata (the fields given; see :func:`item_changes_clean`)."""
    with transaction.atomic():
        locked = Item.objects.select_for_update().get(pk=item.pk)
        changes = item_changes_clean(item=locked, prompt=prompt, source_model=source_model, metadata=metadata)
        for name, value in changes.items():
            setattr(locked, name, value)
        if changes:
            locked.save(update_fields=list(changes))
    return locked


def _tasks_of(item: Item):
    return Task.objects.filter(Q(item_a=item) | Q(item_b=item) | Q(task_items__item=item))


def item_retire(*, item: Item) -> Item:
    """Take an image out of the study: no new task includes it and its tasks are no longer handed out.

    Its judgments and annotations are kept (and still count in fits and reports); an assignment a
    rater holds open may still be answered. Retiring a retired image changes nothing.
    """
    with transaction.atomic():
        locked = Item.objects.select_for_update().get(pk=item.pk)
        if locked.retired_at is None:
            locked.retired_at = timezone.now()
            locked.save(update_fields=["retired_at"])
            _tasks_of(locked).update(is_active=False)
    return locked


def item_restore(*, item: Item) -> Item:
    """Bring a retired image back: its tasks are handed out again (those whose other image is not retired)."""
    with transaction.atomic():
        locked = Item.objects.select_for_update().get(pk=item.pk)
        if locked.retired_at is not None:
            locked.retired_at = None
            locked.save(update_fields=["retired_at"])
            (_tasks_of(locked).filter(is_active=False)
             .exclude(item_a__retired_at__isnull=False)
             .exclude(item_b__isnull=False, item_b__retired_at__isnull=False)
             .exclude(task_items__item__retired_at__isnull=False)
             .update(is_active=True))
    return locked

"""Prompts are stored normalised (other whitespace as plain spaces), so RichHF word indices mean words."""

import io

import pytest

from annotator.imports import Upload, items_import
from annotator.services import items as item_services
from tests.factories import ItemFactory

pytestmark = pytest.mark.django_db


def test_edited_and_manifest_prompts_are_stored_with_plain_spaces(project):
    item = ItemFactory(project=project, prompt="x")
    item = item_services.item_update(item=item, prompt="a red\tbicycle\u00a0on a\nwall")
    assert item.prompt == "a red bicycle on a wall"
    manifest = f"file,prompt\n{item.original_name},\"two\u2003lemons\tin a bowl\"\n".encode()
    items_import(project=project, uploads=[],
                 manifest=Upload(name="manifest.csv", stream=io.BytesIO(manifest), size=len(manifest)))
    item.refresh_from_db()
    assert item.prompt == "two lemons in a bowl"

"""Prompts stored with every whitespace character as a plain space (see annotator.feedback.normalise_prompt).

RichHF-18K splits prompts into words at plain spaces and , . ? ! " : ; only. PrefLab now normalises
prompts on input; this migration does the same to prompts stored before. One character becomes one
character, and the old word split already treated these characters as separators, so word indices
stored with rich feedback keep pointing at the same words.
"""

from django.db import migrations


def normalise(apps, schema_editor):
    Item = apps.get_model("annotator", "Item")
    for item in Item.objects.only("id", "prompt").iterator():
        normalised = "".join(" " if ch.isspace() else ch for ch in item.prompt)
        if normalised != item.prompt:
            Item.objects.filter(pk=item.pk).update(prompt=normalised)


class Migration(migrations.Migration):
    dependencies = [("annotator", "0010_rankanswer_append_only")]

    operations = [migrations.RunPython(normalise, migrations.RunPython.noop)]

"""Judgments are append-only: on PostgreSQL a trigger refuses UPDATE and DELETE."""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION annotator_judgment_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'judgments are append-only: % refused on annotator_judgment', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER annotator_judgment_append_only
    BEFORE UPDATE OR DELETE ON annotator_judgment
    FOR EACH ROW EXECUTE FUNCTION annotator_judgment_append_only();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS annotator_judgment_append_only ON annotator_judgment;
DROP FUNCTION IF EXISTS annotator_judgment_append_only();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("annotator", "0001_initial")]
    operations = [migrations.RunPython(forward, backward)]

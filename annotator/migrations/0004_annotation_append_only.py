"""Annotations are append-only, like judgments: on PostgreSQL a trigger refuses UPDATE and DELETE."""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION annotator_annotation_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'annotations are append-only: % refused on annotator_annotation', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER annotator_annotation_append_only
    BEFORE UPDATE OR DELETE ON annotator_annotation
    FOR EACH ROW EXECUTE FUNCTION annotator_annotation_append_only();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS annotator_annotation_append_only ON annotator_annotation;
DROP FUNCTION IF EXISTS annotator_annotation_append_only();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)  # params=None: the SQL contains '%'


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("annotator", "0003_rich_feedback")]
    operations = [migrations.RunPython(forward, backward)]

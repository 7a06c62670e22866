"""Rank answers are append-only, like judgments and annotations: on PostgreSQL a trigger refuses UPDATE and
DELETE."""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION annotator_rankanswer_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'rank answers are append-only: % refused on annotator_rankanswer', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER annotator_rankanswer_append_only
    BEFORE UPDATE OR DELETE ON annotator_rankanswer
    FOR EACH ROW EXECUTE FUNCTION annotator_rankanswer_append_only();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS annotator_rankanswer_append_only ON annotator_rankanswer;
DROP FUNCTION IF EXISTS annotator_rankanswer_append_only();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)  # params=None: the SQL contains '%'


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("annotator", "0009_rank_tasks")]
    operations = [migrations.RunPython(forward, backward)]

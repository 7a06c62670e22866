"""A gate's history is append-only: on PostgreSQL a trigger refuses UPDATE and DELETE of its rows."""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION ranking_gatechange_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'a gate''s history is append-only: % refused on ranking_gatechange', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER ranking_gatechange_append_only
    BEFORE UPDATE OR DELETE ON ranking_gatechange
    FOR EACH ROW EXECUTE FUNCTION ranking_gatechange_append_only();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS ranking_gatechange_append_only ON ranking_gatechange;
DROP FUNCTION IF EXISTS ranking_gatechange_append_only();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)  # params=None: the SQL contains '%'


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("ranking", "0008_calibration_rounds")]
    operations = [migrations.RunPython(forward, backward)]

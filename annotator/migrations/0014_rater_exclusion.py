"""Rater exclusion: ``Rater.excluded_at`` / ``excluded_reason`` and the append-only ``RaterExclusion`` history.

On PostgreSQL a trigger refuses UPDATE and DELETE of ``annotator_raterexclusion`` rows, as for judgments
(migration 0002): an exclusion is taken back by a new ``include`` row, never by rewriting the old one.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

FORWARD = """
CREATE OR REPLACE FUNCTION annotator_raterexclusion_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'rater exclusions are append-only: % refused on annotator_raterexclusion', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER annotator_raterexclusion_append_only
    BEFORE UPDATE OR DELETE ON annotator_raterexclusion
    FOR EACH ROW EXECUTE FUNCTION annotator_raterexclusion_append_only();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS annotator_raterexclusion_append_only ON annotator_raterexclusion;
DROP FUNCTION IF EXISTS annotator_raterexclusion_append_only();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)  # params=None: the SQL contains '%'


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):

    dependencies = [
        ('annotator', '0013_adaptive_pairs'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='RaterExclusion',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('action', models.CharField(choices=[('exclude', 'Excluded'), ('include', 'Included again')], max_length=8)),
                ('reason', models.TextField()),
                ('created_at', models.DateTimeField(auto_now_add=True)),
            ],
            options={
                'ordering': ['rater', 'id'],
            },
        ),
        migrations.AddField(
            model_name='rater',
            name='excluded_at',
            field=models.DateTimeField(blank=True, help_text='Set: left out of fits and statistics and handed no further task (see RaterExclusion).', null=True),
        ),
        migrations.AddField(
            model_name='rater',
            name='excluded_reason',
            field=models.TextField(blank=True, help_text='Why, as the researcher wrote it when excluding.'),
        ),
        migrations.AddConstraint(
            model_name='rater',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('excluded_at__isnull', True), ('excluded_reason', '')), models.Q(('excluded_at__isnull', False), models.Q(('excluded_reason', ''), _negated=True)), _connector='OR'), name='rater_excluded_has_reason'),
        ),
        migrations.AddField(
            model_name='raterexclusion',
            name='created_by',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='raterexclusion',
            name='rater',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='exclusions', to='annotator.rater'),
        ),
        migrations.AddConstraint(
            model_name='raterexclusion',
            constraint=models.CheckConstraint(condition=models.Q(('action__in', ['exclude', 'include'])), name='raterexclusion_action_valid'),
        ),
        migrations.AddConstraint(
            model_name='raterexclusion',
            constraint=models.CheckConstraint(condition=models.Q(('reason', ''), _negated=True), name='raterexclusion_reason_required'),
        ),
        migrations.RunPython(forward, backward),
    ]

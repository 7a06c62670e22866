"""Quality checks: gold pairs and attention checks mixed into raters' streams (``Task.check_*``), their scored
answers (``Judgment.is_check`` / ``check_passed``; never counted as data), the project's check rate, fail limit
and screened-out code, and automatic exclusions (``RaterExclusion.created_by`` null: PrefLab itself).

Adding columns and dropping a NOT NULL fire no row trigger: the append-only triggers on judgments and
rater exclusions (migrations 0002, 0014) are untouched.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('annotator', '0015_prolific_webhook'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='task',
            name='task_pairwise_ordered_distinct',
        ),
        migrations.RemoveConstraint(
            model_name='task',
            name='task_unique_items',
        ),
        migrations.AddField(
            model_name='judgment',
            name='check_passed',
            field=models.BooleanField(blank=True, help_text="A check's answer: whether it passed.", null=True),
        ),
        migrations.AddField(
            model_name='judgment',
            name='is_check',
            field=models.BooleanField(default=False, help_text='Answer to a quality check (gold pair or attention check): scored, never data.'),
        ),
        migrations.AddField(
            model_name='project',
            name='check_fail_limit',
            field=models.PositiveSmallIntegerField(default=0, help_text='A rater who fails this many quality checks is screened out (0: never).'),
        ),
        migrations.AddField(
            model_name='project',
            name='check_rate',
            field=models.FloatField(default=0.0, help_text="Share of a rater's assignments that are quality checks (gold pairs, attention checks; 0–0.5). Checks are scored, never counted as data."),
        ),
        migrations.AddField(
            model_name='project',
            name='screened_out_code',
            field=models.CharField(blank=True, help_text='Code a crowd participant is sent back with when screened out after failed quality checks.', max_length=64),
        ),
        migrations.AddField(
            model_name='rater',
            name='n_checks',
            field=models.PositiveIntegerField(default=0, help_text='Of n_judgments, answers to quality checks.'),
        ),
        migrations.AddField(
            model_name='task',
            name='check_answer',
            field=models.CharField(blank=True, choices=[('left', 'Left'), ('right', 'Right'), ('tie', 'About the same')], help_text="A check's expected answer: left (item_a), right (item_b) or tie.", max_length=8),
        ),
        migrations.AddField(
            model_name='task',
            name='check_instruction',
            field=models.TextField(blank=True, help_text="An attention check's instruction to the rater."),
        ),
        migrations.AddField(
            model_name='task',
            name='check_kind',
            field=models.CharField(blank=True, choices=[('', 'Not a check'), ('gold', 'Gold pair'), ('attention', 'Attention check')], default='', help_text='Set: a quality check, scored and never counted as data.', max_length=16),
        ),
        migrations.AddField(
            model_name='task',
            name='check_retired_at',
            field=models.DateTimeField(blank=True, help_text='A retired check is handed to no new rater; its answers are kept.', null=True),
        ),
        migrations.AlterField(
            model_name='raterexclusion',
            name='created_by',
            field=models.ForeignKey(blank=True, help_text='null: PrefLab itself, e.g. a screen-out after failed quality checks.', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddIndex(
            model_name='task',
            index=models.Index(condition=models.Q(('check_kind', ''), _negated=True), fields=['project', 'id'], name='task_checks'),
        ),
        migrations.AddConstraint(
            model_name='judgment',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('check_passed__isnull', True), ('is_check', False)), models.Q(('check_passed__isnull', False), ('is_check', True)), _connector='OR'), name='judgment_check_scored'),
        ),
        migrations.AddConstraint(
            model_name='project',
            constraint=models.CheckConstraint(condition=models.Q(('check_rate__gte', 0), ('check_rate__lte', 0.5)), name='project_check_rate_range'),
        ),
        migrations.AddConstraint(
            model_name='task',
            constraint=models.UniqueConstraint(condition=models.Q(('check_kind', ''), ('pool__isnull', True)), fields=('project', 'kind', 'item_a', 'item_b'), name='task_unique_items'),
        ),
        migrations.AddConstraint(
            model_name='task',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('kind', 'pairwise'), _negated=True), models.Q(('item_b__isnull', False), models.Q(('item_a__lt', models.F('item_b')), models.Q(models.Q(('check_kind', ''), _negated=True), models.Q(('item_a', models.F('item_b')), _negated=True)), _connector='OR')), _connector='OR'), name='task_pairwise_ordered_distinct'),
        ),
        migrations.AddConstraint(
            model_name='task',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('check_answer', ''), ('check_instruction', ''), ('check_kind', ''), ('check_retired_at__isnull', True)), models.Q(('check_answer__in', ['left', 'right', 'tie']), ('check_kind', 'gold'), ('kind', 'pairwise'), ('pool__isnull', True)), models.Q(('check_answer__in', ['left', 'right', 'tie']), ('check_kind', 'attention'), ('kind', 'pairwise'), ('pool__isnull', True), models.Q(('check_instruction', ''), _negated=True)), _connector='OR'), name='task_check_fields_consistent'),
        ),
    ]

"""Repeat assignments for intra-rater consistency: Project.repeat_rate, Assignment.is_repeat / repeat_of,
Judgment.is_repeat, Rater.n_repeats; a rater sees a task once except for its (at most one) repeat.

Adding columns with a default rewrites no judgment rows, so the append-only trigger is not involved.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('annotator', '0005_assignment_expired'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='assignment',
            name='assignment_once_per_rater',
        ),
        migrations.AddField(
            model_name='assignment',
            name='is_repeat',
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name='assignment',
            name='repeat_of',
            field=models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='repeat', to='annotator.assignment'),
        ),
        migrations.AddField(
            model_name='judgment',
            name='is_repeat',
            field=models.BooleanField(default=False, help_text='Answer to a repeat assignment (a consistency probe; fits leave it out).'),
        ),
        migrations.AddField(
            model_name='project',
            name='repeat_rate',
            field=models.FloatField(default=0.0, help_text="Share of a rater's tasks that re-show a pair they already answered, sides swapped (0–0.5)."),
        ),
        migrations.AddField(
            model_name='rater',
            name='n_repeats',
            field=models.PositiveIntegerField(default=0, help_text='Of n_judgments, answers to repeat assignments.'),
        ),
        migrations.AlterField(
            model_name='project',
            name='tasks_per_rater',
            field=models.PositiveIntegerField(default=0, help_text='Stop a rater after this many tasks (0: until none are left). Repeats not counted.'),
        ),
        migrations.AlterField(
            model_name='rater',
            name='n_judgments',
            field=models.PositiveIntegerField(default=0, help_text='Answers given, repeats included.'),
        ),
        migrations.AddConstraint(
            model_name='assignment',
            constraint=models.UniqueConstraint(condition=models.Q(('is_repeat', False)), fields=('task', 'rater'), name='assignment_once_per_rater'),
        ),
        migrations.AddConstraint(
            model_name='assignment',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('is_repeat', False), ('repeat_of__isnull', True)), models.Q(('is_repeat', True), ('repeat_of__isnull', False)), _connector='OR'), name='assignment_repeat_has_original'),
        ),
        migrations.AddConstraint(
            model_name='project',
            constraint=models.CheckConstraint(condition=models.Q(('repeat_rate__gte', 0), ('repeat_rate__lte', 0.5)), name='project_repeat_rate_range'),
        ),
    ]

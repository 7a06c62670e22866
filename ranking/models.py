"""Fits of Bradley–Terry models, agreement reports, and the job rows that produce them.

A FitRun is reproducible from its stored parameters and its data cut-off (the
last judgment id it saw). Results are written once, when the run succeeds.

Every job (a fit, a report, and later metric and calibration runs) is a row with the
fields of :class:`Job`: the row is the job's outbox (``published_at``) and its lease
(``lease_owner``, ``lease_expires_at``). :mod:`ranking.jobs` is the one lifecycle that
reads and writes these fields.
"""

from django.db import models
from django.db.models import Q

from annotator.models import Item, Project, Rater

#: The default prior precision of every Bradley–Terry fit the app makes (θ ~ N(0, 1/alpha) = N(0, 100)):
#: weak, and it keeps early, sparse data fittable. Fits requested by people may set their own.
DEFAULT_ALPHA = 0.01


class FitModel(models.TextChoices):
    BT = "bt", "Bradley–Terry (population)"
    HBT = "hbt", "Hierarchical Bradley–Terry (per rater)"


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    SUPERSEDED = "superseded", "Superseded"


FitStatus = JobStatus
ReportStatus = JobStatus
ACTIVE_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)


class Job(models.Model):
    """What every job row has: status and progress for pages, the outbox and the lease for workers.

    ``published_at``: when a message for the job was last handed to the broker (None: never; the
    sweep publishes it). ``lease_owner`` / ``lease_expires_at``: the worker running it and until when
    its lease holds; the worker renews it while it runs, and a job whose lease has expired is taken
    over by the next delivery or sweep. ``attempts``: how many times a worker claimed it.
    """

    status = models.CharField(max_length=12, choices=JobStatus.choices, default=JobStatus.QUEUED)
    progress = models.FloatField(default=0.0)
    error = models.TextField(blank=True)
    requested_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        abstract = True


class FitRun(Job):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="fit_runs")
    model = models.CharField(max_length=8, choices=FitModel.choices, default=FitModel.BT)
    params = models.JSONField(default=dict, blank=True)
    automatic = models.BooleanField(default=False, help_text="Requested by new data, not by a person.")
    cutoff_judgment_id = models.BigIntegerField(null=True, blank=True)
    summary = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "model"],
                condition=Q(status="queued", automatic=True),
                name="fitrun_one_pending_automatic",
            ),
            models.CheckConstraint(condition=Q(progress__gte=0) & Q(progress__lte=1), name="fitrun_progress_range"),
        ]
        indexes = [models.Index(fields=["project", "model", "-id"], name="fitrun_latest")]
        ordering = ["-id"]


class ItemScore(models.Model):
    fit = models.ForeignKey(FitRun, on_delete=models.CASCADE, related_name="item_scores")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="+")
    strength = models.FloatField()
    se = models.FloatField(null=True)
    ci_low = models.FloatField(null=True)
    ci_high = models.FloatField(null=True)
    rank = models.PositiveIntegerField()
    wins = models.FloatField(default=0)
    losses = models.FloatField(default=0)
    ties = models.FloatField(default=0)
    n_judgments = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["fit", "item"], name="itemscore_unique")]
        ordering = ["rank"]


class RaterItemOffset(models.Model):
    """A rater's personal deviation u_ri from the population strength (hierarchical fits only).

    Stored only where the rater judged the item; elsewhere the offset is zero.
    """

    fit = models.ForeignKey(FitRun, on_delete=models.CASCADE, related_name="rater_offsets")
    rater = models.ForeignKey(Rater, on_delete=models.CASCADE, related_name="+")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="+")
    offset = models.FloatField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["fit", "rater", "item"], name="rateroffset_unique")]


class DatasheetNote(models.Model):
    """What the researcher writes into a project's datasheet by hand (known limitations)."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="datasheet_note")
    limitations = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)


class AgreementReport(Job):
    """A stored agreement report: every section the agreement page and the datasheet show.

    Computed by a Celery worker (or, for a small project, in the request that asks for it) from the
    data up to its cut-offs (the last judgment id and the last annotation id it saw). ``result`` is
    what :func:`ranking.services.agreement_reports.agreement_compute` returns; it is written once,
    when the report succeeds.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="agreement_reports")
    cutoff_judgment_id = models.BigIntegerField(null=True, blank=True)
    cutoff_annotation_id = models.BigIntegerField(null=True, blank=True)
    result = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project"], condition=Q(status="queued"),
                                    name="agreementreport_one_queued"),
            models.CheckConstraint(condition=Q(progress__gte=0) & Q(progress__lte=1),
                                   name="agreementreport_progress_range"),
        ]
        indexes = [models.Index(fields=["project", "status", "-id"], name="agreementreport_latest")]
        ordering = ["-id"]

"""Fits of Bradley–Terry models, agreement reports, and the job rows that produce them.

A FitRun is reproducible from its stored parameters and its data cut-off (the
last judgment id it saw). Results are written once, when the run succeeds.

Every job (a fit, a report, a metric computation, and later calibration runs) is a row with the
fields of :class:`Job`: the row is the job's outbox (``published_at``) and its lease
(``lease_owner``, ``lease_expires_at``). :mod:`ranking.jobs` is the one lifecycle that
reads and writes these fields.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from annotator.models import Item, Project, Rater, TaskPool

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
    cutoff_ranking_id = models.BigIntegerField(
        null=True, blank=True, help_text="Last rank answer the fit saw (null: none; see params include_rankings).")
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


# ------------------------------------------------------------------------------------------------
# Automated metrics (issue 9): definitions, the runs that import or compute scores, the scores
# ------------------------------------------------------------------------------------------------

#: The largest finite float: a score's value must lie in [-FLOAT_MAX, FLOAT_MAX] (no NaN, no ±inf).
FLOAT_MAX = 1.7976931348623157e308


class MetricKind(models.TextChoices):
    ITEM = "item", "Per image"
    PAIR = "pair", "Per pair of images"
    SET = "set", "Per set of images (source model)"


class MetricDirection(models.TextChoices):
    HIGHER = "higher", "Higher is better"
    LOWER = "lower", "Lower is better"
    NONE = "none", "Descriptive (no direction)"


class MetricSource(models.TextChoices):
    IMPORTED = "imported", "Imported"
    COMPUTED = "computed", "Computed"


class Metric(models.Model):
    """An automated metric: what a score means. Global (``project`` null: a built-in plugin's metric,
    shared by every project) or a project's own (imported scores of a metric PrefLab cannot compute).

    ``plugin`` names the metric plugin that computes it ("" for an imported-only metric); ``weights``
    says where its weights came from (the files a plugin read, or what the researcher imported).
    A new ``version`` is a new metric: scores of different versions are never mixed.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, null=True, blank=True, related_name="metrics")
    name = models.CharField(max_length=100)
    version = models.CharField(max_length=40, default="1")
    kind = models.CharField(max_length=8, choices=MetricKind.choices, default=MetricKind.ITEM)
    direction = models.CharField(max_length=8, choices=MetricDirection.choices, default=MetricDirection.HIGHER)
    dimension = models.CharField(max_length=40, blank=True, help_text="What it claims to measure, e.g. aesthetics.")
    description = models.TextField(blank=True)
    weights = models.TextField(blank=True, help_text="Where the weights came from (provenance).")
    plugin = models.CharField(max_length=100, blank=True, help_text="The metric plugin that computes it.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "name", "version"], condition=Q(project__isnull=False),
                                    name="metric_unique_per_project"),
            models.UniqueConstraint(fields=["name", "version"], condition=Q(project__isnull=True),
                                    name="metric_unique_global"),
        ]
        ordering = ["name", "version"]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class MetricRun(Job):
    """One import of a score file or one computation of metrics on a worker: the run that made scores.

    An import is stored whole in the request that uploads it (the row is created succeeded); a
    computation is a job (:mod:`ranking.jobs`) whose scores are stored when it succeeds. Scores are
    never overwritten: a re-import or recompute is a new run, and "the newest score" of an (item,
    metric) is the one from its latest run.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="metric_runs")
    metrics = models.ManyToManyField(Metric, related_name="runs")
    source = models.CharField(max_length=10, choices=MetricSource.choices)
    params = models.JSONField(default=dict, blank=True)
    file_name = models.CharField(max_length=300, blank=True, help_text="The uploaded file (imports).")
    cutoff_item_id = models.BigIntegerField(null=True, blank=True, help_text="Computations: the newest item scored.")
    counts = models.JSONField(default=dict, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="+")

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(progress__gte=0) & Q(progress__lte=1), name="metricrun_progress_range"),
        ]
        indexes = [models.Index(fields=["project", "status", "-id"], name="metricrun_latest")]
        ordering = ["-id"]


class MetricScoreQuerySet(models.QuerySet):
    def newest(self) -> MetricScoreQuerySet:
        """Only the newest score of each (item, metric): the one no later run replaced."""
        newer = MetricScore.objects.filter(metric_id=OuterRef("metric_id"), item_id=OuterRef("item_id"),
                                           run_id__gt=OuterRef("run_id"))
        return self.filter(~Exists(newer))


class MetricScore(models.Model):
    """One metric's value for one image, made by one run. The unique (metric, item, run) index also
    finds the newest score of an (item, metric): its largest run id."""

    run = models.ForeignKey(MetricRun, on_delete=models.CASCADE, related_name="scores")
    metric = models.ForeignKey(Metric, on_delete=models.CASCADE, related_name="scores", db_index=False)
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="+")
    value = models.FloatField()
    created_at = models.DateTimeField(default=timezone.now)

    objects = MetricScoreQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["metric", "item", "run"], name="metricscore_unique"),
            models.CheckConstraint(condition=Q(value__gte=-FLOAT_MAX) & Q(value__lte=FLOAT_MAX),
                                   name="metricscore_value_finite"),
        ]


class MetricSetScore(models.Model):
    """A set-level metric's value for one set of a project's images (the images of one source model)."""

    run = models.ForeignKey(MetricRun, on_delete=models.CASCADE, related_name="set_scores")
    metric = models.ForeignKey(Metric, on_delete=models.CASCADE, related_name="set_scores")
    set_name = models.CharField(max_length=200, help_text="The source model (\"\" for images without one).")
    n_items = models.PositiveIntegerField()
    value = models.FloatField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "metric", "set_name"], name="metricsetscore_unique"),
            models.CheckConstraint(condition=Q(value__gte=-FLOAT_MAX) & Q(value__lte=FLOAT_MAX),
                                   name="metricsetscore_value_finite"),
        ]


class CalibrationReport(Job):
    """How far each automated metric agrees with the project's raters, stored once computed.

    Computed from the data up to its cut-offs (judgments, annotations and the newest metric run it
    saw) by :func:`ranking.services.calibration_reports.calibration_compute`; ``result`` is written
    once, when the report succeeds. ``automatic``: requested by new data (a fit or a metric run that
    succeeded), not by a person.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="calibration_reports")
    automatic = models.BooleanField(default=False)
    cutoff_judgment_id = models.BigIntegerField(null=True, blank=True)
    cutoff_annotation_id = models.BigIntegerField(null=True, blank=True)
    cutoff_metric_run_id = models.BigIntegerField(null=True, blank=True)
    result = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project"], condition=Q(status="queued"),
                                    name="calibrationreport_one_queued"),
            models.CheckConstraint(condition=Q(progress__gte=0) & Q(progress__lte=1),
                                   name="calibrationreport_progress_range"),
        ]
        indexes = [models.Index(fields=["project", "status", "-id"], name="calibrationreport_latest")]
        ordering = ["-id"]


# --------------------------------------------------------------------------------------------------
# Calibration rounds and metric gates
# --------------------------------------------------------------------------------------------------


class GateDirection(models.TextChoices):
    HIGHER = "higher", "Passes at or above the threshold"
    LOWER = "lower", "Passes at or below the threshold"


class MetricGate(models.Model):
    """A pass/fail rule on one metric: an image passes when its newest score is on the right side of
    ``threshold``. ``dimension`` says what the gate stands for (e.g. "overall", "aesthetics").

    The threshold is never edited in place without a record: every change goes through
    :mod:`ranking.services.gates` and leaves a :class:`GateChange` row (who, when, why, from which round).
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="metric_gates")
    metric = models.ForeignKey(Metric, on_delete=models.PROTECT, related_name="gates")
    dimension = models.CharField(max_length=40, default="overall")
    direction = models.CharField(max_length=8, choices=GateDirection.choices, default=GateDirection.HIGHER)
    threshold = models.FloatField()
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "metric", "dimension"], name="metricgate_unique"),
            models.CheckConstraint(condition=Q(threshold__gte=-FLOAT_MAX) & Q(threshold__lte=FLOAT_MAX),
                                   name="metricgate_threshold_finite"),
        ]
        ordering = ["metric__name", "dimension"]

    def __str__(self) -> str:
        side = "≥" if self.direction == GateDirection.HIGHER else "≤"
        return f"{self.metric.name} {side} {self.threshold:g} ({self.dimension})"

    def passes(self, value: float | None) -> bool | None:
        if value is None:
            return None
        return value >= self.threshold if self.direction == GateDirection.HIGHER else value <= self.threshold


class RoundSampling(models.TextChoices):
    UNIFORM = "uniform", "Uniform from the archive"
    STRATIFIED = "stratified", "Stratified by source model"
    DISAGREEMENT = "disagreement", "Where the metrics disagree most"
    NEAR_THRESHOLD = "near_threshold", "Near a gate's threshold"


class RoundRaters(models.TextChoices):
    STAFF = "staff", "Staff (any staff member, in the app)"
    PANEL = "panel", "A named panel of staff"
    CROWD = "crowd", "Crowd raters by link"


class RoundStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    STARTED = "started", "Started"
    CLOSED = "closed", "Closed"


class RoundSchedule(models.Model):
    """A project's standing order for rounds: a new round every ``every_n_images`` new images or every
    ``every_days`` days (whichever comes first; either may be off), made by the beat."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="round_schedule")
    every_n_images = models.PositiveIntegerField(null=True, blank=True)
    every_days = models.PositiveIntegerField(null=True, blank=True)
    sample_size = models.PositiveSmallIntegerField(default=10)
    sampling = models.CharField(max_length=16, choices=RoundSampling.choices, default=RoundSampling.UNIFORM)
    raters = models.CharField(max_length=8, choices=RoundRaters.choices, default=RoundRaters.STAFF)
    n_raters = models.PositiveSmallIntegerField(default=3)
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    last_round_at = models.DateTimeField(null=True, blank=True)
    last_item_count = models.PositiveIntegerField(default=0, help_text="Images in the project at the last round.")


class CalibrationRound(models.Model):
    """A sample of the archive that people rank, to check the metrics and their gates against.

    Drafted with how it samples and who ranks; :func:`ranking.services.rounds.round_start` draws the
    sample and freezes the round (its images are one rank task of a task pool, so the rankings stay
    out of the study's own fits); results are :class:`RoundResult` jobs.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="calibration_rounds")
    number = models.PositiveIntegerField()
    sample_size = models.PositiveSmallIntegerField(default=10)
    sampling = models.CharField(max_length=16, choices=RoundSampling.choices, default=RoundSampling.UNIFORM)
    gate = models.ForeignKey(MetricGate, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
                             help_text="Sampling near a threshold: the gate whose threshold.")
    raters = models.CharField(max_length=8, choices=RoundRaters.choices, default=RoundRaters.STAFF)
    panel = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    n_raters = models.PositiveSmallIntegerField(default=3, help_text="Crowd raters wanted (crowd rounds).")
    seed = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=8, choices=RoundStatus.choices, default=RoundStatus.DRAFT)
    item_ids = models.JSONField(default=list, blank=True, help_text="The sample, fixed at the start.")
    pool = models.OneToOneField(TaskPool, on_delete=models.PROTECT, null=True, blank=True, related_name="round")
    schedule = models.ForeignKey(RoundSchedule, on_delete=models.SET_NULL, null=True, blank=True,
                                 related_name="rounds")
    note = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "number"], name="calibrationround_unique_number")]
        ordering = ["-number"]

    def __str__(self) -> str:
        return f"Round {self.number}"


class RoundResult(Job):
    """The result of a round from the rankings up to ``cutoff_answer_id``: consensus, metrics, gates."""

    round = models.ForeignKey(CalibrationRound, on_delete=models.CASCADE, related_name="results")
    cutoff_answer_id = models.BigIntegerField(null=True, blank=True)
    result = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["round"], condition=Q(status="queued"), name="roundresult_one_queued"),
            models.CheckConstraint(condition=Q(progress__gte=0) & Q(progress__lte=1),
                                   name="roundresult_progress_range"),
        ]
        ordering = ["-id"]


class ProposalStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPLIED = "applied", "Applied"
    REJECTED = "rejected", "Rejected"
    SUPERSEDED = "superseded", "Superseded"


class GateProposal(models.Model):
    """A threshold change a round's result suggests for a gate; a staff member applies or rejects it."""

    gate = models.ForeignKey(MetricGate, on_delete=models.CASCADE, related_name="proposals")
    round = models.ForeignKey(CalibrationRound, on_delete=models.CASCADE, related_name="proposals")
    result = models.ForeignKey(RoundResult, on_delete=models.CASCADE, related_name="proposals")
    current_threshold = models.FloatField()
    threshold = models.FloatField()
    ci_low = models.FloatField()
    ci_high = models.FloatField()
    agreement_current = models.FloatField()
    agreement_proposed = models.FloatField()
    status = models.CharField(max_length=12, choices=ProposalStatus.choices, default=ProposalStatus.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-id"]


class GateChange(models.Model):
    """One change of a gate (its creation included): append-only, the gate's history."""

    class Action(models.TextChoices):
        CREATED = "created", "Created"
        THRESHOLD = "threshold", "Threshold changed"
        DEACTIVATED = "deactivated", "Switched off"
        ACTIVATED = "activated", "Switched on"
        REJECTED = "rejected", "Proposal rejected"

    gate = models.ForeignKey(MetricGate, on_delete=models.CASCADE, related_name="changes")
    action = models.CharField(max_length=12, choices=Action.choices)
    old_threshold = models.FloatField(null=True, blank=True)
    new_threshold = models.FloatField(null=True, blank=True)
    proposal = models.ForeignKey(GateProposal, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    round = models.ForeignKey(CalibrationRound, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    changed_at = models.DateTimeField(auto_now_add=True)
    reason = models.TextField()

    class Meta:
        ordering = ["-id"]


# --------------------------------------------------------------------------------------------------
# Dataset releases
# --------------------------------------------------------------------------------------------------


class DatasetRelease(Job):
    """One published export of a project: a folder of Parquet tables (and optionally the images) with a
    dataset card, loadable with the Hugging Face ``datasets`` library, and its zip. Written by a job from
    the data up to its cut-offs (:mod:`ranking.services.releases`); ``salt`` makes its rater pseudonyms
    its own (two releases cannot be joined on raters)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="releases")
    params = models.JSONField(default=dict, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="+")
    salt = models.CharField(max_length=64)
    cutoff_judgment_id = models.BigIntegerField(null=True, blank=True)
    cutoff_annotation_id = models.BigIntegerField(null=True, blank=True)
    cutoff_ranking_id = models.BigIntegerField(null=True, blank=True)
    path = models.CharField(max_length=500, blank=True, help_text="The release folder, under MEDIA_ROOT.")
    size_bytes = models.BigIntegerField(null=True, blank=True, help_text="Of the zip.")
    manifest = models.JSONField(default=dict, blank=True, help_text="Files, rows and bytes.")

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(progress__gte=0) & Q(progress__lte=1),
                                   name="datasetrelease_progress_range"),
        ]
        ordering = ["-id"]

"""Projects, items, instructions, raters, tasks, assignments and judgments.

Invariants live in the database: a judgment's idempotency key is unique, an
assignment has at most one judgment, a rater sees a task at most once, an item's
sha256 is unique within its project. A repeat assignment (``is_repeat``) re-shows a
pair the same rater already answered, sides swapped, to measure intra-rater consistency; each
answered assignment is repeated at most once. A quality check (``Task.check_kind``: a gold pair with a
known answer, or an attention check with an instruction) is mixed into raters' streams at the project's
``check_rate``; its answers (``Judgment.is_check``) are scored, never counted as data. Judgments are
append-only: the app never updates or deletes them (on PostgreSQL a trigger refuses it; see migration 0002).
"""

import secrets
import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.text import capfirst

from annotator.feedback import default_likert_dimensions


def _public_id() -> str:
    return secrets.token_urlsafe(9)


def _join_token() -> str:
    return secrets.token_urlsafe(16)


def _completion_code() -> str:
    return secrets.token_hex(4).upper()


class TaskKind(models.TextChoices):
    PAIRWISE = "pairwise", "Pairwise comparison"
    RICH = "rich", "Rich feedback (points, words, scores)"
    CHECKLIST = "checklist", "Checklist (yes/no questions)"
    RANK = "rank", "Rank k images (best to worst)"


#: Task kinds about one item (item_b is null).
SINGLE_ITEM_KINDS = (TaskKind.RICH, TaskKind.CHECKLIST)

#: How many images a rank task shows (at least, at most).
RANK_MIN_ITEMS, RANK_MAX_ITEMS = 3, 10


class AdaptiveTarget(models.TextChoices):
    ITEMS = "items", "Images"
    MODELS = "models", "Source models"


class Project(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_projects")
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="projects", blank=True
    )
    overlap = models.PositiveSmallIntegerField(default=3, help_text="Judgments wanted per task.")
    tasks_per_rater = models.PositiveIntegerField(
        default=0, help_text="Stop a rater after this many tasks (0: until none are left). Repeats not counted."
    )
    repeat_rate = models.FloatField(
        default=0.0,
        help_text="Share of a rater's tasks that re-show a pair they already answered, sides swapped (0–0.5).",
    )
    check_rate = models.FloatField(
        default=0.0,
        help_text="Share of a rater's assignments that are quality checks (gold pairs, attention checks; 0–0.5). "
                  "Checks are scored, never counted as data.")
    check_fail_limit = models.PositiveSmallIntegerField(
        default=0, help_text="A rater who fails this many quality checks is screened out (0: never).")
    effective_radius = models.FloatField(default=0.05, help_text="Point radius as a fraction of image height.")
    pairwise_flags = models.JSONField(default=list, blank=True, help_text='Optional flags, e.g. ["both bad"].')
    likert_dimensions = models.JSONField(
        default=default_likert_dimensions, blank=True,
        help_text="Rich feedback 1–5 scores: [{name, label, low, high, key}].",
    )
    checklist = models.JSONField(
        default=list, blank=True, help_text="Checklist questions: [{id, dimension, question, required}]."
    )
    allow_tie = models.BooleanField(
        default=True, help_text="Pairwise tasks offer “about the same” (↓), stored as a tie.")
    adaptive_batch = models.PositiveIntegerField(
        default=0, help_text="Adaptive pairs: after each fit, when fewer open places than this are left, plan this "
                             "many new pairs where they tell the most (0: off).")
    adaptive_target = models.CharField(
        max_length=8, default=AdaptiveTarget.ITEMS, choices=AdaptiveTarget.choices,
        help_text="What adaptive pairs should rank precisely: the images, or the source models.")
    completion_code = models.CharField(max_length=64, default=_completion_code)
    completion_redirect_url = models.URLField(blank=True)
    no_places_code = models.CharField(
        max_length=64, blank=True,
        help_text="Code a crowd participant is sent back with when the study has no places left.")
    consent_declined_code = models.CharField(
        max_length=64, blank=True, help_text="Code a crowd participant is sent back with after declining consent.")
    screened_out_code = models.CharField(
        max_length=64, blank=True,
        help_text="Code a crowd participant is sent back with when screened out after failed quality checks.")
    prolific_webhook_secret = models.CharField(
        max_length=128, blank=True,
        help_text="The Prolific workspace's webhook secret: calls to this project's webhook URL must be signed "
                  "with it (blank: the webhook refuses every call).")
    join_token = models.CharField(max_length=64, default=_join_token, unique=True)
    is_open = models.BooleanField(default=True, help_text="Raters may join (needs consent and instructions).")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(overlap__gte=1), name="project_overlap_positive"),
            models.CheckConstraint(
                condition=Q(effective_radius__gt=0) & Q(effective_radius__lte=1), name="project_radius_range"
            ),
            models.CheckConstraint(
                condition=Q(repeat_rate__gte=0) & Q(repeat_rate__lte=0.5), name="project_repeat_rate_range"
            ),
            models.CheckConstraint(
                condition=Q(check_rate__gte=0) & Q(check_rate__lte=0.5), name="project_check_rate_range"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    RESEARCHER = "researcher", "Researcher"
    VIEWER = "viewer", "Viewer"


class TaskPool(models.Model):
    """Tasks kept apart from the project's own stream, answered by raters of their own.

    A project's raters (joined by the project link) are only ever handed the project's tasks
    (``Task.pool`` null); a pool's raters — joined by the pool's link, or staff ranking in the app —
    only the pool's tasks. Calibration rounds are pools: a few images ranked by a chosen panel,
    whose answers stay out of the project's fits and statistics.
    """

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="task_pools")
    label = models.CharField(max_length=200)
    join_token = models.CharField(max_length=64, default=_join_token, unique=True)
    is_open = models.BooleanField(default=True, help_text="Crowd raters may join by the pool's link.")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.label


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.RESEARCHER)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="membership_unique")]


def _item_upload_to(instance: "Item", filename: str) -> str:
    return f"items/{instance.project_id}/{instance.sha256[:2]}/{instance.sha256}{instance.extension}"


class Item(models.Model):
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="items")
    image = models.FileField(upload_to=_item_upload_to, max_length=300)
    original_name = models.CharField(max_length=300)
    prompt = models.TextField(blank=True)
    source_model = models.CharField(max_length=200, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    image_format = models.CharField(max_length=8)
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    retired_at = models.DateTimeField(
        null=True, blank=True,
        help_text="Retired: in no new task and never handed out again; its judgments are kept.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "sha256"], name="item_sha256_unique_per_project")]
        indexes = [models.Index(fields=["project", "prompt"], name="item_project_prompt")]

    def __str__(self) -> str:
        return self.original_name

    @property
    def extension(self) -> str:
        return {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "GIF": ".gif"}.get(self.image_format, "")


class InstructionVersion(models.Model):
    """Instructions as a rater saw them. Never edited: saving new text makes a new version."""

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="instruction_versions")
    version = models.PositiveIntegerField()
    text = models.TextField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True)
    created_at = models.DateTimeField(auto_now_add=True)
    first_shown_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "version"], name="instruction_version_unique")]
        ordering = ["project", "-version"]


class ConsentVersion(models.Model):
    """The consent text as a rater saw it. Never edited: saving new text makes a new version (on
    PostgreSQL a trigger refuses changing one, and deleting one a rater has answered; migration 0008)."""

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="consent_versions")
    version = models.PositiveIntegerField()
    text = models.TextField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    first_shown_at = models.DateTimeField(null=True, blank=True, help_text="When a rater first answered it.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "version"], name="consent_version_unique")]
        ordering = ["project", "-version"]


#: ``Rater.source`` of a staff member ranking in a calibration round from the app: staff are not study
#: participants, so they skip consent and demographics (they still read the instructions).
STAFF_SOURCE = "staff"


class Rater(models.Model):
    """A pseudonymous participant of one project. External ids are kept for payment reconciliation."""

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="raters")
    public_id = models.CharField(max_length=24, unique=True, default=_public_id)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    source = models.CharField(max_length=16, default="invite")  # invite | prolific | staff
    pool = models.ForeignKey(
        TaskPool, on_delete=models.PROTECT, null=True, blank=True, related_name="raters",
        help_text="Set for a rater of a task pool (e.g. a calibration round): handed only its tasks.")
    prolific_pid = models.CharField(max_length=64, blank=True)
    study_id = models.CharField(max_length=64, blank=True)
    session_id = models.CharField(max_length=64, blank=True)
    consent_version = models.ForeignKey(ConsentVersion, on_delete=models.PROTECT, null=True, blank=True)
    consented_at = models.DateTimeField(null=True, blank=True)
    consent_declined_at = models.DateTimeField(null=True, blank=True)
    acknowledged_instruction = models.ForeignKey(
        InstructionVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    n_judgments = models.PositiveIntegerField(default=0, help_text="Answers given, repeats included.")
    n_repeats = models.PositiveIntegerField(default=0, help_text="Of n_judgments, answers to repeat assignments.")
    n_checks = models.PositiveIntegerField(default=0, help_text="Of n_judgments, answers to quality checks.")
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    excluded_at = models.DateTimeField(
        null=True, blank=True,
        help_text="Set: left out of fits and statistics and handed no further task (see RaterExclusion).")
    excluded_reason = models.TextField(blank=True, help_text="Why, as the researcher wrote it when excluding.")
    crowd_status = models.CharField(
        max_length=32, blank=True,
        help_text="The crowd platform's last status for the participant's submission (e.g. Prolific's RETURNED).")
    crowd_status_at = models.DateTimeField(null=True, blank=True)
    places_released_at = models.DateTimeField(
        null=True, blank=True, help_text="Set: the places the rater held were given back to other raters.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "prolific_pid"], condition=~Q(prolific_pid=""), name="rater_prolific_pid_unique"
            ),
            models.CheckConstraint(condition=Q(excluded_at__isnull=True, excluded_reason="")
                                   | (Q(excluded_at__isnull=False) & ~Q(excluded_reason="")),
                                   name="rater_excluded_has_reason"),
        ]

    def __str__(self) -> str:
        return self.public_id


class ExclusionAction(models.TextChoices):
    EXCLUDE = "exclude", "Excluded"
    INCLUDE = "include", "Included again"


class RaterExclusion(models.Model):
    """One researcher's decision to leave a rater out of fits and statistics, or to take them back in — or
    PrefLab's own (``created_by`` null): a screen-out after failed quality checks.

    Append-only: the history is never rewritten (on PostgreSQL a trigger refuses UPDATE and DELETE;
    migration 0014). The rater's current state is ``Rater.excluded_at`` / ``Rater.excluded_reason``,
    written in the same transaction as the row here.
    """

    rater = models.ForeignKey(Rater, on_delete=models.PROTECT, related_name="exclusions")
    action = models.CharField(max_length=8, choices=ExclusionAction.choices)
    reason = models.TextField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True,
        help_text="null: PrefLab itself, e.g. a screen-out after failed quality checks.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(action__in=["exclude", "include"]), name="raterexclusion_action_valid"),
            models.CheckConstraint(condition=~Q(reason=""), name="raterexclusion_reason_required"),
        ]
        ordering = ["rater", "id"]


class ProlificEvent(models.Model):
    """One webhook call from Prolific, stored once per ``X-Event-ID`` and once per signed request (retries and
    replays are answered as duplicates) with what it changed (``outcome``); see :mod:`annotator.services.prolific`."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="prolific_events")
    event_id = models.CharField(max_length=64)
    event_type = models.CharField(max_length=64, blank=True)
    resource_id = models.CharField(max_length=64, blank=True)
    participant_id = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=64, blank=True)
    payload = models.JSONField(default=dict)
    rater = models.ForeignKey(Rater, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    outcome = models.CharField(max_length=200, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    # SHA-256 of the signed part of the request (timestamp + body): Prolific's signature does not cover
    # X-Event-ID, so a captured call resent under a new event id is recognised by this (empty: stored before)
    request_digest = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "event_id"], name="prolificevent_once_per_project"),
            models.UniqueConstraint(fields=["project", "request_digest"], condition=~models.Q(request_digest=""),
                                    name="prolificevent_request_once"),
        ]
        ordering = ["-id"]


PREFER_NOT = ("prefer_not", "Prefer not to say")


class Demographics(models.Model):
    """Who a rater is, self-reported. Every field is optional; '' means not answered."""

    class AgeBand(models.TextChoices):
        A18 = "18-24", "18–24"
        A25 = "25-34", "25–34"
        A35 = "35-44", "35–44"
        A45 = "45-54", "45–54"
        A55 = "55-64", "55–64"
        A65 = "65+", "65 or over"
        PREFER_NOT_TO_SAY = PREFER_NOT

    class Gender(models.TextChoices):
        WOMAN = "woman", "Woman"
        MAN = "man", "Man"
        NON_BINARY = "non_binary", "Non-binary"
        SELF_DESCRIBED = "self_described", "Prefer to self-describe"
        PREFER_NOT_TO_SAY = PREFER_NOT

    class Expertise(models.TextChoices):
        LAYPERSON = "layperson", "Layperson"
        ARTIST = "artist", "Artist"
        PHOTOGRAPHER = "photographer", "Photographer"
        DESIGNER = "designer", "Designer"
        ML = "ml_practitioner", "ML practitioner"
        PREFER_NOT_TO_SAY = PREFER_NOT

    class ColourVision(models.TextChoices):
        TYPICAL = "typical", "Typical colour vision"
        DEFICIENT = "deficient", "Colour vision deficiency"
        UNSURE = "unsure", "Not sure"
        PREFER_NOT_TO_SAY = PREFER_NOT

    class Device(models.TextChoices):
        DESKTOP = "desktop", "Desktop or laptop"
        TABLET = "tablet", "Tablet"
        PHONE = "phone", "Phone"
        PREFER_NOT_TO_SAY = PREFER_NOT

    rater = models.OneToOneField(Rater, on_delete=models.CASCADE, related_name="demographics")
    country = models.CharField(max_length=64, blank=True, help_text="Country of residence, or prefer_not.")
    languages = models.CharField(max_length=200, blank=True, help_text="Languages spoken fluently.")
    age_band = models.CharField(max_length=16, choices=AgeBand.choices, blank=True)
    gender = models.CharField(max_length=16, choices=Gender.choices, blank=True)
    expertise = models.CharField(max_length=24, choices=Expertise.choices, blank=True)
    colour_vision = models.CharField(max_length=16, choices=ColourVision.choices, blank=True)
    device = models.CharField(max_length=16, choices=Device.choices, blank=True)
    submitted_at = models.DateTimeField(auto_now_add=True)


#: The demographic questions, in the order forms, exports and reports list them: every text field of
#: :class:`Demographics`, by name. The one definition; labels come from :func:`demographic_field_label`.
DEMOGRAPHIC_FIELDS: tuple[str, ...] = tuple(
    field.name for field in Demographics._meta.concrete_fields if isinstance(field, models.CharField)
)


def demographic_field_label(field: str) -> str:
    """A demographic field's human label, from the model field's verbose name ("age_band" → "Age band")."""
    if field not in DEMOGRAPHIC_FIELDS:
        raise ValueError(f"'{field}' is not a demographic field; one of {', '.join(DEMOGRAPHIC_FIELDS)}.")
    return capfirst(Demographics._meta.get_field(field).verbose_name)


class Choice(models.TextChoices):
    LEFT = "left", "Left"
    RIGHT = "right", "Right"
    TIE = "tie", "About the same"


class CheckKind(models.TextChoices):
    NONE = "", "Not a check"
    GOLD = "gold", "Gold pair"
    ATTENTION = "attention", "Attention check"


class Task(models.Model):
    """Something to judge. Pairwise tasks store their pair with item_a.id < item_b.id.

    A rank task's k images are its :class:`TaskItem` rows (``item_a`` is the first of them, by id;
    ``item_b`` is null).

    A quality check (``check_kind`` set; pairwise, of the project's own stream) stores its pair in the order
    the researcher chose it — ``item_a`` left, ``item_b`` right — and ``check_answer`` in those terms.
    A gold pair is shown like any task (sides drawn at random) and passes when the rater picks the expected
    image (or the tie); an attention check is shown as stored, with ``check_instruction`` above the images.
    Checks are handed out only as checks (never by the normal selection), to each rater at most once.
    """

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="tasks")
    kind = models.CharField(max_length=16, choices=TaskKind.choices, default=TaskKind.PAIRWISE)
    item_a = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="+")
    item_b = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="+", null=True, blank=True)
    n_assigned = models.PositiveIntegerField(default=0, help_text="Assignments handed out (open or answered).")
    n_judgments = models.PositiveIntegerField(default=0)
    shuffle_key = models.PositiveIntegerField(default=0, help_text="Random tie-break for assignment order.")
    is_active = models.BooleanField(
        default=True, help_text="False once one of its items is retired: no longer handed out.")
    pool = models.ForeignKey(
        TaskPool, on_delete=models.PROTECT, null=True, blank=True, related_name="tasks",
        help_text="Null: one of the project's own tasks. Set: handed only to the pool's raters.")
    max_raters = models.PositiveIntegerField(
        null=True, blank=True, help_text="Raters this task may be handed to; null: the project's overlap.")
    check_kind = models.CharField(
        max_length=16, choices=CheckKind.choices, default=CheckKind.NONE, blank=True,
        help_text="Set: a quality check, scored and never counted as data.")
    check_answer = models.CharField(
        max_length=8, choices=Choice.choices, blank=True,
        help_text="A check's expected answer: left (item_a), right (item_b) or tie.")
    check_instruction = models.TextField(blank=True, help_text="An attention check's instruction to the rater.")
    check_retired_at = models.DateTimeField(
        null=True, blank=True, help_text="A retired check is handed to no new rater; its answers are kept.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "kind", "item_a", "item_b"], condition=Q(pool__isnull=True, check_kind=""),
                name="task_unique_items",
            ),
            # NULLs are distinct in a unique index, so single-item tasks need their own constraint.
            # (Rank tasks also leave item_b null; two of them may start with the same image.)
            models.UniqueConstraint(
                fields=["project", "kind", "item_a"],
                condition=Q(item_b__isnull=True) & ~Q(kind="rank") & Q(pool__isnull=True),
                name="task_unique_single_item",
            ),
            models.CheckConstraint(
                condition=~Q(kind="pairwise") | (Q(item_b__isnull=False) & (
                    Q(item_a__lt=F("item_b")) | (~Q(check_kind="") & ~Q(item_a=F("item_b"))))),
                name="task_pairwise_ordered_distinct",
            ),
            models.CheckConstraint(
                condition=Q(check_kind="", check_answer="", check_instruction="", check_retired_at__isnull=True)
                | (Q(check_kind="gold", kind="pairwise", pool__isnull=True, check_answer__in=["left", "right", "tie"]))
                | (Q(check_kind="attention", kind="pairwise", pool__isnull=True,
                     check_answer__in=["left", "right", "tie"]) & ~Q(check_instruction="")),
                name="task_check_fields_consistent",
            ),
            models.CheckConstraint(
                condition=~Q(kind__in=["rich", "checklist"]) | Q(item_b__isnull=True),
                name="task_single_item_kinds_have_one_item",
            ),
            models.CheckConstraint(condition=~Q(kind="rank") | Q(item_b__isnull=True),
                                   name="task_rank_items_in_task_items"),
        ]
        indexes = [
            # assignment_next: open slots of a project, fewest assignments first, random among equals.
            models.Index(fields=["project", "n_assigned", "shuffle_key"], name="task_open_slots"),
            # assignment_next: the project's quality checks (few), when one is due
            models.Index(fields=["project", "id"], condition=~Q(check_kind=""), name="task_checks"),
        ]


class TaskItem(models.Model):
    """One of the k images of a rank task, at its place in the task's canonical order (by item id)."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="task_items")
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="task_items")
    position = models.PositiveSmallIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["task", "item"], name="taskitem_item_once"),
            models.UniqueConstraint(fields=["task", "position"], name="taskitem_position_once"),
        ]
        ordering = ["task", "position"]


class AssignmentState(models.TextChoices):
    OPEN = "open", "Open"
    ANSWERED = "answered", "Answered"
    EXPIRED = "expired", "Expired (slot given back; a late answer is still accepted)"


class Assignment(models.Model):
    """A task handed to one rater, with the order it was shown in.

    A rank assignment keeps the order its k images were shown in (drawn at random per assignment)
    in ``shown_order`` (item ids, left to right; ``left_item`` is the first of them); other kinds leave
    it empty. A repeat (``is_repeat``) shows the task of ``repeat_of``, an earlier answered assignment of the
    same rater, again with the sides swapped. Repeats take no slot of the task's overlap: they are
    not counted in ``Task.n_assigned`` or ``Task.n_judgments``.
    """

    task = models.ForeignKey(Task, on_delete=models.PROTECT, related_name="assignments")
    rater = models.ForeignKey(Rater, on_delete=models.PROTECT, related_name="assignments")
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="+")
    left_item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="+")
    right_item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="+", null=True)
    shown_order = models.JSONField(default=list, blank=True, help_text="Rank tasks: item ids as shown, left to right.")
    state = models.CharField(max_length=16, choices=AssignmentState.choices, default=AssignmentState.OPEN)
    is_repeat = models.BooleanField(default=False)
    holds_place = models.BooleanField(
        default=True, help_text="An answered first showing holds one of its task's places unless it was given back "
                                "(the rater's places released) or taken by a late answer of an excluded rater.")
    repeat_of = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="repeat"
    )
    shown_at = models.DateTimeField(auto_now_add=True)
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["task", "rater"], condition=Q(is_repeat=False), name="assignment_once_per_rater"
            ),
            models.UniqueConstraint(
                fields=["rater"], condition=Q(state="open"), name="assignment_one_open_per_rater"
            ),
            models.CheckConstraint(
                condition=Q(is_repeat=False, repeat_of__isnull=True) | Q(is_repeat=True, repeat_of__isnull=False),
                name="assignment_repeat_has_original",
            ),
        ]


class Judgment(models.Model):
    """One answer. Append-only: never updated or deleted by the app."""

    idempotency_key = models.UUIDField(unique=True, default=uuid.uuid4)
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="judgments")
    task = models.ForeignKey(Task, on_delete=models.PROTECT, related_name="judgments")
    assignment = models.OneToOneField(Assignment, on_delete=models.PROTECT, related_name="judgment")
    rater = models.ForeignKey(Rater, on_delete=models.PROTECT, related_name="judgments")
    instruction_version = models.ForeignKey(InstructionVersion, on_delete=models.PROTECT, related_name="judgments")
    left_item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="+")
    right_item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="+", null=True)
    choice = models.CharField(max_length=8, choices=Choice.choices, help_text="As pressed: screen side or tie.")
    winner = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="+", null=True)
    loser = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="+", null=True)
    is_tie = models.BooleanField(default=False)
    is_repeat = models.BooleanField(
        default=False, help_text="Answer to a repeat assignment (a consistency probe; fits leave it out)."
    )
    is_check = models.BooleanField(
        default=False, help_text="Answer to a quality check (gold pair or attention check): scored, never data.")
    check_passed = models.BooleanField(null=True, blank=True, help_text="A check's answer: whether it passed.")
    flags = models.JSONField(default=list, blank=True)
    response_time_ms = models.PositiveIntegerField(null=True)
    shown_at = models.DateTimeField()
    submitted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(Q(is_tie=True) & Q(winner__isnull=True) & Q(loser__isnull=True))
                | (Q(is_tie=False) & Q(winner__isnull=False) & Q(loser__isnull=False) & ~Q(winner=F("loser"))),
                name="judgment_outcome_consistent",
            ),
            models.CheckConstraint(
                condition=Q(is_check=False, check_passed__isnull=True) | Q(is_check=True, check_passed__isnull=False),
                name="judgment_check_scored",
            ),
        ]
        indexes = [models.Index(fields=["project", "id"], name="judgment_project_id")]


class Annotation(models.Model):
    """One rich-feedback or checklist answer about one item. Append-only, like Judgment.

    ``points`` are ``[{"x", "y", "kind"}]`` with x, y fractions of the image width and height in
    [0, 1] and kind ``artifact`` or ``misalignment``; ``misaligned_words`` are indices into
    :func:`annotator.feedback.prompt_tokens` of the item's prompt; ``scores`` maps each Likert
    dimension name to 1–5; ``answers`` maps checklist question ids to true/false.
    """

    idempotency_key = models.UUIDField(unique=True, default=uuid.uuid4)
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="annotations")
    task = models.ForeignKey(Task, on_delete=models.PROTECT, related_name="annotations")
    assignment = models.OneToOneField(Assignment, on_delete=models.PROTECT, related_name="annotation")
    rater = models.ForeignKey(Rater, on_delete=models.PROTECT, related_name="annotations")
    instruction_version = models.ForeignKey(InstructionVersion, on_delete=models.PROTECT, related_name="annotations")
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="annotations")
    kind = models.CharField(max_length=16, choices=TaskKind.choices)
    points = models.JSONField(default=list, blank=True)
    misaligned_words = models.JSONField(default=list, blank=True)
    scores = models.JSONField(default=dict, blank=True)
    answers = models.JSONField(default=dict, blank=True)
    response_time_ms = models.PositiveIntegerField(null=True)
    shown_at = models.DateTimeField()
    submitted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=["rich", "checklist"]), name="annotation_kind_single_item"),
            models.CheckConstraint(
                condition=Q(kind="rich") | (Q(points=[]) & Q(misaligned_words=[]) & Q(scores={})),
                name="annotation_checklist_has_no_rich_fields",
            ),
            models.CheckConstraint(condition=Q(kind="checklist") | Q(answers={}),
                                   name="annotation_rich_has_no_answers"),
        ]
        indexes = [
            models.Index(fields=["project", "id"], name="annotation_project_id"),
            models.Index(fields=["item", "kind"], name="annotation_item_kind"),
        ]


class RankAnswer(models.Model):
    """A rater's ranking of a rank task's images. Append-only, like Judgment (a PostgreSQL trigger refuses
    UPDATE and DELETE; migration 0010).

    ``ranking`` is the full ranking as groups of item ids, best first: ``[[7], [3, 9], [4]]`` puts 7 first,
    ties 3 with 9, and 4 last (a group of more than one id is a tie; only where the project allows ties).
    ``shown_order`` is the order the images were shown in, left to right (the assignment's).
    """

    idempotency_key = models.UUIDField(unique=True, default=uuid.uuid4)
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="rank_answers")
    task = models.ForeignKey(Task, on_delete=models.PROTECT, related_name="rank_answers")
    assignment = models.OneToOneField(Assignment, on_delete=models.PROTECT, related_name="rank_answer")
    rater = models.ForeignKey(Rater, on_delete=models.PROTECT, related_name="rank_answers")
    instruction_version = models.ForeignKey(InstructionVersion, on_delete=models.PROTECT, related_name="rank_answers")
    shown_order = models.JSONField(help_text="Item ids as shown, left to right.")
    ranking = models.JSONField(help_text="Groups of item ids, best first; a group of several is a tie.")
    n_items = models.PositiveSmallIntegerField()
    has_ties = models.BooleanField(default=False)
    response_time_ms = models.PositiveIntegerField(null=True)
    shown_at = models.DateTimeField()
    submitted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(n_items__gte=RANK_MIN_ITEMS) & Q(n_items__lte=RANK_MAX_ITEMS),
                                   name="rankanswer_n_items_range"),
        ]
        indexes = [models.Index(fields=["project", "id"], name="rankanswer_project_id")]

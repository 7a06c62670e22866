"""Input parsing and output shapes for the REST API. No business logic here."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from annotator.models import (
    DEMOGRAPHIC_FIELDS,
    RANK_MAX_ITEMS,
    AdaptiveTarget,
    Annotation,
    ConsentVersion,
    Demographics,
    InstructionVersion,
    Item,
    Judgment,
    Project,
    RankAnswer,
    Rater,
    Task,
)


class ProjectSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = ["slug", "name", "description", "overlap", "tasks_per_rater", "repeat_rate", "effective_radius",
                  "allow_tie", "pairwise_flags", "completion_code", "completion_redirect_url", "no_places_code",
                  "consent_declined_code", "is_open", "adaptive_batch", "adaptive_target", "created_at", "role",
                  "prolific_webhook_configured", "check_rate", "check_fail_limit", "screened_out_code"]
        read_only_fields = ["created_at", "role"]

    prolific_webhook_configured = serializers.SerializerMethodField()

    def get_role(self, obj) -> str | None:
        return self.context.get("roles", {}).get(obj.pk)

    def get_prolific_webhook_configured(self, obj) -> bool:
        return bool(obj.prolific_webhook_secret)

class ProjectCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    slug = serializers.SlugField(max_length=64, required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    overlap = serializers.IntegerField(min_value=1, max_value=100, default=3)
    tasks_per_rater = serializers.IntegerField(min_value=0, default=0)
    repeat_rate = serializers.FloatField(min_value=0, max_value=0.5, default=0.0)
    completion_redirect_url = serializers.URLField(required=False, allow_blank=True, default="")

class ProjectUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    overlap = serializers.IntegerField(min_value=1, max_value=100, required=False)
    tasks_per_rater = serializers.IntegerField(min_value=0, required=False)
    repeat_rate = serializers.FloatField(min_value=0, max_value=0.5, required=False)
    completion_code = serializers.CharField(max_length=64, required=False)
    completion_redirect_url = serializers.URLField(required=False, allow_blank=True)
    is_open = serializers.BooleanField(required=False)
    pairwise_flags = serializers.ListField(child=serializers.CharField(max_length=40), required=False)
    effective_radius = serializers.FloatField(required=False)
    allow_tie = serializers.BooleanField(required=False)
    no_places_code = serializers.CharField(max_length=64, required=False, allow_blank=True)
    consent_declined_code = serializers.CharField(max_length=64, required=False, allow_blank=True)
    check_rate = serializers.FloatField(
        min_value=0, max_value=0.5, required=False,
        help_text="Share of a rater's assignments that are quality checks (gold pairs, attention checks).")
    check_fail_limit = serializers.IntegerField(
        min_value=0, max_value=1000, required=False,
        help_text="Screen a rater out after this many failed quality checks (0: never).")
    screened_out_code = serializers.CharField(
        max_length=64, required=False, allow_blank=True,
        help_text="Code a crowd participant who is screened out is sent back with.")
    adaptive_batch = serializers.IntegerField(min_value=0, max_value=100_000, required=False)
    adaptive_target = serializers.ChoiceField(choices=AdaptiveTarget.choices, required=False)
    prolific_webhook_secret = serializers.CharField(
        max_length=128, required=False, allow_blank=True, write_only=True, trim_whitespace=False,
        help_text="Set (or clear, blank) the Prolific webhook secret; it is never sent back.")

class ItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = Item
        fields = ["id", "original_name", "prompt", "source_model", "metadata", "width", "height",
                  "image_format", "sha256", "created_at", "retired_at"]

class InstructionVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = InstructionVersion
        fields = ["id", "version", "text", "created_at", "first_shown_at"]
        read_only_fields = ["id", "version", "created_at", "first_shown_at"]

class ConsentVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = ConsentVersion
        fields = ["id", "version", "text", "created_at", "first_shown_at"]
        read_only_fields = ["id", "version", "created_at", "first_shown_at"]

class TaskGenerateSerializer(serializers.Serializer):
    strategy = serializers.ChoiceField(choices=["within_prompt", "random", "pairs", "rank", "adaptive"])
    target = serializers.ChoiceField(choices=AdaptiveTarget.choices, default=AdaptiveTarget.ITEMS,
                                     help_text="Adaptive pairs: sharpen the image or the source-model ranking.")
    k = serializers.IntegerField(required=False, help_text="Rank tasks: images per task (3–10).")
    n_tasks = serializers.IntegerField(required=False, help_text="Rank tasks: how many to make.")
    budget = serializers.IntegerField(min_value=1, required=False)
    same_prompt = serializers.BooleanField(default=False)
    pairs = serializers.ListField(
        child=serializers.ListField(child=serializers.CharField(max_length=300), min_length=2, max_length=2),
        required=False,
    )
    overlap = serializers.IntegerField(min_value=1, max_value=100, required=False)
    random_state = serializers.IntegerField(required=False, allow_null=True, default=None)

    def validate(self, attrs):
        if attrs["strategy"] in ("random", "adaptive") and "budget" not in attrs:
            raise serializers.ValidationError({"budget": f"The {attrs['strategy']} strategy needs a budget."})
        if attrs["strategy"] == "rank" and ("k" not in attrs or "n_tasks" not in attrs):
            raise serializers.ValidationError({"k" if "k" not in attrs else "n_tasks": "Rank tasks need k and n_tasks."})
        if attrs["strategy"] == "pairs" and not attrs.get("pairs"):
            raise serializers.ValidationError({"pairs": "The pairs strategy needs a list of pairs."})
        return attrs

class TaskSerializer(serializers.ModelSerializer):
    class Meta:
        model = Task
        fields = ["id", "kind", "item_a", "item_b", "n_assigned", "n_judgments", "created_at"]

class DemographicsSerializer(serializers.ModelSerializer):
    class Meta:
        model = Demographics
        fields = list(DEMOGRAPHIC_FIELDS)

class RaterSerializer(serializers.ModelSerializer):
    demographics = DemographicsSerializer(read_only=True)
    consent_version = serializers.IntegerField(source="consent_version.version", default=None, read_only=True)

    class Meta:
        model = Rater
        fields = ["public_id", "source", "n_judgments", "created_at", "completed_at", "consent_version",
                  "demographics"]

class JudgmentSerializer(serializers.ModelSerializer):
    rater = serializers.CharField(source="rater.public_id", read_only=True)
    instruction_version = serializers.IntegerField(source="instruction_version.version", read_only=True)
    excluded_rater = serializers.SerializerMethodField(
        help_text="The rater is excluded now: this judgment is left out of fits, reports and releases.")

    class Meta:
        model = Judgment
        fields = ["id", "idempotency_key", "task", "assignment", "rater", "instruction_version", "left_item",
                  "right_item", "choice", "winner", "loser", "is_tie", "flags", "response_time_ms", "shown_at",
                  "submitted_at", "excluded_rater"]

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_excluded_rater(self, judgment: Judgment) -> bool:
        return judgment.rater.excluded_at is not None

class JudgmentSubmitSerializer(serializers.Serializer):
    assignment = serializers.IntegerField()
    choice = serializers.CharField(max_length=16)
    idempotency_key = serializers.CharField(max_length=64)
    instruction_version = serializers.IntegerField()
    response_time_ms = serializers.IntegerField(required=False, allow_null=True, default=None)
    flags = serializers.ListField(child=serializers.CharField(max_length=40), required=False, default=list)

class RaterJudgmentSerializer(serializers.ModelSerializer):
    """What a rater gets back about their own answer: nothing about other raters."""

    class Meta:
        model = Judgment
        fields = ["id", "idempotency_key", "assignment", "choice", "submitted_at"]



class AnnotationSubmitSerializer(serializers.Serializer):
    """A rich-feedback or checklist answer; the content is checked by the service (it knows the task)."""

    assignment = serializers.IntegerField()
    idempotency_key = serializers.CharField(max_length=64)
    instruction_version = serializers.IntegerField()
    points = serializers.ListField(child=serializers.DictField(), required=False, default=list, max_length=1000)
    misaligned_words = serializers.ListField(child=serializers.JSONField(), required=False, default=list,
                                             max_length=1000)
    scores = serializers.DictField(child=serializers.JSONField(), required=False, default=dict)
    checklist = serializers.DictField(child=serializers.JSONField(), required=False, default=dict)
    response_time_ms = serializers.IntegerField(required=False, allow_null=True, default=None)


class RaterAnnotationSerializer(serializers.ModelSerializer):
    """What a rater gets back about their own answer."""

    class Meta:
        model = Annotation
        fields = ["id", "idempotency_key", "assignment", "kind", "submitted_at"]


class RankSubmitSerializer(serializers.Serializer):
    """A rater's ranking of a rank task: groups of item ids, best first (checked by the service)."""

    assignment = serializers.IntegerField()
    idempotency_key = serializers.CharField(max_length=64)
    instruction_version = serializers.IntegerField()
    ranking = serializers.ListField(child=serializers.JSONField(), max_length=RANK_MAX_ITEMS)
    response_time_ms = serializers.IntegerField(required=False, allow_null=True, default=None)


class RaterRankAnswerSerializer(serializers.ModelSerializer):
    """What a rater gets back about their own ranking."""

    class Meta:
        model = RankAnswer
        fields = ["id", "idempotency_key", "assignment", "ranking", "submitted_at"]


_RECEIPT_DATETIME = serializers.DateTimeField()
#: The field each kind of answer adds to its receipt (RaterJudgmentSerializer, RaterAnnotationSerializer,
#: RaterRankAnswerSerializer list the same).
_RECEIPT_FIELD = {Judgment: "choice", Annotation: "kind", RankAnswer: "ranking"}


def rater_answer_receipt(answer: Judgment | Annotation | RankAnswer) -> dict:
    """What the rater's serializer of ``answer``'s model returns (the schema documents those), built directly:
    it answers every submission, and a ModelSerializer builds its fields from the model on each use
    (``tests/integration/test_hot_sql.py`` checks the two agree)."""
    name = _RECEIPT_FIELD[type(answer)]
    return {"id": answer.pk, "idempotency_key": str(answer.idempotency_key), "assignment": answer.assignment_id,
            name: getattr(answer, name), "submitted_at": _RECEIPT_DATETIME.to_representation(answer.submitted_at)}


class CheckCreateSerializer(serializers.Serializer):
    """A new quality check (checked by the service, which names the field of a bad value)."""

    kind = serializers.CharField(max_length=16, help_text="gold or attention")
    left_item = serializers.IntegerField(help_text="The image shown on the left (an id of the project's images).")
    right_item = serializers.IntegerField(help_text="The image shown on the right.")
    answer = serializers.CharField(max_length=8, help_text="The expected answer: left, right or tie.")
    instruction = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000,
                                        help_text="Attention checks: the instruction shown above the images.")


class CheckSerializer(serializers.Serializer):
    """A quality check with how its raters did (answers to checks are never data)."""

    id = serializers.IntegerField(source="task.pk")
    kind = serializers.CharField(source="task.check_kind")
    left_item = serializers.IntegerField(source="task.item_a_id")
    right_item = serializers.IntegerField(source="task.item_b_id")
    answer = serializers.CharField(source="task.check_answer")
    instruction = serializers.CharField(source="task.check_instruction")
    created_at = serializers.DateTimeField(source="task.created_at")
    retired_at = serializers.DateTimeField(source="task.check_retired_at", allow_null=True)
    n_shown = serializers.IntegerField(help_text="Raters it was handed to.")
    n_answered = serializers.IntegerField()
    n_passed = serializers.IntegerField()
    pass_rate = serializers.FloatField(allow_null=True)

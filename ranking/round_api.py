"""REST API for calibration rounds and metric gates (staff only: everyone else gets 403)."""

from django.contrib.auth import get_user_model
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound as DRFNotFound
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from annotator.errors import NotFound
from annotator.models import Project
from ranking import selectors
from ranking.models import (
    CalibrationRound,
    GateChange,
    GateDirection,
    GateProposal,
    MetricGate,
    RoundRaters,
    RoundResult,
    RoundSampling,
)
from ranking.services import gates as gate_services
from ranking.services import rounds as round_services


class IsStaff(BasePermission):
    message = "Calibration rounds and metric gates are for staff."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_staff)


class StaffView(APIView):
    permission_classes = [IsStaff]

    def project(self, slug: str) -> Project:
        return get_object_or_404(Project, slug=slug)

    def round(self, project: Project, number: int) -> CalibrationRound:
        try:
            return selectors.round_get(project=project, number=number)
        except NotFound as exc:
            raise DRFNotFound(exc.message) from None


class RoundResultSerializer(serializers.ModelSerializer):
    class Meta:
        model = RoundResult
        fields = ["id", "status", "progress", "error", "cutoff_answer_id", "requested_at", "finished_at", "result"]


class GateProposalSerializer(serializers.ModelSerializer):
    round = serializers.IntegerField(source="round.number", read_only=True)
    decided_by = serializers.CharField(source="decided_by.username", read_only=True, default=None)

    class Meta:
        model = GateProposal
        fields = ["id", "gate", "round", "current_threshold", "threshold", "ci_low", "ci_high", "agreement_current",
                  "agreement_proposed", "status", "created_at", "decided_by", "decided_at", "reason"]


class RoundSerializer(serializers.ModelSerializer):
    panel = serializers.SlugRelatedField(slug_field="username", many=True, read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True, default=None)
    gate = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = CalibrationRound
        fields = ["number", "status", "sample_size", "sampling", "gate", "raters", "panel", "n_raters", "seed",
                  "item_ids", "note", "created_by", "created_at", "started_at", "closed_at"]


class RoundCreateSerializer(serializers.Serializer):
    sample_size = serializers.IntegerField(min_value=3, max_value=10, default=10)
    sampling = serializers.ChoiceField(choices=RoundSampling.choices, default=RoundSampling.UNIFORM)
    gate = serializers.IntegerField(required=False, allow_null=True)
    raters = serializers.ChoiceField(choices=RoundRaters.choices, default=RoundRaters.STAFF)
    panel = serializers.ListField(child=serializers.CharField(max_length=150), required=False, max_length=100)
    n_raters = serializers.IntegerField(min_value=1, max_value=100, default=3)
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    seed = serializers.IntegerField(min_value=0, max_value=2**31 - 1, required=False)


class RoundList(StaffView):
    @extend_schema(responses=RoundSerializer(many=True), description="The project's calibration rounds, newest first.")
    def get(self, request, slug):
        return Response(RoundSerializer(selectors.rounds_of(project=self.project(slug)), many=True).data)

    @extend_schema(request=RoundCreateSerializer, responses={201: RoundSerializer},
                   description="Draft a round (nothing is sampled until it starts).")
    def post(self, request, slug):
        project = self.project(slug)
        data = RoundCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        gate_id = values.pop("gate", None)
        gate = None
        if gate_id is not None:
            gate = MetricGate.objects.filter(pk=gate_id, project=project).first()
            if gate is None:
                raise serializers.ValidationError({"gate": [f"This project has no gate {gate_id}."]})
        names = values.pop("panel", [])
        users = list(get_user_model().objects.filter(username__in=names))
        unknown = sorted(set(names) - {u.username for u in users})
        if unknown:
            raise serializers.ValidationError({"panel": [f"No user named {unknown[0]!r}."]})
        round_ = round_services.round_create(project=project, user=request.user, gate=gate, panel=users, **values)
        return Response(RoundSerializer(round_).data, status=201)


class RoundDetail(StaffView):
    @extend_schema(responses=RoundSerializer, description="A round with its latest result and its gate proposals "
                                                          "(fields `latest_result`, `pending_result`, `proposals`).")
    def get(self, request, slug, number):
        round_ = self.round(self.project(slug), number)
        latest = selectors.round_result_latest(round_=round_)
        pending = selectors.round_result_pending(round_=round_)
        return Response({**RoundSerializer(round_).data,
                         "n_rankings": selectors.round_n_rankings(round_=round_),
                         "latest_result": RoundResultSerializer(latest).data if latest else None,
                         "pending_result": RoundResultSerializer(pending).data if pending else None,
                         "proposals": GateProposalSerializer(round_.proposals.all(), many=True).data})


class RoundStart(StaffView):
    @extend_schema(request=None, responses=RoundSerializer, description="Draw the sample and freeze the round.")
    def post(self, request, slug, number):
        round_ = round_services.round_start(round_=self.round(self.project(slug), number))
        return Response(RoundSerializer(round_).data)


class RoundClose(StaffView):
    @extend_schema(request=None, responses=RoundSerializer, description="Stop taking rankings.")
    def post(self, request, slug, number):
        round_ = round_services.round_close(round_=self.round(self.project(slug), number))
        return Response(RoundSerializer(round_).data)


class RoundResultRequest(StaffView):
    @extend_schema(request=None, responses={202: RoundResultSerializer},
                   description="Ask for a fresh result (coalesced with a queued one); poll the round for it.")
    def post(self, request, slug, number):
        round_ = self.round(self.project(slug), number)
        if round_.pool_id is None:
            raise serializers.ValidationError({"round": ["The round has not started: nothing to compute."]})
        return Response(RoundResultSerializer(round_services.round_result_request(round_=round_)).data, status=202)


class GateSerializer(serializers.ModelSerializer):
    metric = serializers.CharField(source="metric.name", read_only=True)
    metric_version = serializers.CharField(source="metric.version", read_only=True)

    class Meta:
        model = MetricGate
        fields = ["id", "metric", "metric_version", "dimension", "direction", "threshold", "is_active", "created_at"]


class GateCreateSerializer(serializers.Serializer):
    metric = serializers.CharField(max_length=100)
    version = serializers.CharField(max_length=40, required=False)
    threshold = serializers.FloatField()
    direction = serializers.ChoiceField(choices=GateDirection.choices, required=False)
    dimension = serializers.CharField(max_length=40, default="overall")
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class GateList(StaffView):
    @extend_schema(responses=GateSerializer(many=True))
    def get(self, request, slug):
        return Response(GateSerializer(selectors.gates_of(project=self.project(slug)), many=True).data)

    @extend_schema(request=GateCreateSerializer, responses={201: GateSerializer})
    def post(self, request, slug):
        project = self.project(slug)
        data = GateCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        metric = selectors.metric_lookup(project=project, name=values["metric"], version=values.get("version"))
        if metric is None:
            raise serializers.ValidationError({"metric": [f"This project has no metric {values['metric']!r}."]})
        gate = gate_services.gate_create(project=project, metric=metric, threshold=values["threshold"],
                                         user=request.user, dimension=values["dimension"],
                                         direction=values.get("direction"), reason=values["reason"])
        return Response(GateSerializer(gate).data, status=201)


class GateThresholdSerializer(serializers.Serializer):
    threshold = serializers.FloatField()
    reason = serializers.CharField(max_length=2000)


class GateThreshold(StaffView):
    @extend_schema(request=GateThresholdSerializer, responses=GateSerializer,
                   description="Change a gate's threshold by hand (the reason is kept in its history).")
    def post(self, request, slug, gate_id):
        gate = get_object_or_404(MetricGate, pk=gate_id, project=self.project(slug))
        data = GateThresholdSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        gate = gate_services.gate_set_threshold(gate=gate, user=request.user, **data.validated_data)
        return Response(GateSerializer(gate).data)


class GateChangeSerializer(serializers.ModelSerializer):
    changed_by = serializers.CharField(source="changed_by.username", read_only=True)
    round = serializers.IntegerField(source="round.number", read_only=True, default=None)

    class Meta:
        model = GateChange
        fields = ["id", "gate", "action", "old_threshold", "new_threshold", "proposal", "round", "changed_by",
                  "changed_at", "reason"]


class GateHistory(StaffView):
    @extend_schema(responses=GateChangeSerializer(many=True), description="Every change of the project's gates.")
    def get(self, request, slug):
        return Response(GateChangeSerializer(selectors.gate_history(project=self.project(slug)), many=True).data)


class DecisionSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class ProposalDecision(StaffView):
    apply = True

    @extend_schema(request=DecisionSerializer, responses=GateProposalSerializer)
    def post(self, request, slug, proposal_id):
        proposal = get_object_or_404(GateProposal.objects.select_related("gate", "round"), pk=proposal_id,
                                     gate__project=self.project(slug))
        data = DecisionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if self.apply:
            gate_services.proposal_apply(proposal=proposal, user=request.user, reason=data.validated_data["reason"])
        else:
            gate_services.proposal_reject(proposal=proposal, user=request.user, reason=data.validated_data["reason"])
        proposal.refresh_from_db()
        return Response(GateProposalSerializer(proposal).data)


class ProposalApply(ProposalDecision):
    apply = True


class ProposalReject(ProposalDecision):
    apply = False

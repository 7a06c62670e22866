"""REST API for fits and their results (token or session auth, project members only)."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from annotator.pagination import ByIdCursor
from annotator.permissions import project_for_member
from ranking import selectors
from ranking.models import FitModel, FitRun, ItemScore, RaterItemOffset
from ranking.services import fit_runs


class FitRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = FitRun
        fields = ["id", "model", "params", "automatic", "cutoff_judgment_id", "status", "progress", "error",
                  "summary", "requested_at", "started_at", "finished_at"]


class FitRequestSerializer(serializers.Serializer):
    model = serializers.ChoiceField(choices=FitModel.values, default=FitModel.BT)
    params = serializers.DictField(required=False, default=dict)


class ItemScoreSerializer(serializers.ModelSerializer):
    elo = serializers.SerializerMethodField()

    class Meta:
        model = ItemScore
        fields = ["item", "rank", "strength", "elo", "se", "ci_low", "ci_high", "wins", "losses", "ties",
                  "n_judgments"]

    def get_elo(self, obj) -> float:
        return selectors.elo(obj.strength)


class RaterOffsetSerializer(serializers.ModelSerializer):
    rater = serializers.CharField(source="rater.public_id")

    class Meta:
        model = RaterItemOffset
        fields = ["rater", "item", "offset"]


class FitListCreate(APIView):
    @extend_schema(responses=FitRunSerializer(many=True))
    def get(self, request, slug):
        project, _ = project_for_member(request=request, slug=slug)
        return Response(FitRunSerializer(selectors.fit_runs(project=project), many=True).data)

    @extend_schema(request=FitRequestSerializer, responses={201: FitRunSerializer})
    def post(self, request, slug):
        project, _ = project_for_member(request=request, slug=slug, write=True)
        data = FitRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        run = fit_runs.fit_run_request(project=project, **data.validated_data)
        return Response(FitRunSerializer(run).data, status=201)


class FitDetail(APIView):
    @extend_schema(responses=FitRunSerializer)
    def get(self, request, slug, fit_id):
        project, _ = project_for_member(request=request, slug=slug)
        return Response(FitRunSerializer(get_object_or_404(FitRun, pk=fit_id, project=project)).data)


class FitScores(APIView):
    @extend_schema(responses=ItemScoreSerializer(many=True))
    def get(self, request, slug, fit_id):
        project, _ = project_for_member(request=request, slug=slug)
        run = get_object_or_404(FitRun, pk=fit_id, project=project)
        paginator = ByIdCursor()
        page = paginator.paginate_queryset(ItemScore.objects.filter(fit=run), request, view=self)
        return paginator.get_paginated_response(ItemScoreSerializer(page, many=True).data)


class FitRaterOffsets(APIView):
    @extend_schema(responses=RaterOffsetSerializer(many=True))
    def get(self, request, slug, fit_id):
        project, _ = project_for_member(request=request, slug=slug)
        run = get_object_or_404(FitRun, pk=fit_id, project=project)
        paginator = ByIdCursor()
        qs = RaterItemOffset.objects.filter(fit=run).select_related("rater")
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(RaterOffsetSerializer(page, many=True).data)

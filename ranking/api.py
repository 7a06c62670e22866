"""REST API for fits and their results, and for automated metric scores (token or session auth, project
members only: viewers read, researchers write)."""

from django.http import FileResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from annotator.imports import Upload
from annotator.pagination import PAGE_PARAMETERS, ByIdCursor, paged_response
from annotator.permissions import project_for_member
from ranking import selectors
from ranking.models import (
    DatasetRelease,
    FitModel,
    FitRun,
    ItemScore,
    Metric,
    MetricDirection,
    MetricRun,
    MetricScore,
    RaterItemOffset,
)
from ranking.services import fit_runs, metric_runs, metric_scores, releases


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
    @extend_schema(responses=paged_response(ItemScoreSerializer(many=True), "PaginatedItemScoreList"),
                   parameters=PAGE_PARAMETERS)
    def get(self, request, slug, fit_id):
        project, _ = project_for_member(request=request, slug=slug)
        run = get_object_or_404(FitRun, pk=fit_id, project=project)
        paginator = ByIdCursor()
        page = paginator.paginate_queryset(ItemScore.objects.filter(fit=run), request, view=self)
        return paginator.get_paginated_response(ItemScoreSerializer(page, many=True).data)


class FitRaterOffsets(APIView):
    @extend_schema(responses=paged_response(RaterOffsetSerializer(many=True), "PaginatedRaterOffsetList"),
                   parameters=PAGE_PARAMETERS)
    def get(self, request, slug, fit_id):
        project, _ = project_for_member(request=request, slug=slug)
        run = get_object_or_404(FitRun, pk=fit_id, project=project)
        paginator = ByIdCursor()
        qs = RaterItemOffset.objects.filter(fit=run).select_related("rater")
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(RaterOffsetSerializer(page, many=True).data)


# Automated metrics ---------------------------------------------------------------------------------


class MetricSerializer(serializers.ModelSerializer):
    scope = serializers.SerializerMethodField()
    n_scored = serializers.SerializerMethodField()
    n_items = serializers.SerializerMethodField()
    coverage = serializers.SerializerMethodField()
    newest_run = serializers.SerializerMethodField()

    class Meta:
        model = Metric
        fields = ["id", "name", "version", "kind", "direction", "dimension", "description", "weights", "plugin",
                  "scope", "n_scored", "n_items", "coverage", "newest_run"]

    def get_scope(self, obj) -> str:
        return "project" if obj.project_id else "global"

    def get_n_scored(self, obj) -> int:
        return self.context["coverage"].get(obj.pk, 0)

    def get_n_items(self, obj) -> int:
        return self.context["n_items"]

    def get_coverage(self, obj) -> float:
        n = self.context["n_items"]
        return self.context["coverage"].get(obj.pk, 0) / n if n else 0.0

    def get_newest_run(self, obj) -> int | None:
        runs = self.context["runs"].get(obj.pk)
        return runs[0].pk if runs else None


class MetricRunSerializer(serializers.ModelSerializer):
    metrics = serializers.SerializerMethodField()

    class Meta:
        model = MetricRun
        fields = ["id", "source", "metrics", "params", "file_name", "counts", "cutoff_item_id", "status", "progress",
                  "error", "requested_at", "started_at", "finished_at"]

    def get_metrics(self, obj) -> list[dict]:
        return [{"id": m.pk, "name": m.name, "version": m.version} for m in obj.metrics.all()]


class MetricRunRequestSerializer(serializers.Serializer):
    metrics = serializers.ListField(child=serializers.CharField(max_length=100), min_length=1, max_length=50)
    batch_size = serializers.IntegerField(min_value=1, max_value=1024, required=False)
    reference_set = serializers.CharField(required=False, allow_blank=True, max_length=200,
                                          help_text="Set metrics against a reference (FID, KID, CMMD): the source "
                                                    "model whose images are the reference set.")


class MetricImportSerializer(serializers.Serializer):
    file = serializers.FileField()
    create = serializers.BooleanField(default=False)
    direction = serializers.ChoiceField(choices=MetricDirection.values, default=MetricDirection.HIGHER)
    dimension = serializers.CharField(max_length=40, required=False, default="", allow_blank=True)


class MetricScoreSerializer(serializers.ModelSerializer):
    metric = serializers.CharField(source="metric.name")
    version = serializers.CharField(source="metric.version")
    source = serializers.CharField(source="run.source")

    class Meta:
        model = MetricScore
        fields = ["id", "item", "metric", "version", "value", "run", "source", "created_at"]


class MetricList(APIView):
    @extend_schema(responses=MetricSerializer(many=True))
    def get(self, request, slug):
        project, _ = project_for_member(request=request, slug=slug)
        context = {"coverage": selectors.metric_coverage(project=project), "n_items": project.items.count(),
                   "runs": selectors.metric_runs_by_metric(project=project)}
        return Response(MetricSerializer(selectors.project_metrics(project=project), many=True, context=context).data)


class MetricScores(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("metric", str, description="Only this metric (name)"),
                    OpenApiParameter("version", str, description="With metric: only this version"),
                    OpenApiParameter("run", int, description="The scores of this run (default: every image's newest)"),
                    OpenApiParameter("item", int, description="Only this image"), *PAGE_PARAMETERS],
        responses=paged_response(MetricScoreSerializer(many=True), "PaginatedMetricScoreList"))
    def get(self, request, slug):
        project, _ = project_for_member(request=request, slug=slug)
        scores = selectors.metric_scores_query(project=project, metric=request.query_params.get("metric"),
                                               version=request.query_params.get("version"),
                                               run=request.query_params.get("run"),
                                               item=request.query_params.get("item"))
        paginator = ByIdCursor()
        page = paginator.paginate_queryset(scores.select_related("metric", "run"), request, view=self)
        return paginator.get_paginated_response(MetricScoreSerializer(page, many=True).data)


class MetricImport(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request={"multipart/form-data": MetricImportSerializer}, responses={201: MetricRunSerializer})
    def post(self, request, slug):
        project, _ = project_for_member(request=request, slug=slug, write=True)
        data = MetricImportSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        run = metric_scores.metric_scores_import(
            project=project, upload=Upload(name=upload.name, stream=upload, size=upload.size),
            create=data.validated_data["create"], direction=data.validated_data["direction"],
            dimension=data.validated_data["dimension"], user=request.user)
        return Response(MetricRunSerializer(run).data, status=201)


class MetricRunListCreate(APIView):
    @extend_schema(responses=MetricRunSerializer(many=True))
    def get(self, request, slug):
        project, _ = project_for_member(request=request, slug=slug)
        return Response(MetricRunSerializer(selectors.metric_runs(project=project, limit=200), many=True).data)

    @extend_schema(request=MetricRunRequestSerializer, responses={201: MetricRunSerializer})
    def post(self, request, slug):
        project, _ = project_for_member(request=request, slug=slug, write=True)
        data = MetricRunRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        run = metric_runs.metric_run_request(project=project, metrics=data.validated_data["metrics"],
                                             batch_size=data.validated_data.get("batch_size"), user=request.user,
                                             reference_set=data.validated_data.get("reference_set"))
        return Response(MetricRunSerializer(run).data, status=201)


class MetricRunDetail(APIView):
    @extend_schema(responses=MetricRunSerializer)
    def get(self, request, slug, run_id):
        project, _ = project_for_member(request=request, slug=slug)
        return Response(MetricRunSerializer(get_object_or_404(MetricRun, pk=run_id, project=project)).data)


class ModelLeaderboard(APIView):
    @extend_schema(responses=inline_serializer("ModelLeaderboard", fields={
        "fit_id": serializers.IntegerField(), "model_ranking": serializers.JSONField(allow_null=True),
        "error": serializers.CharField(allow_null=True)}),
        description="The newest Bradley–Terry fit's model-level ranking: per source model strengths with sandwich "
                    "and prompt-bootstrap intervals, simultaneous rank ranges, the style-controlled fit, "
                    "per-category fits and the win-rate matrix (null when there are not two models).")
    def get(self, request, slug):
        project, _ = project_for_member(request=request, slug=slug)
        fit = selectors.fit_latest(project=project)
        if fit is None:
            raise NotFound("No Bradley–Terry fit yet.")
        return Response({"fit_id": fit.pk, "model_ranking": fit.summary.get("model_ranking"),
                         "error": fit.summary.get("model_ranking_error")})


class ReleaseSerializer(serializers.ModelSerializer):
    class Meta:
        model = DatasetRelease
        fields = ["id", "status", "progress", "error", "params", "cutoff_judgment_id", "cutoff_annotation_id",
                  "cutoff_ranking_id", "size_bytes", "manifest", "requested_at", "finished_at"]


class ReleaseRequestSerializer(serializers.Serializer):
    include_images = serializers.BooleanField(default=False)
    k = serializers.IntegerField(min_value=1, max_value=1000, default=5)
    exclude_free_text = serializers.BooleanField(default=False)
    licence = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    title = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    include_rater_offsets = serializers.BooleanField(
        default=False, help_text="Add the rater_offsets table: the newest hierarchical fit's per-rater offsets.")


class ReleaseListCreate(APIView):
    @extend_schema(responses=ReleaseSerializer(many=True), description="The project's dataset releases, newest first.")
    def get(self, request, slug):
        project, _ = project_for_member(request=request, slug=slug)
        return Response(ReleaseSerializer(DatasetRelease.objects.filter(project=project)[:100], many=True).data)

    @extend_schema(request=ReleaseRequestSerializer, responses={202: ReleaseSerializer},
                   description="Ask for a new release (a job); poll its detail, then download its zip.")
    def post(self, request, slug):
        project, _ = project_for_member(request=request, slug=slug, write=True)
        data = ReleaseRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        release = releases.release_request(project=project, user=request.user, **data.validated_data)
        return Response(ReleaseSerializer(release).data, status=202)


class ReleaseDetail(APIView):
    @extend_schema(responses=ReleaseSerializer)
    def get(self, request, slug, release_id):
        project, _ = project_for_member(request=request, slug=slug)
        return Response(ReleaseSerializer(get_object_or_404(DatasetRelease, pk=release_id, project=project)).data)


class ReleaseDownload(APIView):
    @extend_schema(responses={(200, "application/zip"): OpenApiTypes.BINARY},
                   description="The release as a zip (404 until it has been written).")
    def get(self, request, slug, release_id):
        project, _ = project_for_member(request=request, slug=slug)
        release = get_object_or_404(DatasetRelease, pk=release_id, project=project, status="succeeded")
        archive = releases.release_folder(release).with_suffix(".zip")
        if not archive.exists():
            raise NotFound("This release's files are gone.")
        return FileResponse(archive.open("rb"), as_attachment=True, content_type="application/zip",
                            filename=f"{project.slug}-release-{release.pk}.zip")

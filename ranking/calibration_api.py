"""REST API for calibration reports (token or session auth; members read, researchers request)."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from annotator.permissions import project_for_member
from ranking import selectors
from ranking.models import CalibrationReport
from ranking.services import calibration_reports


class CalibrationReportSerializer(serializers.ModelSerializer):
    class Meta:
        model = CalibrationReport
        fields = ["id", "status", "progress", "error", "automatic", "cutoff_judgment_id", "cutoff_annotation_id",
                  "cutoff_metric_run_id", "requested_at", "started_at", "finished_at", "result"]


LatestResponse = inline_serializer("CalibrationState", fields={
    "latest": CalibrationReportSerializer(allow_null=True),
    "pending": CalibrationReportSerializer(allow_null=True),
})


class CalibrationReportLatest(APIView):
    @extend_schema(responses=LatestResponse,
                   description="The latest succeeded calibration report (every metric's agreement with the "
                               "project's raters) and the pending one, if any.")
    def get(self, request, slug):
        project, _ = project_for_member(request=request, slug=slug)
        state = selectors.calibration_report_state(project=project)
        return Response({
            "latest": CalibrationReportSerializer(state["stored"]).data if state["stored"] else None,
            "pending": CalibrationReportSerializer(state["pending"]).data if state["pending"] else None,
        })

    @extend_schema(request=None, responses={202: CalibrationReportSerializer},
                   description="Ask for a new report (coalesced with a queued one); poll GET for its result.")
    def post(self, request, slug):
        project, _ = project_for_member(request=request, slug=slug, write=True)
        report = calibration_reports.calibration_report_request(project=project)
        return Response(CalibrationReportSerializer(report).data, status=202)

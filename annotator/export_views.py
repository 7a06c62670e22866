"""Download a project's judgments as a dataset file (members of the project only).

``GET /api/projects/<slug>/judgments/export/?as=parquet|csv[&since_id=N]``

The file format is chosen with ``?as=`` (default ``parquet``), not ``?format=``: Django REST
framework reserves ``format`` for content negotiation. The export is written to a temporary
file (spooled to disk past a few MB) and streamed back as an attachment, so the web process
holds one page of rows at a time, not the dataset.
"""

from __future__ import annotations

import tempfile

from django.http import FileResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.views import APIView

from annotator.errors import InvalidInput
from annotator.exports import CONTENT_TYPES, FORMATS, judgments_export
from annotator.permissions import project_for_member

SPOOL_BYTES = 8 * 1024 * 1024


def _since_id(value: str | None) -> int | None:
    if value in (None, ""):
        return None
    if not value.isdigit():
        raise InvalidInput("since_id must be a judgment id (a whole number).", field="since_id")
    return int(value)


class JudgmentExport(APIView):
    def perform_content_negotiation(self, request, force=False):
        return super().perform_content_negotiation(request, force=True)  # the body is Parquet or CSV

    @extend_schema(
        parameters=[
            OpenApiParameter("as", OpenApiTypes.STR, enum=list(FORMATS), description="File format (default parquet)."),
            OpenApiParameter("since_id", OpenApiTypes.INT, description="Only judgments with a larger id."),
        ],
        responses={(200, CONTENT_TYPES["parquet"]): bytes, (200, "text/csv"): bytes},
    )
    def get(self, request, slug):
        project, _ = project_for_member(request=request, slug=slug)
        fmt = request.query_params.get("as", "parquet")
        if fmt not in FORMATS:
            raise InvalidInput(f"as must be one of {', '.join(FORMATS)}.", field="as")
        since_id = _since_id(request.query_params.get("since_id"))
        # Not a `with` block: the response streams the file and closes it when done (closed here on failure).
        out = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
        try:
            judgments_export(project=project, fmt=fmt, out=out, since_id=since_id)
            size = out.tell()
            out.seek(0)
        except BaseException:
            out.close()
            raise
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        response = FileResponse(out, as_attachment=True, filename=f"{project.slug}-judgments-{stamp}.{fmt}",
                                content_type=CONTENT_TYPES[fmt])
        response["Content-Length"] = str(size)
        return response

"""REST API: researchers (token or session auth) and raters (their session, CSRF-checked).

Views parse input, call one service or selector and shape the output.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import FileResponse, Http404, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView, set_rollback
from rest_framework.views import exception_handler as drf_exception_handler

from annotator import selectors, services
from annotator.consolidation import heatmap_npy, heatmap_png, item_feedback, items_feedback
from annotator.errors import DomainError, Forbidden, NotFound
from annotator.feedback import POINT_KINDS, prompt_tokens
from annotator.imports import Upload, items_import
from annotator.models import SINGLE_ITEM_KINDS, Annotation, Item, Judgment, Project, Rater, Task, TaskKind
from annotator.pagination import PAGE_PARAMETERS, ByIdCursor, paged_response
from annotator.parsers import JSONParser
from annotator.permissions import project_for_member, rater_from_session
from annotator.serializers import (
    AnnotationSubmitSerializer,
    CheckCreateSerializer,
    CheckSerializer,
    ConsentVersionSerializer,
    InstructionVersionSerializer,
    ItemSerializer,
    JudgmentSerializer,
    JudgmentSubmitSerializer,
    ProjectCreateSerializer,
    ProjectSerializer,
    ProjectUpdateSerializer,
    RankSubmitSerializer,
    RaterAnnotationSerializer,
    RaterJudgmentSerializer,
    RaterRankAnswerSerializer,
    RaterSerializer,
    TaskGenerateSerializer,
    TaskSerializer,
    rater_answer_receipt,
)
from annotator.throttles import NextTaskThrottle, RaterThrottle

logger = logging.getLogger("preflab.api")


def exception_handler(exc, context):
    """Every refusal has the same shape: ``{"error": {"code", "message", "field"?}}``, and so has every
    failure: an unexpected exception is a 500 whose message names no internals (the traceback goes to
    the log). Messages are plain text; ``field`` names the (top-level) field at fault."""
    if isinstance(exc, DomainError):
        return Response(exc.as_dict(), status=exc.status)
    if isinstance(exc, RequestDataTooBig):
        return Response({"error": {"code": "too_large", "message": "The request body is too large."}}, status=413)
    if isinstance(exc, SuspiciousOperation):
        return Response({"error": {"code": "bad_request", "message": "The request was refused as malformed."}},
                        status=400)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or None)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is None:
        view = context.get("view")
        logger.error("Unhandled error in %s", type(view).__name__ if view else "the API", exc_info=exc)
        set_rollback()
        return Response({"error": {"code": "server_error", "message": "Something went wrong on our side; the "
                                   "error was logged. Please try again later."}}, status=500)
    if isinstance(exc, exceptions.ValidationError):
        path, message = _first_error(exc.detail)
        field = path[0] if path else None
        where = ".".join(path)
        body = {"code": "invalid", "message": f"{where}: {message}" if where else message}
        if field and field != api_settings.NON_FIELD_ERRORS_KEY:
            body["field"] = field
        body["details"] = _plain(exc.detail)
    else:
        path, message = _first_error(exc.detail)
        code = getattr(exc.detail, "code", None) or exc.default_code
        body = {"code": code, "message": message}
    response.data = {"error": body}
    return response


def _first_error(detail, path: tuple[str, ...] = ()) -> tuple[tuple[str, ...], str]:
    """The first message in a DRF error detail (nested dicts and lists) and the path of keys to it."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            if value:
                return _first_error(value, (*path, str(key)))
    elif isinstance(detail, list):
        for index, value in enumerate(detail):
            if isinstance(value, (dict, list)) and value:  # a list serializer's errors, one per element
                return _first_error(value, (*path, str(index)))
            if value and not isinstance(value, (dict, list)):
                return path, str(value)
    elif detail:
        return path, str(detail)
    return path, "Invalid input."


def _plain(detail):
    """A DRF error detail as plain JSON data (strings, lists and string-keyed objects)."""
    if isinstance(detail, dict):
        return {str(key): _plain(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_plain(value) for value in detail]
    return str(detail)


# Researcher API ------------------------------------------------------------------------------------


class ProjectListCreate(APIView):
    @extend_schema(responses=ProjectSerializer(many=True))
    def get(self, request):
        projects = selectors.projects_for_user(user=request.user)
        roles = dict(request.user.memberships.values_list("project_id", "role"))
        return Response(ProjectSerializer(projects, many=True, context={"roles": roles}).data)

    @extend_schema(request=ProjectCreateSerializer, responses={201: ProjectSerializer})
    def post(self, request):
        data = ProjectCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        project = services.project_create(owner=request.user, **data.validated_data)
        return Response(ProjectSerializer(project, context={"roles": {project.pk: "researcher"}}).data, status=201)


class ProjectDetail(APIView):
    @extend_schema(responses=ProjectSerializer)
    def get(self, request, slug):
        project, role = project_for_member(request=request, slug=slug)
        return Response(ProjectSerializer(project, context={"roles": {project.pk: role}}).data)

    @extend_schema(request=ProjectUpdateSerializer, responses=ProjectSerializer)
    def patch(self, request, slug):
        project, role = project_for_member(request=request, slug=slug, write=True)
        data = ProjectUpdateSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        project = services.project_update(project=project, **data.validated_data)
        return Response(ProjectSerializer(project, context={"roles": {project.pk: role}}).data)


class ItemListUpload(APIView):
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema(responses=paged_response(ItemSerializer(many=True), "PaginatedItemList"), parameters=PAGE_PARAMETERS)
    def get(self, request, slug):
        project, _ = project_for_member(request=request, slug=slug)
        paginator = ByIdCursor()
        page = paginator.paginate_queryset(Item.objects.filter(project=project), request, view=self)
        return paginator.get_paginated_response(ItemSerializer(page, many=True).data)

    @extend_schema(
        request={"multipart/form-data": inline_serializer("ItemUpload", {
            "files": serializers.ListField(child=serializers.FileField()),
            "manifest": serializers.FileField(required=False),
        })},
        responses={201: inline_serializer("ItemUploadReport", {
            "created": serializers.IntegerField(), "already_present": serializers.ListField(),
            "files": serializers.ListField()})},
    )
    def post(self, request, slug):
        project, _ = project_for_member(request=request, slug=slug, write=True)
        uploads = [Upload(name=f.name, stream=f, size=f.size) for f in request.FILES.getlist("files")]
        manifest = request.FILES.get("manifest")
        report = items_import(
            project=project,
            uploads=uploads,
            manifest=Upload(name=manifest.name, stream=manifest, size=manifest.size) if manifest else None,
        )
        return Response(report.as_dict(), status=201)


class ItemImage(APIView):
    """An item's image, for members of its project."""

    @extend_schema(responses={(200, "image/*"): bytes})
    def get(self, request, slug, item_id):
        project, _ = project_for_member(request=request, slug=slug)
        item = get_object_or_404(Item, pk=item_id, project=project)
        return FileResponse(item.image.open("rb"), content_type=f"image/{item.image_format.lower()}")


class InstructionListCreate(APIView):
    @extend_schema(responses=InstructionVersionSerializer(many=True))
    def get(self, request, slug):
        project, _ = project_for_member(request=request, slug=slug)
        return Response(InstructionVersionSerializer(project.instruction_versions.all(), many=True).data)

    @extend_schema(request=InstructionVersionSerializer, responses={201: InstructionVersionSerializer})
    def post(self, request, slug):
        project, _ = project_for_member(request=request, slug=slug, write=True)
        data = InstructionVersionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version = services.instruction_version_create(
            project=project, text=data.validated_data["text"], created_by=request.user
        )
        return Response(InstructionVersionSerializer(version).data, status=201)


class ConsentListCreate(APIView):
    @extend_schema(responses=ConsentVersionSerializer(many=True))
    def get(self, request, slug):
        project, _ = project_for_member(request=request, slug=slug)
        return Response(ConsentVersionSerializer(project.consent_versions.all(), many=True).data)

    @extend_schema(request=ConsentVersionSerializer, responses={201: ConsentVersionSerializer})
    def post(self, request, slug):
        project, _ = project_for_member(request=request, slug=slug, write=True)
        data = ConsentVersionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version = services.consent_version_create(project=project, text=data.validated_data["text"],
                                                  created_by=request.user)
        return Response(ConsentVersionSerializer(version).data, status=201)


class TaskList(APIView):
    @extend_schema(responses=paged_response(TaskSerializer(many=True), "PaginatedTaskList"), parameters=PAGE_PARAMETERS)
    def get(self, request, slug):
        project, _ = project_for_member(request=request, slug=slug)
        paginator = ByIdCursor()
        tasks = Task.objects.filter(project=project, check_kind="")  # quality checks are not the study's tasks
        page = paginator.paginate_queryset(tasks, request, view=self)
        return paginator.get_paginated_response(TaskSerializer(page, many=True).data)


class TaskGenerate(APIView):
    @extend_schema(request=TaskGenerateSerializer,
                   responses={201: inline_serializer("TaskGenerateResult", {"created": serializers.IntegerField()})})
    def post(self, request, slug):
        project, _ = project_for_member(request=request, slug=slug, write=True)
        data = TaskGenerateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        created = services.tasks_generate(project=project, **data.validated_data)
        return Response({"created": created}, status=201)


class JudgmentList(APIView):
    @extend_schema(responses=paged_response(JudgmentSerializer(many=True), "PaginatedJudgmentList"),
                   parameters=PAGE_PARAMETERS)
    def get(self, request, slug):
        project, _ = project_for_member(request=request, slug=slug)
        paginator = ByIdCursor()
        # answers to quality checks are not data (the raters page and the checks page report them)
        qs = Judgment.objects.filter(project=project, is_check=False).select_related("rater", "instruction_version")
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(JudgmentSerializer(page, many=True).data)


class CheckListCreate(APIView):
    """The project's quality checks (gold pairs and attention checks) with how raters did; researchers add one."""

    @extend_schema(responses=CheckSerializer(many=True))
    def get(self, request, slug):
        project, _ = project_for_member(request=request, slug=slug)
        return Response(CheckSerializer(selectors.checks_of_project(project=project), many=True).data)

    @extend_schema(request=CheckCreateSerializer, responses={201: CheckSerializer})
    def post(self, request, slug):
        project, _ = project_for_member(request=request, slug=slug, write=True)
        data = CheckCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        check = services.check_create(project=project, kind=v["kind"], left_item_id=v["left_item"],
                                      right_item_id=v["right_item"], answer=v["answer"], instruction=v["instruction"])
        return Response(CheckSerializer(selectors.check_row(check=check)).data, status=201)


class CheckRetire(APIView):
    """Hand a quality check to no new rater (its answers are kept)."""

    @extend_schema(request=None, responses=CheckSerializer)
    def post(self, request, slug, check_id):
        project, _ = project_for_member(request=request, slug=slug, write=True)
        check = services.check_retire(project=project, check_id=check_id)
        return Response(CheckSerializer(selectors.check_row(check=check)).data)


class RaterList(APIView):
    @extend_schema(responses=paged_response(RaterSerializer(many=True), "PaginatedRaterList"),
                   parameters=PAGE_PARAMETERS)
    def get(self, request, slug):
        project, _ = project_for_member(request=request, slug=slug)
        paginator = ByIdCursor()
        qs = Rater.objects.filter(project=project).select_related("demographics", "consent_version")
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(RaterSerializer(page, many=True).data)


class Progress(APIView):
    @extend_schema(responses=inline_serializer("Progress", {
        "n_items": serializers.IntegerField(), "n_tasks": serializers.IntegerField(),
        "n_judgments": serializers.IntegerField(), "completion": serializers.FloatField()}))
    def get(self, request, slug):
        project, _ = project_for_member(request=request, slug=slug)
        progress = selectors.project_progress(project=project)
        return Response(progress.__dict__)


# Rater API (anonymous raters identified by their session; CSRF enforced) ----------------------------


class _RaterView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []  # each rater view names its own; checked once the rater is known

    def check_throttles(self, request):
        pass  # throttled per rater after the rater is known, at the end of initial()

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        reason = CsrfViewMiddleware(lambda r: None).process_view(request._request, None, (), {})
        if reason is not None:
            raise Forbidden("CSRF check failed: reload the page and try again.", code="csrf")
        # the rater, its project and its flow state (consent, demographics, instructions) in one query
        rater = rater_from_session(request=request, slug=kwargs["slug"], flow_state=True)
        if rater is None:
            raise Forbidden("Join this project first (use your invite or study link).", code="not_joined")
        request.rater = rater
        APIView.check_throttles(self, request)


def _next_payload(rater: Rater, following: services.RaterNext) -> dict:
    """The rater's next step as the rater pages' script reads it (see static/annotator/client.js)."""
    if following.status == "blocked":
        return {"status": "blocked", "step": following.step}
    progress = selectors.rater_progress(rater=rater, current=following.assignment)
    if following.status == "done":
        return {"status": "done", "progress": progress}
    assignment, project = following.assignment, rater.project
    if assignment.task.kind in SINGLE_ITEM_KINDS:
        body = _single_item_assignment(project, assignment)
    elif assignment.task.kind == TaskKind.RANK:
        body = _rank_assignment(project, assignment)
    else:
        body = {
            "id": assignment.pk,
            "kind": assignment.task.kind,
            "prompt_left": assignment.left_item.prompt,
            "prompt_right": assignment.right_item.prompt if assignment.right_item_id else None,
            "left": {"image": _image_url(project, assignment.left_item_id),
                     "width": assignment.left_item.width, "height": assignment.left_item.height},
            "right": {"image": _image_url(project, assignment.right_item_id),
                      "width": assignment.right_item.width, "height": assignment.right_item.height},
            "flags": project.pairwise_flags,
            "allow_tie": project.allow_tie,
            # an attention check's instruction; null for every other pair (a gold pair looks like any task)
            "instruction": assignment.task.check_instruction or None,
        }
    return {"status": "task", "progress": progress, "instruction_version": rater.acknowledged_instruction_id,
            "assignment": body}


def _single_item_assignment(project: Project, assignment) -> dict:
    """A rich-feedback or checklist assignment: one image, its prompt split into words, the questions."""
    item = assignment.left_item
    body = {
        "id": assignment.pk,
        "kind": assignment.task.kind,
        "prompt": item.prompt,
        "image": {"url": _image_url(project, item.pk), "width": item.width, "height": item.height},
    }
    if assignment.task.kind == TaskKind.RICH:
        body.update(tokens=prompt_tokens(item.prompt), effective_radius=project.effective_radius,
                    dimensions=project.likert_dimensions, point_kinds=list(POINT_KINDS))
    else:
        body.update(checklist=project.checklist)
    return body


def _rank_assignment(project: Project, assignment) -> dict:
    """A rank assignment: its k images in the order this rater is shown them (``shown_order``)."""
    items = Item.objects.in_bulk(assignment.shown_order)
    shown = [items[i] for i in assignment.shown_order]
    prompts = {item.prompt for item in shown}
    return {
        "id": assignment.pk,
        "kind": assignment.task.kind,
        "prompt": prompts.pop() if len(prompts) == 1 else None,
        "items": [{"id": item.pk, "image": _image_url(project, item.pk), "width": item.width,
                   "height": item.height, "prompt": item.prompt} for item in shown],
        "allow_tie": project.allow_tie,
    }


def _image_url(project: Project, item_id: int) -> str:
    return reverse("rater:image", args=[project.slug, item_id])


class RaterNextTask(_RaterView):
    throttle_classes = [NextTaskThrottle]

    @extend_schema(responses=inline_serializer("NextTask", {"status": serializers.CharField()}))
    def get(self, request, slug):
        rater = request.rater
        return Response(_next_payload(rater, services.rater_next(rater=rater)))


def _acknowledge(answer: dict, *, rater: Rater, created: bool) -> Response:
    """The stored answer (201 new, 200 a replay) with the rater's next task, saving them a request.

    When nothing is left, this is where the rater's completion is recorded (a POST, never a GET).
    """
    following = services.rater_next_after_answer(rater=rater, answered=created)
    return Response({**answer, "next": _next_payload(rater, following)},
                    status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class RaterJudgmentSubmit(_RaterView):
    throttle_classes = [RaterThrottle]

    @extend_schema(request=JudgmentSubmitSerializer, responses={201: RaterJudgmentSerializer,
                                                                  200: RaterJudgmentSerializer})
    def post(self, request, slug):
        data = JudgmentSubmitSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        judgment, created = services.judgment_create(
            rater=request.rater,
            assignment_id=v["assignment"],
            choice=v["choice"],
            idempotency_key=v["idempotency_key"],
            instruction_version_id=v["instruction_version"],
            response_time_ms=v["response_time_ms"],
            flags=v["flags"],
        )
        return _acknowledge(rater_answer_receipt(judgment), rater=request.rater, created=created)


class RaterAnnotationSubmit(RaterJudgmentSubmit):
    """A rater's rich-feedback or checklist answer."""

    @extend_schema(request=AnnotationSubmitSerializer, responses={201: RaterAnnotationSerializer,
                                                                    200: RaterAnnotationSerializer})
    def post(self, request, slug):
        data = AnnotationSubmitSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        annotation, created = services.annotation_create(
            rater=request.rater,
            assignment_id=v["assignment"],
            idempotency_key=v["idempotency_key"],
            instruction_version_id=v["instruction_version"],
            points=v["points"],
            misaligned_words=v["misaligned_words"],
            scores=v["scores"],
            checklist=v["checklist"],
            response_time_ms=v["response_time_ms"],
        )
        return _acknowledge(rater_answer_receipt(annotation), rater=request.rater, created=created)


class RaterRankSubmit(RaterJudgmentSubmit):
    """A rater's ranking of a rank task (groups of item ids, best first)."""

    @extend_schema(request=RankSubmitSerializer, responses={201: RaterRankAnswerSerializer,
                                                              200: RaterRankAnswerSerializer})
    def post(self, request, slug):
        data = RankSubmitSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        answer, created = services.rank_answer_create(
            rater=request.rater,
            assignment_id=v["assignment"],
            ranking=v["ranking"],
            idempotency_key=v["idempotency_key"],
            instruction_version_id=v["instruction_version"],
            response_time_ms=v["response_time_ms"],
        )
        return _acknowledge(rater_answer_receipt(answer), rater=request.rater, created=created)


# Rich feedback: consolidated records and heatmaps (researchers) ------------------------------------


class ItemFeedbackDetail(APIView):
    """The consolidated rich feedback of one item: heatmap summaries, word votes, scores, raw answers."""

    @extend_schema(responses=inline_serializer("ItemFeedback", {"item": serializers.IntegerField()}))
    def get(self, request, slug, item_id):
        project, _ = project_for_member(request=request, slug=slug)
        item = get_object_or_404(Item, pk=item_id, project=project)
        record = item_feedback(item=item, project=project).as_record()
        record["heatmap_urls"] = _heatmap_urls(request, slug, item.pk)
        return Response(record)


class ProjectFeedbackList(APIView):
    """Consolidated records of the project's annotated items, paged by item id."""

    @extend_schema(responses=paged_response(serializers.ListField(child=serializers.DictField()), "ItemFeedbackPage"),
                   parameters=PAGE_PARAMETERS)
    def get(self, request, slug):
        project, _ = project_for_member(request=request, slug=slug)
        paginator = ByIdCursor()
        paginator.page_size = 50
        paginator.max_page_size = 200
        annotated = Annotation.objects.filter(project=project).values("item_id")
        qs = Item.objects.filter(project=project, pk__in=annotated)
        page = paginator.paginate_queryset(qs, request, view=self)
        records = []
        for record_of in items_feedback(items=list(page), project=project):
            record = record_of.as_record()
            record["heatmap_urls"] = _heatmap_urls(request, slug, record_of.item_id)
            records.append(record)
        return paginator.get_paginated_response(records)


def _heatmap_urls(request, slug: str, item_id: int) -> dict:
    return {
        kind: {fmt: request.build_absolute_uri(reverse("api_item_heatmap", args=[slug, item_id, kind, fmt]))
               for fmt in ("png", "npy", "overlay")}
        for kind in POINT_KINDS
    }


class ItemHeatmap(APIView):
    """A consolidated heatmap as 0–255 grayscale PNG, float32 .npy, or a coloured RGBA overlay PNG."""

    def perform_content_negotiation(self, request, force=False):
        return super().perform_content_negotiation(request, force=True)  # the body is PNG or .npy

    @extend_schema(responses={(200, "image/png"): bytes, (200, "application/octet-stream"): bytes})
    def get(self, request, slug, item_id, kind, fmt):
        project, _ = project_for_member(request=request, slug=slug)
        item = get_object_or_404(Item, pk=item_id, project=project)
        if kind not in POINT_KINDS or fmt not in ("png", "npy", "overlay"):
            raise NotFound(f"No heatmap '{kind}/{fmt}': kind is one of {', '.join(POINT_KINDS)}, "
                           "format one of png, npy, overlay.", field="kind")
        heat = item_feedback(item=item, project=project).heatmaps[kind]
        name = f"{project.slug}-item{item.pk}-{kind}"
        if fmt == "npy":
            response = HttpResponse(heatmap_npy(heat), content_type="application/octet-stream")
            response["Content-Disposition"] = f'attachment; filename="{name}.npy"'
        elif fmt == "png":
            response = HttpResponse(heatmap_png(heat), content_type="image/png")
            response["Content-Disposition"] = f'attachment; filename="{name}.png"'
        else:
            response = HttpResponse(heatmap_png(heat, kind=kind), content_type="image/png")
        response["Cache-Control"] = "private, no-cache"
        return response

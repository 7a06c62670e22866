"""Paging of the REST API's long lists: a cursor over the row id (stable while rows are appended)."""

from drf_spectacular.utils import OpenApiParameter, inline_serializer
from rest_framework import serializers
from rest_framework.pagination import CursorPagination


class ByIdCursor(CursorPagination):
    ordering = "id"
    page_size = 500
    max_page_size = 5000
    page_size_query_param = "page_size"


#: The query parameters of a list paged by :class:`ByIdCursor`, for the OpenAPI schema.
PAGE_PARAMETERS = [
    OpenApiParameter("cursor", str, description="The page to return: the cursor from a previous page's "
                                                "`next` or `previous` link."),
    OpenApiParameter("page_size", int, description="Rows per page (default and maximum depend on the list)."),
]


def paged_response(results: serializers.Field, name: str) -> serializers.Serializer:
    """The OpenAPI shape of one page of a :class:`ByIdCursor` list: links to the pages either side and
    ``results``, e.g. ``paged_response(ItemSerializer(many=True), "PaginatedItemList")``."""
    return inline_serializer(name, {
        "next": serializers.URLField(allow_null=True, help_text="The next page, or null on the last."),
        "previous": serializers.URLField(allow_null=True, help_text="The previous page, or null on the first."),
        "results": results,
    })

"""Paging of the REST API's long lists: a cursor over the row id (stable while rows are appended)."""

from rest_framework.pagination import CursorPagination


class ByIdCursor(CursorPagination):
    ordering = "id"
    page_size = 500
    max_page_size = 5000
    page_size_query_param = "page_size"

"""OpenAPI schema post-processing: the API's error responses, documented once for every operation.

Every refusal and failure of the API answers ``{"error": {"code", "message", "field"?}}`` (see
``annotator.api.exception_handler`` and ``config.error_views``); this hook adds that shape as the
``Error`` component and lists the status codes each operation can answer with it.
"""

from __future__ import annotations

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "Machine-readable reason, e.g. invalid, invalid_json, "
                                                          "not_found, throttled, conflict, server_error."},
                "message": {"type": "string", "description": "What went wrong, in plain words."},
                "field": {"type": "string", "description": "The request field at fault, when there is one."},
                "details": {"description": "Every validation message, by field (validation errors only)."},
                "problems": {
                    "type": "array",
                    "description": "Upload refusals: every bad file and why.",
                    "items": {"type": "object", "properties": {"file": {"type": "string"},
                                                               "reason": {"type": "string"}}},
                },
            },
        },
    },
}

_DESCRIPTIONS = {
    "400": "Invalid input (the field at fault is named), or malformed JSON (`invalid_json`).",
    "401": "Not authenticated.",
    "403": "Not allowed (a viewer writing; a rater who has not joined; a failed CSRF check).",
    "404": "No such project (of yours) or object.",
    "409": "Conflicts with the stored state (e.g. already answered, a duplicate).",
    "413": "The request body is too large.",
    "429": "Throttled: too many requests; retry after the `Retry-After` header's seconds.",
}
_WRITES = {"post", "put", "patch", "delete"}
_METHODS = _WRITES | {"get", "head", "options"}


def error_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook: document the error responses of every operation."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, operations in result.get("paths", {}).items():
        rater_api = path.startswith("/r/")
        for method, operation in operations.items():
            if method not in _METHODS:
                continue
            codes = ["400", "403", "404", "429"]
            if not rater_api:  # raters are identified by their session: refused with 403, never 401
                codes.append("401")
            if method in _WRITES:
                codes.append("409")
                if "multipart/form-data" in operation.get("requestBody", {}).get("content", {}):
                    codes.append("413")
            responses = operation.setdefault("responses", {})
            for code in sorted(codes):
                responses.setdefault(code, {"description": _DESCRIPTIONS[code], "content": ref})
    return result

"""The API schema's error answers, declared in one place (issue 11 §2): every operation lists
each 4xx and 5xx it can answer, all with the one error body of D-10 (`ApiError`).

Which codes an operation can answer follows from how its view is built, so views declare only
the codes their own rules add (a 409 from a policy refusal on an operation without an
`Idempotency-Key`, a 404 for an object named in the body, a 503):

- 400: it reads input a client can get wrong: a body, query parameters other than `page`, or
  the `Idempotency-Key` header;
- 401: it authenticates (a token that is sent must be valid, even where none is needed);
- 403: it needs a role (a permission class beyond `IsAuthenticated`), or it changes something
  and accepts the session cookie, whose CSRF check may fail;
- 404: an id in the path (another user's object is a 404, D-4), or a paginated list (`page`
  past the end);
- 409 and 422: it honours `Idempotency-Key` (a key still in use, a key reused for another
  request), besides the policy's refusals;
- 415: it takes a body, and not of any content type;
- 429: it is throttled;
- 500 and 503: anything can fail on our side, and any request reads the database, whose
  failure is a 503 `database_unavailable` (`core.api`).

A 429 or 503 says when to try again in `Retry-After` (seconds).
"""

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import AllowAny, IsAuthenticated

from core.api import ApiErrorSerializer
from core.idempotency import HEADER as IDEMPOTENCY_HEADER

ERROR_DESCRIPTIONS = {
    400: "The request could not be read, or an input is invalid: `code` says what, `field` "
    "names the input.",
    401: "Not signed in, or the token sent is not valid.",
    403: "Signed in without the role this needs, refused by the policy for this account, or "
    "a session request without its CSRF token.",
    404: "No such object, or not yours; or no such page of a list.",
    409: "Refused by the policy or by the object's state (`clauses` cites the policy), or a "
    "request with this Idempotency-Key is still running.",
    415: "The body's Content-Type is not one this operation takes.",
    422: "This Idempotency-Key was already used for a different request.",
    429: "Too many attempts: wait as the Retry-After header says.",
    500: "Something went wrong on our side; try again.",
    503: "The database or the card processor did not answer: try again after Retry-After "
    "seconds, with the same Idempotency-Key.",
}
RETRY_AFTER = {
    "Retry-After": {
        "schema": {"type": "integer", "minimum": 0},
        "description": "Seconds to wait before trying again.",
    }
}
BODY_METHODS = {"POST", "PUT", "PATCH"}
# Pages past the end are a 404 (DRF's PageNumberPagination); no other query parameter is free.
PAGINATION_PARAMETERS = {"page"}


class ApiAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema, plus the error answers each operation can give (module
    docstring), as `ApiError` with a description of when it comes."""

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        responses = operation["responses"]
        for code in self.error_codes(operation) - {int(code) for code in responses}:
            responses[str(code)] = self._get_response_for_code(
                OpenApiResponse(ApiErrorSerializer, ERROR_DESCRIPTIONS[code]), str(code)
            )
        # Errors the view declared itself, with no words of their own, get these.
        for code, response in responses.items():
            if not response.get("description") and int(code) in ERROR_DESCRIPTIONS:
                response["description"] = ERROR_DESCRIPTIONS[int(code)]
            if code in ("429", "503"):
                response["headers"] = RETRY_AFTER | response.get("headers", {})
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def error_codes(self, operation: dict) -> set[int]:
        """The 4xx and 5xx this operation can answer, from its view's classes (module
        docstring)."""
        parameters = {(p["in"], p["name"]) for p in operation.get("parameters", [])}
        idempotent = ("header", IDEMPOTENCY_HEADER) in parameters
        takes_body = self.method in BODY_METHODS
        codes = {500, 503}
        if (
            "requestBody" in operation
            or idempotent
            or any(loc == "query" and n not in PAGINATION_PARAMETERS for loc, n in parameters)
        ):
            codes.add(400)
        if self.view.authentication_classes:
            codes.add(401)
        if self._needs_a_role() or (takes_body and self._accepts_session()):
            codes.add(403)
        if any(loc == "path" for loc, _ in parameters) or ("query", "page") in parameters:
            codes.add(404)
        if idempotent:
            codes |= {409, 422}
        if takes_body and not any(p.media_type == "*/*" for p in self.view.parser_classes):
            codes.add(415)
        if self.view.throttle_classes:
            codes.add(429)
        return codes

    def _needs_a_role(self) -> bool:
        return any(
            permission not in (AllowAny, IsAuthenticated)
            for permission in self.view.permission_classes
        )

    def _accepts_session(self) -> bool:
        return any(
            issubclass(authentication, SessionAuthentication)
            for authentication in self.view.authentication_classes
        )

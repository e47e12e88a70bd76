"""The one domain error: a stable code, a message for people and the clauses behind a refusal."""

from collections.abc import Sequence


class DomainError(Exception):
    """A refused action. `kind` picks the HTTP status: `conflict` (state or policy) -> 409,
    `invalid` (bad input) -> 400, `forbidden` (the actor may not do this at all: a suspended
    account, a role that does not decide it) -> 403, `not_found` -> 404, `unavailable` (a
    dependency such as the card processor did not answer; retrying is safe) -> 503."""

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        clauses: Sequence[str] = (),
        kind: str = "conflict",
        extra: dict | None = None,
    ):
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.clauses = tuple(clauses)
        self.kind = kind
        self.extra = extra or {}

    def as_dict(self) -> dict:
        body = {"code": self.code, "detail": self.detail}
        if self.clauses:
            body["clauses"] = list(self.clauses)
        return body | self.extra


class InvalidInput(DomainError):
    def __init__(self, code: str, detail: str, **kwargs):
        super().__init__(code, detail, kind="invalid", **kwargs)

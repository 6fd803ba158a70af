"""Domain errors. Services raise these; the HTTP boundary turns them into JSON (DESIGN §4.2).

Messages are in Chinese because people read them; codes are stable English identifiers.
"""
from __future__ import annotations


class DomainError(Exception):
    status = 400
    code = "domain_error"

    def __init__(self, message: str, *, code: str | None = None, fields: dict | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.fields = fields or {}


class ValidationError(DomainError):
    status = 400
    code = "invalid_input"


class NotFoundError(DomainError):
    status = 404
    code = "not_found"


class UnauthorizedError(DomainError):
    """Who is asking is unknown (no, expired or forged credentials)."""

    status = 401
    code = "unauthorized"


class TooManyAttemptsError(DomainError):
    status = 429
    code = "too_many_attempts"


class PayloadTooLargeError(DomainError):
    """What was sent is over a size limit (bytes or pixels)."""

    status = 413
    code = "payload_too_large"


class ServiceUnavailableError(DomainError):
    """A service we depend on (WeChat, WeChat Pay) cannot answer now."""

    status = 503
    code = "service_unavailable"


class PermissionDeniedError(DomainError):
    status = 403
    code = "forbidden"


class InvalidTransitionError(DomainError):
    """The ticket (or other stateful thing) is not in a state that allows this action."""

    status = 409
    code = "invalid_transition"


class ConflictError(DomainError):
    status = 409
    code = "conflict"


class ImportRejectedError(DomainError):
    status = 400
    code = "import_rejected"

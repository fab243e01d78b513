"""Klink's own error types.

Every boundary (HTTP, git, boto3, Packer, HAProxy, the database) translates what goes wrong
outside into one of these, so that nothing above it sees botocore or subprocess errors. The HTTP
layer turns them into ``{"error": {"code", "message", "field"?}}`` with ``status``.
"""

from __future__ import annotations

from typing import Any


class KlinkError(Exception):
    """Base of every error Klink raises on purpose."""

    status = 500
    code = "error"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return {"error": body}


class InvalidInput(KlinkError):
    """The request itself is wrong: a bad name, a bad value, a missing field."""

    status = 400
    code = "invalid"


class Unauthorized(KlinkError):
    status = 401
    code = "unauthorized"


class Forbidden(KlinkError):
    status = 403
    code = "forbidden"


class NotFound(KlinkError):
    status = 404
    code = "not_found"


class Conflict(KlinkError):
    """The request is valid but clashes with the current state (exists, in use, in progress)."""

    status = 409
    code = "conflict"


class Locked(Conflict):
    """Klink (or one app+env) is closed for business."""

    code = "locked"


class Throttled(KlinkError):
    """The cloud kept throttling after the bounded retries."""

    status = 503
    code = "throttled"


class Unavailable(KlinkError):
    """A service or the cloud could not be reached, or answered 5xx: worth trying again."""

    status = 503
    code = "unavailable"


def is_transient(exc: BaseException) -> bool:
    """The errors that the engine retries within its budget: throttling, unreachable or failing
    services (an unknown 5xx is a plain ``KlinkError``), never a refusal such as a bad request,
    a conflict or a cloud's own "no"."""
    return isinstance(exc, Throttled | Unavailable) or type(exc) is KlinkError


class QuotaExceeded(KlinkError):
    """The cloud account is at one of its limits (instances, groups, target groups…): raise
    the quota or free some; retrying does not help."""

    status = 429
    code = "quota_exceeded"


class ProviderError(KlinkError):
    """The cloud (or the local provider) refused or failed; the message is the cloud's."""

    status = 502
    code = "provider_error"


class ExternalCommandError(KlinkError):
    """git, packer or another tool failed; ``output`` holds its last lines."""

    status = 502
    code = "command_failed"

    def __init__(self, message: str, *, output: str = "", field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.output = output


class SettingsError(KlinkError):
    """A ``KLINK_*`` environment variable has a bad value (raised at start-up)."""

    code = "bad_setting"

"""Domain exceptions that carry their HTTP meaning (mapped to one error body in api/errors.py).

Activities translate them into Temporal ApplicationErrors with the class name as the type, so
the API can map a failed update (e.g. OverQuota inside update-with-start) back to the same code.
"""

from __future__ import annotations


class NovaflowError(Exception):
    code = 500
    # Nova's error body key for this code, e.g. {"badRequest": {"code": 400, "message": ...}}.
    title = "computeFault"
    retryable = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Invalid(NovaflowError):
    code = 400
    title = "badRequest"


class Forbidden(NovaflowError):
    code = 403
    title = "forbidden"


class OverQuota(Forbidden):
    """Nova answers 403 for quota: 'Quota exceeded for cores: Requested 4, but already used...'."""


class NotFound(NovaflowError):
    code = 404
    title = "itemNotFound"


class Conflict(NovaflowError):
    code = 409
    title = "conflictingRequest"


class PortInUse(Conflict):
    pass


class ServiceUnavailable(NovaflowError):
    code = 503
    title = "serviceUnavailable"


class RequestExpired(ServiceUnavailable):
    """The request waited too long for a worker; nothing was recorded. The client retries."""


class NoValidHost(NovaflowError):
    """No host passes the filters or can hold the claim (not an API error: a build fault)."""

    code = 500
    title = "computeFault"


ERROR_TYPES: dict[str, type[NovaflowError]] = {
    cls.__name__: cls
    for cls in (
        Invalid,
        Forbidden,
        OverQuota,
        NotFound,
        Conflict,
        PortInUse,
        NoValidHost,
        ServiceUnavailable,
        RequestExpired,
    )
}

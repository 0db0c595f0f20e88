"""Reading an activity's failure inside a workflow: its type and message, as the domain said."""

from __future__ import annotations

from temporalio.exceptions import ActivityError, ApplicationError


def error_type(error: BaseException) -> str:
    cause = error.cause if isinstance(error, ActivityError) else error
    if isinstance(cause, ApplicationError) and cause.type:
        return cause.type
    return type(cause).__name__


def fault_message(error: BaseException) -> str:
    cause = error.cause if isinstance(error, ActivityError) and error.cause else error
    if isinstance(cause, ApplicationError):
        return cause.message
    return str(cause)


def reraisable(error: ActivityError) -> ApplicationError:
    """An activity's ApplicationError, re-raised from an update handler with its type kept
    (the API maps the type to an HTTP code)."""
    return ApplicationError(fault_message(error), type=error_type(error), non_retryable=True)

"""What every activity shares: errors sorted at the boundary, and each step recorded as an
instance-action event (the audit trail behind os-instance-actions)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlmodel import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from novaflow import servers
from novaflow.db import Database
from novaflow.errors import NovaflowError
from novaflow.models import utcnow
from workflows.contracts import StepContext


def as_application_error(error: NovaflowError) -> ApplicationError:
    """Domain errors cross the boundary typed by their class: the workflow and the API map
    them back (e.g. OverQuota -> 403). Retrying cannot fix a domain error."""
    return ApplicationError(
        error.message, type=type(error).__name__, non_retryable=not error.retryable
    )


class StepRecorder:
    """Runs a step inside a write transaction and records its event in that same transaction
    (no extra commit on the hot path). A failure is recorded in a transaction of its own."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @contextmanager
    def step(self, ctx: StepContext, event: str, host: str | None = None) -> Iterator[Session]:
        started = utcnow()
        try:
            with self.db.write() as session:
                yield session
                servers.record_event(
                    session, ctx.server_id, ctx.request_id, event, start_time=started, host=host
                )
        except NovaflowError as error:
            self.record_failure(ctx, event, started, str(error), host)
            raise as_application_error(error) from error
        except Exception as error:
            self.record_failure(ctx, event, started, f"{type(error).__name__}: {error}", host)
            raise

    def record(
        self,
        ctx: StepContext,
        event: str,
        started,
        error: str | None = None,  # type: ignore[no-untyped-def]
        host: str | None = None,
    ) -> None:
        with self.db.write() as session:
            servers.record_event(
                session,
                ctx.server_id,
                ctx.request_id,
                event,
                start_time=started,
                error=error,
                host=host,
            )

    def record_failure(
        self,
        ctx: StepContext,
        event: str,
        started,
        error: str,  # type: ignore[no-untyped-def]
        host: str | None,
    ) -> None:
        try:
            self.record(ctx, event, started, error=error, host=host)
        except Exception:  # the step's own error matters more than a failed audit write
            activity.logger.exception("could not record failed event %s", event)

"""ResizeServer: a resize (a new flavor) or a cold migration (the same flavor, another host),
then a confirm or a revert. Nova's resize/migrate, confirmResize and revertResize.

    gate (in the update that starts the workflow): state, lock, policy; task resize_prep; the
    new flavor checked, quota for what grows reserved (403 at once); the migration recorded
    -> read the plan (flavors, ports, the source's claim)
    -> pick and claim a destination: its own claim, the source keeps its   (undo: release it)
    -> stop the guest on the source                          (undo: start it there again)
    -> copy the disk to the destination                      (undo: remove all it put there)
    -> define with the new flavor there, start it (unless it was stopped)
    -> VERIFY_RESIZE: the migration `finished`, both hosts claimed
    -> wait for the `confirm` or `revert` update (the API, the ops CLI, `temporal workflow
       update`, the Temporal UI), or resize_confirm_window seconds (then it confirms itself)
    confirm -> remove the guest from the source; its claim and the old flavor's quota released
    revert  -> remove the guest from the destination; its claim and the growth's quota
               released; the guest started on the source again with its old flavor

A failure before VERIFY_RESIZE runs every undo in reverse: the server is back where it was,
the migration `error`, the action failed. A step whose outcome is unknown parks (parking.py).
A delete cancels this workflow: before VERIFY_RESIZE that rolls back; after it, the source is
cleaned as by a confirm (as Nova does), and the delete removes the destination. A resize to
the same host (allow_resize_to_same_host) redefines the domain where it is, keeping a copy of
its disk as it was (Nova's `<instance>_resize`): a revert puts it back, a confirm deletes it.
Only contracts are imported here: no I/O, replay-safe.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

from workflows import steps
from workflows.compensation import Compensations, run_to_completion
from workflows.contracts import (
    DELETE_COMING,
    HOST,
    KEEP_ORIGINAL_DISK,
    NEEDS_ATTENTION,
    RESTORE_ORIGINAL_DISK,
    BeginInput,
    ClaimRef,
    DestinationInput,
    DiskTransferInput,
    HostPowerInput,
    MoveInput,
    MovePlan,
    MoveProgress,
    MoveResult,
    MoveStepInput,
    PowerResult,
    ResizeDecision,
    ServerRef,
    SpawnInput,
    StepContext,
    Ticket,
)
from workflows.errors import error_type, fault_message, reraisable
from workflows.gate import Gated
from workflows.parking import MarkedError, Parkable

CONFIRM, REVERT = "confirmResize", "revertResize"
# Histories recorded before a same-host confirm deleted the disk kept for a revert replay
# without that step.
DROP_ORIGINAL_DISK_PATCH = "drop-original-disk-on-confirm"
SHUTDOWN = 4  # Nova's power state of a guest that is defined and not running
# Who confirms when resize_confirm_window runs out (the instance action's user).
CONFIRM_WINDOW_USER = "resize_confirm_window"


@workflow.defn(name="ResizeServer")
class ResizeServer(Gated, Parkable):
    def __init__(self) -> None:
        self._phase = "waiting for the state gate"
        self._awaiting = False  # VERIFY_RESIZE: a confirm or a revert is welcome
        # The guest is being defined on the destination, VERIFY_RESIZE comes next. A decision
        # may arrive now: a worker that took the workflow over after a crash applies the
        # update before it replays the step that got there (updates come first in an
        # activation), while the database already says VERIFY_RESIZE.
        self._almost_awaiting = False
        self._deciding = False  # one of them passed the validator: no other
        self._verdict: tuple[str, str] | None = None  # (action, its request id)
        self._verdict_given = asyncio.Event()
        self._project_id = ""
        self._server_id = ""
        self._delete_coming = False
        self._stop_requested = False  # a cancel came while nothing could be undone yet

    @workflow.signal(name=DELETE_COMING)
    def delete_coming(self) -> None:
        """A delete cancels this move next: roll back now, or stop waiting for a decision."""
        self._delete_coming = True
        self._verdict_given.set()

    def _stop_if_deleting(self) -> None:
        if self._delete_coming or self._stop_requested:
            raise asyncio.CancelledError("a delete came")

    # ------------------------------------------------------------ confirm and revert

    @workflow.update(name="confirm")
    async def confirm(self, decision: ResizeDecision) -> Ticket:
        """Nova's confirmResize: keep the server where it runs now."""
        return await self._give_verdict(CONFIRM, decision)

    @confirm.validator
    def _may_confirm(self, decision: ResizeDecision) -> None:
        self._check_awaiting(CONFIRM)

    @workflow.update(name="revert")
    async def revert(self, decision: ResizeDecision) -> Ticket:
        """Nova's revertResize: back to the source, with the old flavor."""
        return await self._give_verdict(REVERT, decision)

    @revert.validator
    def _may_revert(self, decision: ResizeDecision) -> None:
        self._check_awaiting(REVERT)

    def _check_awaiting(self, action: str) -> None:
        if not (self._awaiting or self._almost_awaiting) or self._deciding:
            raise ApplicationError(
                f"Cannot '{action}' instance {self._server_id}: it is not waiting for a "
                f"confirm or a revert ({self._phase})",
                type="Conflict",
                non_retryable=True,
            )

    async def _give_verdict(self, action: str, decision: ResizeDecision) -> Ticket:
        """The decision's own gate (lock, policy, state; the instance action recorded), then
        the verdict for the run to carry out."""
        self._deciding = True
        if not self._awaiting:  # (no wait otherwise: histories recorded before replay as they were)
            await workflow.wait_condition(lambda: self._awaiting or not self._almost_awaiting)
        if not self._awaiting:  # the move failed on the way and was rolled back
            self._deciding = False
            raise ApplicationError(
                f"Cannot '{action}' instance {self._server_id}: the resize failed and was "
                "rolled back",
                type="Conflict",
                non_retryable=True,
            )
        request_id = decision.request_id or f"req-{workflow.uuid4()}"
        try:
            ticket = await steps.begin_operation(
                BeginInput(
                    ctx=StepContext(self._server_id, request_id, f"begin_{action}"),
                    action=action,
                    project_id=decision.project_id or self._project_id,
                    user_id=decision.user_id or "operator",
                    is_admin=decision.is_admin,
                    workflow_id=workflow.info().workflow_id,
                )
            )
        except (ActivityError, ApplicationError) as error:
            # (A local activity's refusal arrives as its ApplicationError itself.)
            self._deciding = False
            self._verdict_given.set()  # the wait looks again (the confirm window goes on)
            if isinstance(error, ActivityError):
                raise reraisable(error) from None
            raise
        self._verdict = (action, ticket.request_id)
        self._verdict_given.set()
        return ticket

    # ------------------------------------------------------------ the flow

    @workflow.run
    async def run(self, inp: MoveInput) -> MoveResult:
        self._server_id = inp.server_id
        ticket = await self._gate()
        if ticket is None:
            return MoveResult(inp.server_id, "REJECTED")
        request_id = ticket.request_id
        planning = asyncio.ensure_future(
            steps.plan_move(ServerRef(StepContext(inp.server_id, request_id, "plan_move")))
        )
        try:
            plan = await asyncio.shield(planning)
        except asyncio.CancelledError:  # before anything was done: roll back at _move's start
            plan = await planning
            self._stop_requested = True
        self._project_id = plan.project_id
        workflow.upsert_search_attributes([HOST.value_set(plan.source)])
        dest = await self._move(inp, plan, request_id)

        verdict = await self._await_verdict(inp, plan)
        if verdict is None:  # a delete came: Nova confirms before it deletes
            self._enter("a delete came: removing the guest from the source first")
            # The delete's cancel is expected: the move ends with its clean-up done.
            with contextlib.suppress(asyncio.CancelledError):
                await run_to_completion(self._confirm(inp, plan, dest, request_id))
            self._enter("cleaned for the delete")
            return MoveResult(inp.server_id, "CONFIRMED_FOR_DELETE", dest)
        action, decision_id = verdict
        if action == CONFIRM:
            await run_to_completion(self._confirm(inp, plan, dest, decision_id))
            self._enter(f"confirmed: the server stays on {dest}")
            return MoveResult(inp.server_id, "CONFIRMED", dest)
        await run_to_completion(self._revert(inp, plan, dest, decision_id))
        self._enter(f"reverted: the server is back on {plan.source}")
        return MoveResult(inp.server_id, "REVERTED", plan.source)

    async def _move(self, inp: MoveInput, plan: MovePlan, request_id: str) -> str:
        """Up to VERIFY_RESIZE; returns the destination. Any failure rolls back and raises."""
        ctx = _contexts(inp.server_id, request_id)
        pickup = timedelta(seconds=inp.host_pickup_seconds)
        source = plan.source
        # The last undo of all, after the others: fail_move (the growth's quota, the migration
        # `error`, the server where it was; in ERROR if an undo could not be done).
        undo = Compensations()
        try:
            self._stop_if_deleting()
            undo.add(
                "release the destination's claim",
                lambda: steps.release_claim(
                    ClaimRef(ctx("release_dest_claim"), plan.dest_claim_id)
                ),
            )
            self._enter("picking and claiming a destination")
            same_host_allowed = inp.action == "resize" and inp.allow_same_host
            placed = await steps.claim_destination(
                DestinationInput(
                    ctx=ctx("claim_destination"),
                    claim_id=plan.dest_claim_id,
                    resources=plan.new_resources,
                    image_properties=plan.image_properties,
                    availability_zone=plan.availability_zone,
                    server_group_id=plan.server_group_id,
                    exclude_hosts=[] if same_host_allowed else [source],
                    only_host=plan.requested_host,
                )
            )
            dest = placed.host
            workflow.upsert_search_attributes([HOST.value_set(dest)])
            self._stop_if_deleting()
            await steps.advance_move(
                MoveProgress(
                    ctx("record_migrating"),
                    plan.migration_id,
                    status="migrating",
                    task_state="resize_migrating",
                    dest=dest,
                )
            )
            if plan.was_running:
                undo.add(
                    "start the guest on the source again",
                    lambda: self._power(inp, source, "start", ctx("start_on_source")),
                )
                await self._power(inp, source, "stop", ctx("stop_on_source"))
            self._stop_if_deleting()
            if dest == source:
                undo.add(
                    "define the domain with its old flavor and disk again",
                    lambda: self._define(
                        inp,
                        plan,
                        source,
                        False,
                        ctx("redefine_old"),
                        old=True,
                    ),
                )
            else:
                undo.add(
                    f"remove what was put on {dest}",
                    lambda: steps.remove_domain(dest, ServerRef(ctx("destroy_on_dest")), pickup),
                )
                await self._until_decided(
                    "receive_disk",
                    dest,
                    lambda: steps.receive_disk_on_host(
                        dest,
                        DiskTransferInput(
                            ctx("receive_disk"),
                            source,
                            plan.source_uri,
                            plan.old_resources.disk_gb,
                            plan.image_id,
                            plan.image_content,
                        ),
                        pickup,
                    ),
                )
            self._stop_if_deleting()
            await steps.advance_move(
                MoveProgress(
                    ctx("record_migrated"),
                    plan.migration_id,
                    status="post-migrating",
                    task_state="resize_migrated",
                )
            )
            self._almost_awaiting = True
            result = await self._define(inp, plan, dest, plan.was_running, ctx("spawn_on_dest"))
            self._stop_if_deleting()
            self._awaiting = True  # from the moment finish_move commits VERIFY_RESIZE
            await steps.finish_move(
                MoveStepInput(ctx("finish_move"), plan.migration_id, power_state=result.power_state)
            )
            self._enter(f"VERIFY_RESIZE on {dest}")
            return dest
        except (ActivityError, ApplicationError, asyncio.CancelledError, MarkedError) as error:
            self._awaiting = self._almost_awaiting = False
            cancelled = is_cancelled_exception(error)
            if cancelled:
                fault = "cancelled (a DELETE, or an operator)"
            elif isinstance(error, MarkedError):
                fault = str(error)
            else:
                fault = fault_message(error)
            self._enter(f"rolling back: {fault[:100]}")
            # A step an operator marked ERROR is given back as any failure: what is on the
            # destination is removed, its claim released; the server is then left in ERROR.
            failed = await undo.run()
            if failed:
                fault = f"{fault} (could not undo: {', '.join(failed)})"
                workflow.upsert_search_attributes([NEEDS_ATTENTION.value_set(True)])
            marked = isinstance(error, MarkedError) or bool(failed)
            await run_to_completion(
                steps.fail_move(
                    MoveStepInput(
                        ctx("fail_move"), plan.migration_id, error=fault, mark_error=marked
                    )
                )
            )
            if cancelled:
                raise
            raise ApplicationError(
                f"{inp.action} failed and was rolled back: {fault}",
                type="MarkedError" if isinstance(error, MarkedError) else error_type(error),
                non_retryable=True,
            ) from None

    async def _await_verdict(self, inp: MoveInput, plan: MovePlan) -> tuple[str, str] | None:
        """The confirm or revert (action, request id); None when a delete came first. With a
        confirm window, the move confirms itself once it runs out and no decision is under
        way; a decision refused by its gate (locked, ...) leaves the wait as it was.

        The window is one timer, started once: an activation whose only news is a failed
        update does not send new commands (SDK 1.35), so a timer started there never runs."""
        window = inp.confirm_window_seconds
        window_over: asyncio.Future[Any] | None = (
            asyncio.ensure_future(asyncio.sleep(window)) if window > 0 else None
        )
        self._awaiting = True
        self._enter(
            "VERIFY_RESIZE: waiting for a confirm or a revert"
            + (f" (confirmed by itself after {window:.0f} s)" if window > 0 else "")
        )
        try:
            while True:
                if self._verdict is not None:
                    return self._verdict
                if self._delete_coming and not self._deciding:
                    return None
                self._verdict_given.clear()
                if window_over is not None and window_over.done() and not self._deciding:
                    window_over = None
                    auto = ResizeDecision(user_id=CONFIRM_WINDOW_USER, project_id=plan.project_id)
                    with contextlib.suppress(ApplicationError):  # refused (a reset state...)
                        await self._give_verdict(CONFIRM, auto)
                    continue
                given: asyncio.Future[Any] = asyncio.ensure_future(self._verdict_given.wait())
                waits = [given]
                if window_over is not None and not window_over.done():
                    waits.append(window_over)
                try:
                    await workflow.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    given.cancel()
        except asyncio.CancelledError:
            return self._verdict  # a delete's cancel: a verdict already given is kept
        finally:
            self._awaiting = self._almost_awaiting = False
            if window_over is not None:
                window_over.cancel()

    async def _confirm(self, inp: MoveInput, plan: MovePlan, dest: str, request_id: str) -> None:
        ctx = _contexts(inp.server_id, request_id)
        if dest != plan.source:
            # A source that is down is left to its reaper: its claim is released below.
            self._enter(f"confirming: removing the guest from {plan.source}")
            await steps.remove_domain(
                plan.source,
                ServerRef(ctx("destroy_on_source")),
                timedelta(seconds=inp.host_pickup_seconds),
            )
        elif workflow.patched(DROP_ORIGINAL_DISK_PATCH):
            # The disk kept for a revert. A host that cannot do it now keeps the file until
            # the server is deleted (its disk's delete takes it too): the confirm goes on.
            try:
                await steps.drop_original_disk_on_host(
                    dest,
                    ServerRef(ctx("drop_original_disk")),
                    timedelta(seconds=inp.host_pickup_seconds),
                )
            except ActivityError as error:
                workflow.logger.warning("kept the original disk on %s: %s", dest, error)
        await steps.confirm_move(MoveStepInput(ctx("confirm_move"), plan.migration_id))

    async def _revert(self, inp: MoveInput, plan: MovePlan, dest: str, request_id: str) -> None:
        ctx = _contexts(inp.server_id, request_id)
        source = plan.source
        error: str | None = None
        power_state = SHUTDOWN
        try:
            if dest == source:
                if plan.was_running:
                    await self._power(inp, source, "stop", ctx("stop_on_source"))
                result = await self._define(
                    inp,
                    plan,
                    source,
                    plan.was_running,
                    ctx("redefine_old"),
                    old=True,
                )
                power_state = result.power_state
            else:
                self._enter(f"reverting: removing the guest from {dest}")
                await steps.remove_domain(
                    dest,
                    ServerRef(ctx("destroy_on_dest")),
                    timedelta(seconds=inp.host_pickup_seconds),
                )
                if plan.was_running:
                    power_state = (
                        await self._power(inp, source, "start", ctx("start_on_source"))
                    ).power_state
        except (ActivityError, MarkedError) as failure:
            # Nothing to roll back to: the server stays on its source, in ERROR (a hard reboot
            # starts it once its host is back).
            error = f"revertResize could not start the server again: {fault_message(failure)}"
            workflow.upsert_search_attributes([NEEDS_ATTENTION.value_set(True)])
        await steps.revert_move(
            MoveStepInput(
                ctx("revert_move"),
                plan.migration_id,
                power_state=power_state,
                error=error,
                mark_error=error is not None,
            )
        )

    # ------------------------------------------------------------ host steps

    async def _power(self, inp: MoveInput, host: str, action: str, ctx: StepContext) -> PowerResult:
        return await self._until_decided(
            action,
            host,
            lambda: steps.power_action_on_host(
                host,
                HostPowerInput(ctx, action, inp.shutdown_timeout_seconds),
                timedelta(seconds=inp.host_pickup_seconds),
            ),
        )

    async def _define(
        self,
        inp: MoveInput,
        plan: MovePlan,
        host: str,
        start: bool,
        ctx: StepContext,
        old: bool = False,
    ) -> PowerResult:
        """Define the domain on `host` with the new flavor (or the old one), start it if
        `start`: the disk that is there is kept and grown to the flavor's size. On the source
        (a resize to the same host, or its revert) a copy of the disk is kept first, or that
        copy is put back with the old flavor."""
        on_source = host == plan.source
        original_disk = (RESTORE_ORIGINAL_DISK if old else KEEP_ORIGINAL_DISK) if on_source else ""
        spec = SpawnInput(
            ctx=ctx,
            name=plan.name,
            project_id=plan.project_id,
            flavor_name=plan.old_flavor_name if old else plan.new_flavor_name,
            image_id=plan.image_id,
            resources=plan.old_resources if old else plan.new_resources,
            ports=plan.ports,
            image_properties=plan.image_properties,
            start=start,
            image_content=plan.image_content,
            original_disk=original_disk,
        )
        pickup = timedelta(seconds=inp.host_pickup_seconds)
        return await self._until_decided(
            "define", host, lambda: steps.spawn_on_host(host, spec, pickup)
        )


def _contexts(server_id: str, request_id: str) -> Callable[[str], StepContext]:
    def ctx(event: str) -> StepContext:
        return StepContext(server_id, request_id, event)

    return ctx

"""CreateServer: the build of one server, as a textbook flow.

    reserve quota (inside the update that starts the workflow: the API answers 403 at once)
    -> schedule: filter, weigh, claim a host            (undo: release the claim)
    -> allocate network: ports, fixed and floating IPs   (undo: release them)
    -> on compute@<host>: prepare disk, define, start    (undo: destroy, undefine, delete disk;
                                                          host down: left to its reaper)
    -> mark ACTIVE and commit quota

Every undo is registered before its step runs. A failure on a host gives that host's part
back and reschedules on another host (at most `max_build_attempts` hosts); any other failure,
or a cancellation (a delete arrived), runs every undo in reverse and leaves the server in
ERROR with a fault. Only contracts are imported here: no I/O, replay-safe.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

from workflows import steps
from workflows.compensation import Compensations, run_to_completion
from workflows.contracts import (
    BUILD_ABORTED,
    CONTROL_TASK_QUEUE,
    HOST,
    HOST_BUILD_DEADLINE,
    NEEDS_ATTENTION,
    OPERATION,
    PROJECT_ID,
    SERVER_ID,
    USER_ID,
    ClaimRef,
    CreateServerInput,
    CreateServerResult,
    FailInput,
    FinishInput,
    HostCheck,
    NetworkInput,
    NetworkResult,
    ReserveInput,
    ReserveResult,
    ScheduleInput,
    ServerRef,
    SpawnInput,
    StepContext,
    claim_id_for,
    operation_workflow_id,
)
from workflows.errors import error_type, fault_message, reraisable
from workflows.gate import first_write_decided
from workflows.phase import PhaseReporting

# workflow.patched id: an expired reservation runs its step, which cleans up (see reserve).
EXPIRED_RESERVE_CLEANS_UP = "expired-reserve-cleans-up"


class HostBuildFailed(Exception):
    """A step on the chosen host failed in a way another host might not."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"{host}: {reason}")
        self.host = host


@workflow.defn(name="CreateServer")
class CreateServer(PhaseReporting):
    def __init__(self) -> None:
        self._reservation: ReserveResult | None = None
        self._reserve_input: ReserveInput | None = None
        self._reserve_answered = asyncio.Event()
        self._phase = "waiting for the quota reservation"

    # ------------------------------------------------------------ messages

    @workflow.update(name="reserve")
    async def reserve(self, inp: ReserveInput) -> ReserveResult:
        """Record the server(s) and reserve quota: the API sends this with the start."""
        self._reserve_input = inp
        expired = inp.accept_until and workflow.now().timestamp() > inp.accept_until
        if expired and not workflow.patched(EXPIRED_RESERVE_CLEANS_UP):
            # (Histories from before the patch: refused here, without the step; but an attempt
            # that committed just before its worker died then left its rows behind.)
            self._reserve_answered.set()
            raise ApplicationError(
                "the request expired before a worker took it",
                type="RequestExpired",
                non_retryable=True,
            )
        # An expired request (the API gave up waiting: 503) is refused by the step itself,
        # which removes what an earlier attempt of it committed: it is never built later.
        try:
            self._reservation = await steps.reserve_quota(inp)
        except ActivityError as error:
            raise reraisable(error) from None
        finally:
            self._reserve_answered.set()
        return self._reservation

    @reserve.validator
    def _reserve_once(self, inp: ReserveInput) -> None:
        if self._reserve_input is not None:
            raise ValueError("this create has already reserved its quota")

    # ------------------------------------------------------------ the flow

    @workflow.run
    async def run(self, inp: CreateServerInput) -> CreateServerResult:
        server_id = inp.server.server_id
        if not inp.reserved:
            # The API starts this workflow together with the reservation update (update-with-
            # start): the update is in the very first workflow task, so no timer is needed.
            await first_write_decided(self._reserve_answered)
            if self._reservation is None or server_id not in self._reservation.server_ids:
                return CreateServerResult(server_id, "REJECTED", fault="over quota")
            # Every reserved sibling gets its workflow, even if a delete cancels this one now.
            await run_to_completion(self._start_siblings(inp))
        return await self._build(inp)

    async def _build(self, inp: CreateServerInput) -> CreateServerResult:
        request, server_id = inp.request, inp.server.server_id
        undo = Compensations()
        undo.add("release quota", lambda: steps.release_quota(self._ref(inp, "release_quota")))
        tried: list[str] = []
        failures: list[str] = []
        network: NetworkResult | None = None
        try:
            for attempt in range(1, inp.max_build_attempts + 1):
                host_undo = Compensations()
                try:
                    host = await self._schedule(inp, attempt, tried, host_undo)
                    if network is None:
                        undo.add(
                            "release network",
                            lambda: steps.release_network(self._ref(inp, "release_network")),
                        )
                        self._enter("allocating network")
                        network = await steps.allocate_network(
                            NetworkInput(
                                self._ctx(inp, "allocate_network"),
                                request.project_id,
                                request.ports,
                            )
                        )
                    power_state = await self._spawn(inp, host, network, host_undo)
                except HostBuildFailed as failure:
                    failures.append(str(failure))
                    await self._give_back(host_undo)
                    if attempt == inp.max_build_attempts:
                        raise ApplicationError(
                            f"Exceeded maximum number of retries. Exhausted all hosts "
                            f"available for retrying build failures for instance {server_id}. "
                            + "; ".join(failures),
                            type="MaxRetriesExceeded",
                            non_retryable=True,
                        ) from None
                    continue
                except (ActivityError, ApplicationError, asyncio.CancelledError):
                    await self._give_back(host_undo)
                    raise
                self._enter("marking ACTIVE")
                await steps.finish_create(
                    FinishInput(self._ctx(inp, "finish_create"), host=host, power_state=power_state)
                )
                self._enter(f"ACTIVE on {host}")
                return CreateServerResult(server_id, "ACTIVE", host=host)
            raise AssertionError("unreachable: the loop returns or raises")
        except (ActivityError, ApplicationError, asyncio.CancelledError) as error:
            # (Anything else is a bug: the workflow task fails and is retried after a fix.)
            if is_cancelled_exception(error):
                self._enter("cancelled: giving everything back")
                await self._compensate(inp, undo, "Build cancelled: the server is being deleted")
                raise
            fault = fault_message(error)
            self._enter(f"failed: {fault[:100]}")
            await self._compensate(inp, undo, fault)
            raise ApplicationError(fault, type=error_type(error), non_retryable=True) from None

    # ------------------------------------------------------------ the steps

    async def _schedule(
        self, inp: CreateServerInput, attempt: int, tried: list[str], host_undo: Compensations
    ) -> str:
        request = inp.request
        claim = ClaimRef(
            self._ctx(inp, f"release_claim_{attempt}"), claim_id_for(inp.server.server_id, attempt)
        )
        host_undo.add("release claim", lambda: steps.release_claim(claim))
        self._enter(f"scheduling (attempt {attempt})")
        placement = await steps.schedule(
            ScheduleInput(
                ctx=self._ctx(inp, f"schedule_{attempt}"),
                attempt=attempt,
                resources=request.resources,
                image_properties=request.image_properties,
                availability_zone=request.availability_zone,
                server_group_id=request.server_group_id,
                exclude_hosts=list(tried),
            )
        )
        tried.append(placement.host)
        workflow.upsert_search_attributes([HOST.value_set(placement.host)])
        alternates = ", ".join(placement.alternates) or "none"
        self._enter(f"claimed {placement.host} (alternates: {alternates})")
        return placement.host

    async def _spawn(
        self, inp: CreateServerInput, host: str, network: NetworkResult, host_undo: Compensations
    ) -> int:
        """Disk, domain, start on the host. Raises HostBuildFailed when another host may do."""
        request = inp.request
        pickup = timedelta(seconds=inp.host_pickup_seconds)
        host_undo.add(
            "destroy on host",
            lambda: steps.remove_domain(host, self._ref(inp, "destroy_on_host"), pickup),
        )
        spawn = SpawnInput(
            ctx=self._ctx(inp, "spawn_on_host"),
            name=inp.server.name,
            project_id=request.project_id,
            flavor_name=request.flavor_name,
            image_id=request.image_id,
            resources=request.resources,
            ports=network.ports,
            image_properties=request.image_properties,
            image_content=request.image_content,
        )
        waiting_since = workflow.now()
        while True:
            self._enter(f"building on {host}: disk, domain, start")
            try:
                return (await steps.spawn_on_host(host, spawn, pickup)).power_state
            except ActivityError as error:
                if is_cancelled_exception(error) or error_type(error) == BUILD_ABORTED:
                    raise  # cancelled, or no other host would do better (bad XML, missing image)
                if not steps.not_picked_up(error):
                    raise HostBuildFailed(host, fault_message(error)) from None
            # Not picked up in time: a host that is up is only busy (every slot of its worker
            # taken), so the build waits on; one that is down has failed this build.
            waited = workflow.now() - waiting_since
            check = HostCheck(self._ctx(inp, "check_host"), host)
            if waited >= HOST_BUILD_DEADLINE or not (await steps.check_host(check)).up:
                raise HostBuildFailed(
                    host,
                    f"its compute worker did not take the build within "
                    f"{waited.total_seconds():.0f} s (down, or too busy)",
                )

    async def _start_siblings(self, inp: CreateServerInput) -> None:
        """A multi-create reserved quota for every server at once; each other server gets its
        own CreateServer workflow, abandoned by this one so that each lives on its own."""
        assert self._reservation is not None and self._reserve_input is not None
        reserved = set(self._reservation.server_ids)
        for sibling in self._reserve_input.servers:
            if sibling.server_id == inp.server.server_id or sibling.server_id not in reserved:
                continue
            await workflow.start_child_workflow(
                CreateServer.run,
                CreateServerInput(
                    request=inp.request,
                    server=sibling,
                    reserved=True,
                    max_build_attempts=inp.max_build_attempts,
                    host_pickup_seconds=inp.host_pickup_seconds,
                ),
                id=operation_workflow_id(sibling.server_id, "create", inp.request.request_id),
                task_queue=CONTROL_TASK_QUEUE,
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(SERVER_ID, sibling.server_id),
                        SearchAttributePair(PROJECT_ID, inp.request.project_id),
                        SearchAttributePair(OPERATION, "create"),
                        SearchAttributePair(USER_ID, inp.request.user_id),
                    ]
                ),
                static_summary=f"create server {sibling.name} ({sibling.server_id})",
            )

    async def _compensate(self, inp: CreateServerInput, undo: Compensations, fault: str) -> None:
        failed = await undo.run()
        if failed:
            fault = f"{fault} (compensation failed: {', '.join(failed)})"
            workflow.upsert_search_attributes([NEEDS_ATTENTION.value_set(True)])
        await run_to_completion(steps.fail_create(FailInput(self._ctx(inp, "fail_create"), fault)))

    async def _give_back(self, host_undo: Compensations) -> None:
        failed = await host_undo.run()
        if failed:
            workflow.upsert_search_attributes([NEEDS_ATTENTION.value_set(True)])
            raise ApplicationError(
                f"could not clean up a failed host: {', '.join(failed)}",
                type="CompensationFailed",
                non_retryable=True,
            )

    @staticmethod
    def _ctx(inp: CreateServerInput, event: str) -> StepContext:
        return StepContext(inp.server.server_id, inp.request.request_id, event)

    def _ref(self, inp: CreateServerInput, event: str) -> ServerRef:
        return ServerRef(self._ctx(inp, event))

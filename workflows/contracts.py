"""What the API, the workflows and the activities agree on: names, queues, inputs, outputs.

Pure data: no I/O, safe inside the workflow sandbox. One dataclass in and one out for every
workflow and activity, so fields can be added later without breaking running histories
(new fields always get defaults).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from temporalio.common import RetryPolicy, SearchAttributeKey

from novaflow.resources import NOTHING, Resources

CONTROL_TASK_QUEUE = "novaflow-control"


def compute_task_queue(host: str) -> str:
    """Each hypervisor host's worker polls its own queue: libvirt calls run on the right host."""
    return f"compute@{host}"


def operation_workflow_id(server_id: str, operation: str, request_id: str) -> str:
    """Readable in the Temporal UI: server-<id>-<operation>-<request>."""
    return f"server-{server_id}-{operation}-{request_id.removeprefix('req-')[:8]}"


# Typed search attributes, registered on the Temporal server at start (see workers/devstack.py).
SERVER_ID = SearchAttributeKey.for_keyword("ServerId")
PROJECT_ID = SearchAttributeKey.for_keyword("ProjectId")
OPERATION = SearchAttributeKey.for_keyword("Operation")
HOST = SearchAttributeKey.for_keyword("Host")
NEEDS_ATTENTION = SearchAttributeKey.for_bool("NeedsAttention")
# Who asked for it: the user id (a Keycloak token's `sub`; noauth: the claimed user name).
USER_ID = SearchAttributeKey.for_keyword("UserId")
SEARCH_ATTRIBUTES = (SERVER_ID, PROJECT_ID, OPERATION, HOST, NEEDS_ATTENTION, USER_ID)

# Error types that cross the activity boundary (ApplicationError.type).
HOST_FAILURE = "HostFailure"  # this host cannot build it: reschedule elsewhere
BUILD_ABORTED = "BuildAborted"  # no host could: bad XML, missing image...
NO_VALID_HOST = "NoValidHost"

# Timeouts and retries, named and set on every call.
DB_STEP_TIMEOUT = timedelta(seconds=10)
DB_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=5),
    non_retryable_error_types=[
        "Invalid",
        "RequestExpired",
        "Forbidden",
        "OverQuota",
        "NotFound",
        "Conflict",
        "PortInUse",
        NO_VALID_HOST,
    ],
)
HOST_STEP_TIMEOUT = timedelta(minutes=2)
# A build step whose host stays away this long (worker dead) counts as a host failure, so the
# build moves on to another host instead of waiting in a queue nobody polls.
HOST_BUILD_DEADLINE = timedelta(minutes=3)
HOST_STEP_HEARTBEAT = timedelta(seconds=5)
# The default wait for a host's worker to pick a step up (Settings.host_pickup_seconds).
HOST_PICKUP_SECONDS = 30.0
# Host steps retry a transient hypervisor error a few times, then the host counts as failed.
HOST_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=500),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=5),
    maximum_attempts=4,
    non_retryable_error_types=[HOST_FAILURE, BUILD_ABORTED],
)
# Undo steps must end: they retry without a limit (each is idempotent).
UNDO_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=500),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
)


def claim_id_for(server_id: str, attempt: int) -> str:
    """A claim's id is derived from the operation, so a retried schedule finds its own claim
    and the undo can be registered before the claim exists."""
    return f"{server_id}/build/{attempt}"


# ---------------------------------------------------------------- create


@dataclass
class PortRequest:
    """One entry of the POST's `networks`: a network to make a port on, or a user's port."""

    network_id: str | None = None
    port_id: str | None = None
    fixed_ip: str | None = None
    floating_ip: bool = False


@dataclass
class NewServer:
    """One server row as the API asked for it."""

    server_id: str
    name: str
    launch_index: int = 0


@dataclass
class ImageContent:
    """An image with content, as a host fetches it into its cache (through the image API)
    and checks it: its SHA-256, size and format; with the kernel and ramdisk it boots from
    when its kernel_id/ramdisk_id name them (Nova's AMI-style images), fetched the same way."""

    image_id: str
    sha256: str
    size: int
    disk_format: str = "qcow2"  # qcow2 | raw
    kernel: ImageContent | None = None
    ramdisk: ImageContent | None = None


class ContentRecord(Protocol):
    """What image_content reads (novaflow.images.Content, which workflows do not import)."""

    @property
    def image_id(self) -> str: ...
    @property
    def sha256(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def disk_format(self) -> str: ...
    @property
    def kernel(self) -> ContentRecord | None: ...
    @property
    def ramdisk(self) -> ContentRecord | None: ...


def image_content(content: ContentRecord | None) -> ImageContent | None:
    """The image service's description of an image's content (novaflow.images.content_of),
    as the workflows carry it to a host (None: a blank disk)."""
    if content is None:
        return None
    return ImageContent(
        image_id=content.image_id,
        sha256=content.sha256,
        size=content.size,
        disk_format=content.disk_format,
        kernel=image_content(content.kernel),
        ramdisk=image_content(content.ramdisk),
    )


@dataclass
class CreateRequest:
    """Everything a create request carries, shared by the servers of a multi-create."""

    request_id: str
    reservation_id: str
    project_id: str
    user_id: str
    flavor_id: str
    flavor_name: str
    image_id: str
    resources: Resources = NOTHING  # the flavor's, as one value (see __post_init__)
    image_properties: dict[str, str] = field(default_factory=dict)
    ports: list[PortRequest] = field(default_factory=list)
    availability_zone: str | None = None
    server_group_id: str | None = None
    key_name: str | None = None
    user_data: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    description: str | None = None  # Nova 2.19
    tags: list[str] = field(default_factory=list)  # Nova 2.52
    # The image's content, when it has some (None: a blank disk, as the seeded images).
    image_content: ImageContent | None = None
    # Until 2026-12 the amounts travelled as three fields. Histories recorded then (a create
    # still running through an upgrade) carry only these: they become `resources` on load.
    vcpus: int = 0
    memory_mb: int = 0
    disk_gb: int = 0

    def __post_init__(self) -> None:
        if not self.resources and (self.vcpus or self.memory_mb or self.disk_gb):
            self.resources = Resources(self.vcpus, self.memory_mb, self.disk_gb)


@dataclass
class ReserveInput:
    """The first step of a create, run inside the update that starts the workflow: record the
    servers and reserve their quota in one transaction, all or nothing."""

    request: CreateRequest
    servers: list[NewServer]
    min_count: int = 1
    # Epoch seconds after which the reservation is refused: an API that gave up waiting (and
    # answered 503) must not see its request built later. 0: no deadline.
    accept_until: float = 0.0


@dataclass
class ReserveResult:
    server_ids: list[str]


@dataclass
class CreateServerInput:
    request: CreateRequest
    server: NewServer
    # Set for the servers of a multi-create after the first: their quota is already reserved.
    reserved: bool = False
    max_build_attempts: int = 3
    host_pickup_seconds: float = HOST_PICKUP_SECONDS


@dataclass
class CreateServerResult:
    server_id: str
    status: str  # ACTIVE | REJECTED (a failure or a cancel ends the workflow itself)
    host: str | None = None
    fault: str | None = None


# ---------------------------------------------------------------- steps


@dataclass
class StepContext:
    """Who an activity works for: the audit trail records each step under it."""

    server_id: str
    request_id: str
    event: str = ""


@dataclass
class ScheduleInput:
    ctx: StepContext
    attempt: int
    resources: Resources
    image_properties: dict[str, str] = field(default_factory=dict)
    availability_zone: str | None = None
    server_group_id: str | None = None
    exclude_hosts: list[str] = field(default_factory=list)


@dataclass
class ScheduleResult:
    host: str
    claim_id: str
    alternates: list[str] = field(default_factory=list)


@dataclass
class ClaimRef:
    ctx: StepContext
    claim_id: str


@dataclass
class NetworkInput:
    ctx: StepContext
    project_id: str
    ports: list[PortRequest]


@dataclass
class AllocatedPort:
    port_id: str
    network_id: str
    network_name: str
    mac_address: str
    fixed_ips: list[str]
    floating_ips: list[str] = field(default_factory=list)


@dataclass
class NetworkResult:
    ports: list[AllocatedPort]


@dataclass
class ServerRef:
    ctx: StepContext


@dataclass
class SpawnInput:
    """The host's part of a build: disk, domain (from flavor, image and ports), start."""

    ctx: StepContext
    name: str
    project_id: str
    flavor_name: str
    image_id: str
    resources: Resources
    ports: list[AllocatedPort]
    # How the image boots on the host (e.g. kernel_path/initrd_path: direct kernel boot).
    image_properties: dict[str, str] = field(default_factory=dict)
    # False: define it and leave it stopped (a stopped server that is resized or migrated).
    start: bool = True
    # The disk is a copy-on-write overlay of this image, fetched into the host's cache first.
    image_content: ImageContent | None = None
    # A resize on the same host: KEEP_ORIGINAL_DISK (a copy of the disk before it is grown,
    # for a revert) or RESTORE_ORIGINAL_DISK (the revert: that copy back); "" for neither.
    original_disk: str = ""


KEEP_ORIGINAL_DISK, RESTORE_ORIGINAL_DISK = "keep", "restore"


@dataclass
class PowerResult:
    power_state: int


@dataclass
class FinishInput:
    ctx: StepContext
    host: str | None = None
    power_state: int = 1


@dataclass
class FailInput:
    ctx: StepContext
    message: str
    details: str = ""
    code: int = 500


# ---------------------------------------------------------------- every other operation


@dataclass
class BeginInput:
    """The first write of an operation, made inside its workflow by the update that starts it
    (update-with-start): the state gate (a compare-and-swap on task_state against the states
    Nova allows), the lock check and the instance action, in one transaction. A refusal is the
    update's error, so the API answers 409/403/404 from the request itself."""

    ctx: StepContext
    action: str  # Nova's instance-action name: delete, stop, start, reboot, pause, lock, ...
    project_id: str
    user_id: str
    is_admin: bool = False
    workflow_id: str = ""
    # The action's arguments, e.g. {"type": "HARD"} for reboot, {"state": "error"} for
    # os-resetState, {"locked_reason": ...} for lock.
    options: dict[str, str] = field(default_factory=dict)
    # Epoch seconds after which the gate refuses: an API that gave up waiting (503) must not
    # see its request carried out later. 0: no deadline.
    accept_until: float = 0.0


@dataclass
class Ticket:
    """What the gate let through: where the operation acts, and what is left to do."""

    # The instance action the steps are recorded under: this request's, or, for a repeated
    # delete taking over one that failed, the earlier request's.
    request_id: str
    host: str | None = None
    # The step on the server's host ("stop", "reboot-soft", ...); None: the gate did it all.
    host_action: str | None = None
    # A delete cancels the operation still running on the server first (its workflow id).
    running_workflow_id: str | None = None
    # Two DELETEs in the same instant: the other's workflow does it, this one ends at once.
    joined: str | None = None


@dataclass
class OperationInput:
    """A server action's workflow input; its gate's input arrives with the start."""

    server_id: str
    action: str
    host_pickup_seconds: float = HOST_PICKUP_SECONDS
    # How long a clean shutdown (stop, soft reboot) may take before the power is cut.
    shutdown_timeout_seconds: float = 60.0


@dataclass
class OperationResult:
    server_id: str
    status: str  # DONE | REJECTED (the gate refused it: the API already answered 409)
    power_state: int | None = None


@dataclass
class HostPowerInput:
    ctx: StepContext
    # stop | start | reboot-soft | reboot-hard | pause | unpause | suspend | resume |
    # trigger-crash-dump
    action: str
    shutdown_timeout_seconds: float = 60.0


@dataclass
class HostStepRecord:
    """A host step as the workflow saw it, for the audit trail (compute workers write nothing
    to the database: the control plane records their steps)."""

    event: str  # e.g. "stop@host-b"
    host: str
    started: float  # epoch seconds
    finished: float
    error: str | None = None


@dataclass
class EndInput:
    """The last write of an operation: the server's new state, or its failure, and the
    instance action finished. The new vm_state comes from the domain's table of actions."""

    ctx: StepContext
    action: str
    power_state: int | None = None
    error: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    # An operator decided (mark-error) that the server is left in ERROR with `error` as fault.
    mark_error: bool = False
    host_step: HostStepRecord | None = None


# ---------------------------------------------------------------- rebuild


@dataclass
class RebuildPlan:
    """What a rebuild re-creates on the server's host: its disk from the (new) image, its
    domain with the same flavor and ports."""

    host: str
    name: str
    project_id: str
    flavor_name: str
    image_id: str
    resources: Resources
    ports: list[AllocatedPort] = field(default_factory=list)
    image_properties: dict[str, str] = field(default_factory=dict)
    start: bool = True  # it runs afterwards unless it was stopped
    image_content: ImageContent | None = None


# ---------------------------------------------------------------- resize and cold migrate


@dataclass
class MoveInput:
    """A resize's or a cold migration's workflow input; its gate's input arrives with the
    start (update-with-start), as every operation's."""

    server_id: str
    action: str  # resize | migrate
    host_pickup_seconds: float = HOST_PICKUP_SECONDS
    shutdown_timeout_seconds: float = 60.0
    # Nova's resize_confirm_window: confirmed by itself after this many seconds; 0 waits for a
    # person (or a program) to confirm or revert.
    confirm_window_seconds: float = 0.0
    allow_same_host: bool = False  # Nova's allow_resize_to_same_host (a resize only)


@dataclass
class MovePlan:
    """What the move needs, read once after its gate recorded the migration."""

    migration_id: int
    source: str
    # The source host's libvirt (its disk now comes from its worker: Host.disk_transfer_url;
    # the field stays, recorded histories carry it).
    source_uri: str
    dest_claim_id: str
    was_running: bool
    name: str
    project_id: str
    image_id: str
    old_flavor_name: str
    new_flavor_name: str
    old_resources: Resources
    new_resources: Resources
    ports: list[AllocatedPort] = field(default_factory=list)
    image_properties: dict[str, str] = field(default_factory=dict)
    availability_zone: str | None = None
    server_group_id: str | None = None
    requested_host: str | None = None  # a cold migration's `host`
    image_content: ImageContent | None = None


@dataclass
class DestinationInput:
    """Pick and claim a destination: the scheduler's filters and weighers, as for a build."""

    ctx: StepContext
    claim_id: str
    resources: Resources
    image_properties: dict[str, str] = field(default_factory=dict)
    availability_zone: str | None = None
    server_group_id: str | None = None
    exclude_hosts: list[str] = field(default_factory=list)
    only_host: str | None = None  # an admin named the host: still filtered, never forced


@dataclass
class MoveProgress:
    ctx: StepContext
    migration_id: int
    status: str  # the migration's new status
    task_state: str  # the server's new task state
    dest: str | None = None


@dataclass
class MoveStepInput:
    """A step that ends a phase of the move (finish, confirm, revert, fail)."""

    ctx: StepContext
    migration_id: int
    power_state: int | None = None
    error: str | None = None
    mark_error: bool = False  # an operator decided the server is left in ERROR


@dataclass
class DiskTransferInput:
    """The destination pulls the server's disk from the source host's compute worker."""

    ctx: StepContext
    source_host: str
    source_uri: str  # (not read any more; recorded histories carry it)
    size_gb: int
    image_id: str
    # The image the disk is an overlay of: the destination fetches it into its cache first.
    image_content: ImageContent | None = None


@dataclass
class ResizeDecision:
    """The argument of the `confirm` and `revert` updates: who decides. The API fills it
    from the caller; sent as {} (the Temporal UI, `temporal workflow update`, the ops CLI) it
    is an operator's decision."""

    request_id: str = ""
    project_id: str = ""
    user_id: str = ""
    is_admin: bool = True


@dataclass
class MoveResult:
    server_id: str
    status: str  # CONFIRMED | REVERTED | ROLLED_BACK | REJECTED
    host: str | None = None


# ---------------------------------------------------------------- delete


@dataclass
class DeleteServerInput:
    server_id: str
    request_id: str
    project_id: str
    user_id: str
    # The operation running when the delete came in (its workflow id), to cancel first.
    running_workflow_id: str | None = None
    host_pickup_seconds: float = HOST_PICKUP_SECONDS
    # Started by an API that makes the first write through the workflow's gate (update-with-
    # start). False for deletes an older API started after writing the gate itself.
    gated: bool = False


@dataclass
class DeleteServerResult:
    server_id: str
    host: str | None = None
    rejected: bool = False  # the gate refused it (e.g. locked): the API answered 409


# Sent by a delete to the operation it cancels, just before the cancel: a cancel can be absorbed
# by a step that completed anyway (Temporal delivers it to the step), a signal cannot. An
# operation that waits (a move in VERIFY_RESIZE) or runs many steps watches for it.
DELETE_COMING = "delete-coming"


@dataclass
class AwaitWorkflowInput:
    workflow_id: str


@dataclass
class ServerPlacement:
    """Where a server's resources are, as the database knows it."""

    host: str | None
    exists: bool = True
    # False when the host's compute worker stopped heartbeating: the delete then happens in the
    # database only, and the host's worker removes the domain when it comes back.
    host_up: bool = True


@dataclass
class HostCheck:
    """Asked when a host's worker did not pick a step up: is the host down?"""

    ctx: StepContext
    host: str


@dataclass
class HostStatus:
    up: bool


# ---------------------------------------------------------------- diagnostics


@dataclass
class DiagnosticsInput:
    server_id: str
    host: str


@dataclass
class DomainDiagnostics:
    """What the hypervisor reports of a server's domain (Nova's server diagnostics)."""

    defined: bool
    state: int = 0  # libvirt's virDomainState
    vcpus: int = 0
    memory_mb: int = 0
    cpu_time_ns: int = 0
    mac_addresses: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- console output


@dataclass
class ConsoleOutputInput:
    server_id: str
    host: str
    # The last lines wanted; None for the whole log (as far as the host reads it).
    length: int | None = None


@dataclass
class ConsoleOutput:
    """A server's console log as its host read it (Nova's os-getConsoleOutput)."""

    output: str = ""

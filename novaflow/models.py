"""SQLModel tables: the source of truth for servers, hosts, networks and quotas.

Rows are plain records; the rules that change them live in the modules that own each concern
(quota.py, placement.py, ipam.py, servers.py). Schema changes go through Alembic
(novaflow/migrations), never `create_all` outside tests of the migration itself.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from novaflow.resources import Resources


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


class Flavor(SQLModel, table=True):
    id: str = Field(primary_key=True)
    name: str = Field(unique=True, index=True)
    vcpus: int
    ram: int  # MiB, Nova's unit
    disk: int  # GiB
    is_public: bool = True

    @property
    def resources(self) -> Resources:
        """What a server of this flavor takes: the one value passed on to the claim and the
        domain."""
        return Resources(self.vcpus, self.ram, self.disk)


class Image(SQLModel, table=True):
    """An image (Glance's record). One with content has its bytes in the control plane's image
    store and a checksum; the seeded ones have none (their servers start with a blank disk)."""

    id: str = Field(default_factory=new_id, primary_key=True)
    name: str = Field(index=True)
    status: str = "active"  # queued (no content yet) | active | killed (its upload failed)
    min_disk: int = 0
    min_ram: int = 0
    size: int = 0
    properties: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    disk_format: str = "qcow2"  # qcow2 | raw | aki (a kernel) | ari (a ramdisk)
    container_format: str = "bare"
    checksum: str | None = None  # MD5 of the content, as Glance's `checksum`
    os_hash_value: str | None = None  # SHA-256 of the content: what hosts verify
    owner: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    @property
    def has_content(self) -> bool:
        return self.os_hash_value is not None


class Network(SQLModel, table=True):
    id: str = Field(default_factory=new_id, primary_key=True)
    name: str = Field(index=True)
    project_id: str | None = None  # None: shared with every project
    external: bool = False  # an external network is a floating-IP pool
    created_at: datetime = Field(default_factory=utcnow)


class Subnet(SQLModel, table=True):
    id: str = Field(default_factory=new_id, primary_key=True)
    network_id: str = Field(foreign_key="network.id", index=True)
    cidr: str
    gateway_ip: str | None = None
    allocation_start: str
    allocation_end: str


class Port(SQLModel, table=True):
    id: str = Field(default_factory=new_id, primary_key=True)
    network_id: str = Field(foreign_key="network.id", index=True)
    project_id: str = Field(index=True)
    mac_address: str = Field(unique=True)
    device_id: str | None = Field(default=None, index=True)  # the server it is bound to
    # A port the server's create made is deleted with the server; a user's port is only unbound.
    owned_by_server: bool = False
    status: str = "DOWN"
    created_at: datetime = Field(default_factory=utcnow)


class FixedIP(SQLModel, table=True):
    """One address handed out from a subnet. The primary key makes a double hand-out impossible."""

    subnet_id: str = Field(foreign_key="subnet.id", primary_key=True)
    address: str = Field(primary_key=True)
    port_id: str = Field(index=True)


class FloatingIP(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("network_id", "address"),)

    id: str = Field(default_factory=new_id, primary_key=True)
    network_id: str = Field(foreign_key="network.id", index=True)
    address: str
    project_id: str = Field(index=True)
    port_id: str | None = Field(default=None, index=True)
    fixed_ip_address: str | None = None
    # Made by a server's create: released with it.
    owned_by_server: bool = False
    created_at: datetime = Field(default_factory=utcnow)


class Host(SQLModel, table=True):
    """A hypervisor host as its compute worker reported it, with what is claimed on it."""

    name: str = Field(primary_key=True)
    id: str = Field(default_factory=new_id, unique=True)
    availability_zone: str = "nova"
    arch: str = "x86_64"
    hypervisor_type: str = "test"
    libvirt_uri: str = ""
    # Where its compute worker serves disks to the hosts they move to (hypervisor/
    # disk_transfer.py); None for a host that copies none (libvirt's test driver).
    disk_transfer_url: str | None = None
    vcpus: int = 0
    memory_mb: int = 0
    disk_gb: int = 0
    cpu_allocation_ratio: float = 4.0
    ram_allocation_ratio: float = 1.0
    disk_allocation_ratio: float = 1.0
    vcpus_used: int = 0
    memory_mb_used: int = 0
    disk_gb_used: int = 0
    running_vms: int = 0
    enabled: bool = True
    disabled_reason: str | None = None
    # An operator's word that the host is down (Nova's forced_down): down whatever it
    # heartbeats, so that its servers can be evacuated before the heartbeat times out.
    forced_down: bool = False
    last_heartbeat: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)


class ComputeService(SQLModel, table=True):
    """The integer id a host's nova-compute service has in os-services before 2.53 (Nova's
    services.id; from 2.53 the host's uuid is used). Only the id: the service's state
    (enabled, disabled_reason, forced_down) is the Host's, where the scheduler reads it. A
    table of its own because only a primary key counts up by itself in SQLite."""

    __table_args__ = {"sqlite_autoincrement": True}  # never reused after a delete, as Nova's

    id: int | None = Field(default=None, primary_key=True)
    host: str = Field(foreign_key="host.name", unique=True)


class Claim(SQLModel, table=True):
    """Resources of one server held on one host. The id is chosen by the caller (idempotency)."""

    id: str = Field(primary_key=True)
    server_id: str = Field(index=True)
    host: str = Field(foreign_key="host.name", index=True)
    vcpus: int
    memory_mb: int
    disk_gb: int
    state: str = "active"  # active | released
    created_at: datetime = Field(default_factory=utcnow)


class KeyPair(SQLModel, table=True):
    """A user's SSH public key (or x509 certificate), which a server's key_name names.
    Keypairs belong to a user, not a project, as in Nova."""

    __table_args__ = (UniqueConstraint("user_id", "name", name="uq_keypair_user_id_name"),)

    id: int | None = Field(default=None, primary_key=True)  # Nova shows an integer id
    name: str
    user_id: str
    public_key: str = Field(sa_column=Column(Text, nullable=False))
    fingerprint: str
    type: str = "ssh"  # ssh | x509
    created_at: datetime = Field(default_factory=utcnow)


class ServerGroup(SQLModel, table=True):
    id: str = Field(default_factory=new_id, primary_key=True)
    name: str
    policy: str  # affinity | anti-affinity | soft-affinity | soft-anti-affinity
    project_id: str = Field(index=True)
    user_id: str
    created_at: datetime = Field(default_factory=utcnow)


class ServerGroupMember(SQLModel, table=True):
    group_id: str = Field(foreign_key="servergroup.id", primary_key=True)
    server_id: str = Field(primary_key=True)


class ServerTag(SQLModel, table=True):
    """One of a server's tags (Nova 2.26): a short text a user filters servers by."""

    server_id: str = Field(primary_key=True)
    tag: str = Field(primary_key=True)


class Server(SQLModel, table=True):
    id: str = Field(default_factory=new_id, primary_key=True)
    name: str
    project_id: str = Field(index=True)
    user_id: str
    reservation_id: str = Field(index=True)  # Nova's r-xxxxxxxx: the servers of one request
    launch_index: int = 0
    flavor_id: str
    image_id: str
    vcpus: int
    memory_mb: int
    disk_gb: int
    vm_state: str = "building"
    task_state: str | None = "scheduling"
    power_state: int = 0
    host: str | None = Field(default=None, index=True)
    availability_zone: str | None = None
    key_name: str | None = None
    user_data: str | None = None
    metadata_: dict[str, str] = Field(
        default_factory=dict, sa_column=Column("metadata", JSON, nullable=False)
    )
    requested_networks: list[dict[str, object]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    server_group_id: str | None = None
    description: str | None = None  # Nova 2.19
    hostname: str | None = None  # the guest's, from its first name (Nova's, shown from 2.3)
    # Nova's lock: a locked server refuses actions from non-admins; locked_by is "owner" (a user
    # of its project locked it) or "admin" (an admin of another project did).
    locked: bool = False
    locked_by: str | None = None
    locked_reason: str | None = None
    fault_code: int | None = None
    fault_message: str | None = None
    fault_details: str | None = None
    fault_created: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    launched_at: datetime | None = None
    terminated_at: datetime | None = None
    deleted: bool = Field(default=False, index=True)


class InstanceAction(SQLModel, table=True):
    """One operation on one server (Nova's os-instance-actions): the audit trail's header."""

    server_id: str = Field(primary_key=True)
    request_id: str = Field(primary_key=True)
    action: str
    project_id: str
    user_id: str
    workflow_id: str
    start_time: datetime = Field(default_factory=utcnow)
    finish_time: datetime | None = None
    message: str | None = None  # "Error" when it failed, as Nova


class InstanceActionEvent(SQLModel, table=True):
    """One workflow step of an operation. A retried step updates its own row."""

    server_id: str = Field(primary_key=True)
    request_id: str = Field(primary_key=True)
    event: str = Field(primary_key=True)
    start_time: datetime = Field(default_factory=utcnow)
    finish_time: datetime | None = None
    result: str | None = None  # Success | Error
    host: str | None = None
    details: str | None = None


class QuotaLimit(SQLModel, table=True):
    project_id: str = Field(primary_key=True)
    resource: str = Field(primary_key=True)
    hard_limit: int


class ProjectUsage(SQLModel, table=True):
    """Reserved plus committed usage per project: the counters the atomic quota check updates."""

    project_id: str = Field(primary_key=True)
    instances: int = 0
    cores: int = 0
    ram: int = 0
    ports: int = 0
    floating_ips: int = 0


class Reservation(SQLModel, table=True):
    """What one server holds of its project's quota. id = server id."""

    id: str = Field(primary_key=True)
    project_id: str = Field(index=True)
    instances: int = 0
    cores: int = 0
    ram: int = 0
    ports: int = 0
    floating_ips: int = 0
    state: str = "reserved"  # reserved | committed | released
    created_at: datetime = Field(default_factory=utcnow)


class Migration(SQLModel, table=True):
    """One move of a server between hosts (Nova's migration record): a resize or a cold
    migration, from the gate that accepted it to its confirm, revert or failure. The amounts
    and claims of both sides are kept here, so a revert or a clean-up needs nothing else."""

    id: int | None = Field(default=None, primary_key=True)  # Nova shows an integer id
    uuid: str = Field(default_factory=new_id, unique=True)
    server_id: str = Field(index=True)
    project_id: str = Field(index=True)
    user_id: str
    request_id: str  # the resize's or migrate's instance action
    workflow_id: str  # the workflow that moves it (confirm and revert reach it there)
    migration_type: str  # resize | migration
    # pre-migrating | migrating | post-migrating | finished | confirming | confirmed |
    # reverting | reverted | error
    status: str = Field(default="pre-migrating", index=True)
    source_compute: str = Field(index=True)
    dest_compute: str | None = Field(default=None, index=True)
    requested_host: str | None = None  # a cold migration's `host`, if an admin named one
    old_flavor_id: str
    new_flavor_id: str
    old_vcpus: int
    old_memory_mb: int
    old_disk_gb: int
    new_vcpus: int
    new_memory_mb: int
    new_disk_gb: int
    source_claim_id: str | None = None  # the server's claim on its source host
    dest_claim_id: str  # taken on the destination before anything is put there
    quota_reservation_id: str | None = None  # a resize up: the extra cores and RAM
    was_running: bool = True  # the guest runs again after the move (else it stays stopped)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    @property
    def old_resources(self) -> Resources:
        return Resources(self.old_vcpus, self.old_memory_mb, self.old_disk_gb)

    @property
    def new_resources(self) -> Resources:
        return Resources(self.new_vcpus, self.new_memory_mb, self.new_disk_gb)

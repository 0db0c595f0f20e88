"""Request bodies. Unknown attributes are refused (as Nova's JSON schemas do), types are
strict, and every error names the field."""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from api.microversion import current, refused_before, refused_from
from novaflow import keypairs, server_metadata, server_tags
from novaflow.errors import Invalid

Name = Annotated[StrictStr, Field(min_length=1, max_length=255)]


def _server_name_rules(value: str) -> str:
    if value.strip() != value:
        raise ValueError("must not have leading or trailing whitespace")
    if any(ord(ch) < 32 for ch in value):
        raise ValueError("must not contain control characters")
    return value


# A server's name, on create and on rename.
ServerName = Annotated[Name, AfterValidator(_server_name_rules)]


def _metadata_key_rules(value: dict[str, str]) -> dict[str, str]:
    # Checked here rather than on the key's type, so that the error names `metadata`, not the
    # (empty or overlong) key itself.
    longest = server_metadata.MAX_KEY_LENGTH
    for key in value:
        if not 1 <= len(key) <= longest:
            raise ValueError(f"every key must have 1 to {longest} characters (one has {len(key)})")
    return value


# A server's metadata, on create and in /servers/{id}/metadata. The item count is checked
# where the result is known (novaflow.server_metadata.check_item_count: 403, as Nova).
Metadata = Annotated[
    dict[StrictStr, Annotated[StrictStr, Field(max_length=server_metadata.MAX_VALUE_LENGTH)]],
    AfterValidator(_metadata_key_rules),
]


def _description_rules(value: str) -> str:
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError("must not contain control characters")
    return value


# A server's description (Nova 2.19): printable, up to 255 characters, "" allowed.
Description = Annotated[StrictStr, Field(max_length=255), AfterValidator(_description_rules)]


def _tag_rules(value: str) -> str:
    problem = server_tags.tag_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


Tag = Annotated[StrictStr, AfterValidator(_tag_rules)]
Tags = Annotated[list[Tag], Field(max_length=server_tags.MAX_TAGS)]


def is_uuid(text: str) -> bool:
    """Nova's 'format': 'uuid': any spelling of a uuid that Python's UUID reads."""
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def uuid_id(text: str) -> str:
    """An id in a path that must be a uuid (from 2.53, a service's or a hypervisor's): itself,
    else Nova's 400."""
    if not is_uuid(text):
        raise Invalid(f"Invalid uuid {text}")
    return text


def _uuid_like(value: str) -> str:
    if not is_uuid(value):
        raise ValueError(f"'{value}' is not a 'uuid'")
    return value


def _base64(value: str) -> str:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be base64 encoded") from None
    return value


def _device_tag_by_version(value: str | None) -> str | None:
    if value is not None and current.get() != (2, 32):
        refused_before((2, 42), "tag")
    return value


# A device tag of a network or a block device (Nova 2.32, lost from 2.33 to 2.41, back from
# 2.42). It only names the device to the guest's metadata service, which novaflow does not
# run: accepted, unused.
DeviceTag = Annotated[Tag | None, AfterValidator(_device_tag_by_version)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NetworkEntry(Strict):
    uuid: StrictStr | None = None
    port: StrictStr | None = None
    fixed_ip: StrictStr | None = None
    tag: DeviceTag = None
    # novaflow extension: give this port a floating IP from the default pool.
    floating_ip: StrictBool = False

    @field_validator("uuid")
    @classmethod
    def _uuid_from_237(cls, value: str | None) -> str | None:
        if value is not None and current.get() >= (2, 37):  # Nova's schema: 'format': 'uuid'
            _uuid_like(value)
        return value


class BlockDevice(Strict):
    """One entry of block_device_mapping_v2 (Nova's field names). Only the root disk made from
    the image is supported: openstack server create sends it beside imageRef."""

    uuid: StrictStr | None = None
    boot_index: StrictInt | StrictStr | None = None
    source_type: Literal["image", "volume", "snapshot", "blank"]
    destination_type: Literal["local", "volume"] | None = None
    delete_on_termination: StrictBool = False
    tag: DeviceTag = None


def _image_root_disk_only(mapping: list[BlockDevice], image_ref: str) -> None:
    """The one mapping this API can honour: the image (the same as imageRef) as the local root
    disk. Volumes are not supported, so anything else is refused rather than ignored."""
    image_id = image_ref.rstrip("/").rsplit("/", 1)[-1]
    root = mapping[0] if len(mapping) == 1 else None
    if (
        root is None
        or root.source_type != "image"
        or root.destination_type not in (None, "local")
        or str(root.boot_index) != "0"
        or root.uuid != image_id
    ):
        raise ValueError(
            "only the image's local root disk is supported (one entry: source_type image, "
            "destination_type local, boot_index 0, uuid the imageRef's)"
        )


class ServerCreate(Strict):
    name: ServerName
    flavorRef: StrictStr | StrictInt  # noqa: N815  (Nova's field names)
    imageRef: StrictStr  # noqa: N815
    block_device_mapping_v2: list[BlockDevice] | None = None
    # Before 2.37 optional (left out: every network the project may use, if that is one) and
    # a list; from 2.37 required, and "auto" or "none" may stand for the list.
    networks: Literal["auto", "none"] | list[NetworkEntry] | None = None
    key_name: Annotated[StrictStr, Field(min_length=1, max_length=255)] | None = None
    user_data: Annotated[StrictStr, Field(max_length=65535)] | None = None
    metadata: Metadata = Field(default_factory=dict)
    availability_zone: Annotated[StrictStr, Field(min_length=1, max_length=255)] | None = None
    min_count: Annotated[StrictInt, Field(ge=1, le=100)] = 1
    max_count: Annotated[StrictInt, Field(ge=1, le=100)] | None = None
    return_reservation_id: StrictBool = False
    adminPass: StrictStr | None = None  # noqa: N815
    security_groups: list[dict[str, StrictStr]] | None = None  # accepted, not enforced yet
    config_drive: StrictBool | None = None
    description: Description | None = None  # Nova 2.19
    tags: Tags | None = None  # Nova 2.52

    @field_validator("networks")
    @classmethod
    def _networks_by_version(
        cls, value: str | list[NetworkEntry] | None
    ) -> str | list[NetworkEntry] | None:
        if isinstance(value, str) and current.get() < (2, 37):
            raise ValueError(f"'{value}' is not of type 'array' (\"auto\" and \"none\": 2.37)")
        return value

    @field_validator("description")
    @classmethod
    def _description_from_219(cls, value: str | None) -> str | None:
        refused_before((2, 19), "description")
        return value

    @field_validator("tags")
    @classmethod
    def _tags_from_252(cls, value: list[str] | None) -> list[str] | None:
        refused_before((2, 52), "tags")
        return value

    @model_validator(mode="after")
    def _networks_required_from_237(self) -> ServerCreate:
        if self.networks is None and current.get() >= (2, 37):
            raise ValueError("'networks' is a required property")
        return self

    @field_validator("block_device_mapping_v2")
    @classmethod
    def _root_disk(
        cls, value: list[BlockDevice] | None, info: ValidationInfo
    ) -> list[BlockDevice] | None:
        image_ref = info.data.get("imageRef")
        if value is not None and image_ref is not None:  # a bad imageRef is reported as such
            _image_root_disk_only(value, image_ref)
        return value

    @field_validator("user_data")
    @classmethod
    def _user_data(cls, value: str | None) -> str | None:
        return None if value is None else _base64(value)


class SchedulerHints(Strict):
    group: StrictStr | None = None


class ServerCreateBody(Strict):
    server: ServerCreate
    scheduler_hints: SchedulerHints | None = Field(default=None, alias="os:scheduler_hints")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class QuotaSetUpdate(Strict):
    instances: StrictInt | None = None
    cores: StrictInt | None = None
    ram: StrictInt | None = None
    floating_ips: StrictInt | None = None  # not from 2.36 (Nova's network proxies are gone)
    ports: StrictInt | None = None
    server_groups: StrictInt | None = None
    server_group_members: StrictInt | None = None
    force: StrictBool | None = None

    @field_validator("floating_ips")
    @classmethod
    def _floating_ips_until_236(cls, value: int | None) -> int | None:
        refused_from((2, 36), "floating_ips")
        return value


class QuotaSetBody(Strict):
    quota_set: QuotaSetUpdate


GroupPolicy = Literal["affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity"]


def _soft_from_215(policy: str) -> str:
    if policy.startswith("soft-") and current.get() < (2, 15):
        raise ValueError(f"'{policy}' is not one of ['anti-affinity', 'affinity'] before 2.15")
    return policy


class ServerGroupCreate(Strict):
    name: Name
    policy: Annotated[GroupPolicy, AfterValidator(_soft_from_215)]  # soft-*: from 2.15


class ServerGroupBody(Strict):
    """Nova's body names the policy in a one-item `policies` list (before 2.64), read here as
    `policy` (2.64's name for it), which novaflow also takes."""

    server_group: ServerGroupCreate

    @model_validator(mode="before")
    @classmethod
    def _policies_as_policy(cls, body: object) -> object:
        if not isinstance(body, dict):
            return body
        group = body.get("server_group")
        if not isinstance(group, dict) or "policy" in group:
            return body
        policies = group.get("policies")
        if isinstance(policies, list) and len(policies) == 1:
            rest = {k: v for k, v in group.items() if k != "policies"}
            return {**body, "server_group": {**rest, "policy": policies[0]}}
        return body


class FixedIPEntry(Strict):
    ip_address: StrictStr | None = None


class PortCreate(Strict):
    network_id: StrictStr
    fixed_ips: list[FixedIPEntry] = Field(default_factory=list, max_length=1)
    name: StrictStr | None = None


class PortBody(Strict):
    port: PortCreate


class KeypairCreate(Strict):
    name: Name
    # Left out (or null): a keypair is generated and its private key returned once.
    public_key: Annotated[StrictStr, Field(max_length=65535)] | None = None
    type: Literal["ssh", "x509"] = "ssh"  # Nova 2.2
    # Nova 2.10: an admin creates (imports) a keypair for another user.
    user_id: Annotated[StrictStr, Field(min_length=1, max_length=255)] | None = None

    @field_validator("type")
    @classmethod
    def _type_from_22(cls, value: str) -> str:
        refused_before((2, 2), "type")
        return value

    @field_validator("user_id")
    @classmethod
    def _user_id_from_210(cls, value: str | None) -> str | None:
        refused_before((2, 10), "user_id")
        return value

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        problem = keypairs.name_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value


class KeypairBody(Strict):
    keypair: KeypairCreate


class ServerUpdate(Strict):
    # Nova's 2.1 rename. accessIPv4/accessIPv6 are refused as unknown: novaflow keeps none.
    name: ServerName | None = None
    description: Description | None = None  # Nova 2.19 (null: none)

    @field_validator("description")
    @classmethod
    def _description_from_219(cls, value: str | None) -> str | None:
        refused_before((2, 19), "description")
        return value

    @field_validator("name")
    @classmethod
    def _not_null(cls, value: str | None) -> str:
        if value is None:  # only an explicit null reaches here: leaving it out is fine
            raise ValueError("must be a string")
        return value


class ServerUpdateBody(Strict):
    server: ServerUpdate


class MetadataBody(Strict):
    metadata: Metadata


class MetaItemBody(Strict):
    meta: Metadata

    @field_validator("meta")
    @classmethod
    def _one_item(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > 1:
            raise ValueError("Request body contains too many items")
        if not value:
            raise ValueError("must hold exactly one item")
        return value


# --- server actions (POST /servers/{id}/action): one model per action's arguments


def _console_length(value: object) -> object:
    # Nova takes an integer or a string of digits.
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,18}", value):
        value = int(value)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("must be an integer (-1 or null for the whole log)")
    if value < -1:
        raise ValueError("must be -1 or more (-1 or null for the whole log)")
    return value


class ConsoleOutputAction(Strict):
    """os-getConsoleOutput: the last `length` lines of the console log; -1 or null: all."""

    length: Annotated[int | None, BeforeValidator(_console_length)] = None


class NoArguments(Strict):
    """os-stop, os-start, pause, unpause, suspend, resume, unlock: `null` or `{}`."""


class RebootAction(Strict):
    type: Literal["SOFT", "Soft", "soft", "HARD", "Hard", "hard"]  # as Nova's schema


class LockAction(Strict):
    """lock: `null`, or a reason (Nova 2.73)."""

    locked_reason: Annotated[StrictStr, Field(max_length=255)] | None = None


class ResetStateAction(Strict):
    state: Literal["active", "error"]


class ResizeAction(Strict):
    """resize: the new flavor (Nova also takes OS-DCF:diskConfig, which changes nothing
    here: every disk is grown to its flavor's size)."""

    flavorRef: Annotated[StrictStr, Field(min_length=1, max_length=255)] | StrictInt  # noqa: N815
    disk_config: Literal["AUTO", "MANUAL"] | None = Field(default=None, alias="OS-DCF:diskConfig")


class MigrateAction(Strict):
    """migrate (admin): `null`, or the host to move to (Nova 2.56), which must still pass
    the scheduler's filters."""

    host: Annotated[StrictStr, Field(min_length=1, max_length=255)] | None = None

    @field_validator("host")
    @classmethod
    def _host_from_256(cls, value: str | None) -> str | None:
        refused_before((2, 56), "host")
        return value


class RebuildAction(Strict):
    """rebuild: a new disk from `imageRef` (the same image or another), on the same host with
    the same ports; `name` and `metadata` replace the server's. `adminPass` is returned, never
    stored (the guest is not told of it: no agent here)."""

    imageRef: Annotated[StrictStr, Field(min_length=1, max_length=255)]  # noqa: N815
    name: Annotated[StrictStr, Field(min_length=1, max_length=255)] | None = None
    metadata: Metadata | None = None
    adminPass: StrictStr | None = None  # noqa: N815
    preserve_ephemeral: StrictBool = False
    disk_config: Literal["AUTO", "MANUAL"] | None = Field(default=None, alias="OS-DCF:diskConfig")
    accessIPv4: StrictStr | None = None  # noqa: N815
    accessIPv6: StrictStr | None = None  # noqa: N815
    description: Description | None = None  # Nova 2.19 (null: none)
    key_name: Annotated[StrictStr, Field(min_length=1, max_length=255)] | None = None  # 2.54
    user_data: Annotated[StrictStr, Field(max_length=65535)] | None = None  # Nova 2.57

    @field_validator("description")
    @classmethod
    def _description_from_219(cls, value: str | None) -> str | None:
        refused_before((2, 19), "description")
        return value

    @field_validator("key_name")
    @classmethod
    def _key_name_from_254(cls, value: str | None) -> str | None:
        refused_before((2, 54), "key_name")
        return value

    @field_validator("user_data")
    @classmethod
    def _user_data_from_257(cls, value: str | None) -> str | None:
        refused_before((2, 57), "user_data")
        return None if value is None else _base64(value)


class ForceCompleteBody(Strict):
    """POST /servers/{id}/migrations/{id}/action (Nova 2.22): `{"force_complete": null}`."""

    force_complete: None


class TagsBody(Strict):
    """PUT /servers/{id}/tags: every tag the server is to have."""

    tags: Tags

"""Unit tests for novaflow.scheduler: filters, weighers and FilterScheduler.select."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from novaflow.resources import Resources
from novaflow.scheduler import (
    DEFAULT_FILTERS,
    DEFAULT_WEIGHERS,
    FILTERS,
    WEIGHERS,
    FilterScheduler,
    HostState,
    NoValidHost,
    RequestSpec,
)
from novaflow.scheduler.filters import (
    AvailabilityZoneFilter,
    ComputeFilter,
    CoreFilter,
    DiskFilter,
    IgnoreHostsFilter,
    ImagePropertiesFilter,
    RamFilter,
    ServerGroupAffinityFilter,
    ServerGroupAntiAffinityFilter,
)
from novaflow.scheduler.weighers import (
    CPUWeigher,
    RAMWeigher,
    ServerGroupSoftAffinityWeigher,
    ServerGroupSoftAntiAffinityWeigher,
    normalize,
)


def host(name: str, **kw: Any) -> HostState:
    """A roomy, healthy host unless overridden."""
    base: dict[str, Any] = {"vcpus": 32, "memory_mb": 65_536, "disk_gb": 1_000}
    base.update(kw)
    return HostState(name=name, **base)


def spec(vcpus: int = 1, memory_mb: int = 512, disk_gb: int = 1, **kw: Any) -> RequestSpec:
    base: dict[str, Any] = {"server_id": "srv-1", "resources": Resources(vcpus, memory_mb, disk_gb)}
    base.update(kw)
    return RequestSpec(**base)


def names(hosts: list[HostState]) -> list[str]:
    return [h.name for h in hosts]


# --------------------------------------------------------------------------- data classes


def test_free_resources_apply_allocation_ratios() -> None:
    h = host(
        "h",
        vcpus=8,
        vcpus_used=15,
        cpu_allocation_ratio=2.0,
        memory_mb=1_000,
        memory_mb_used=1_200,
        ram_allocation_ratio=1.5,
        disk_gb=100,
        disk_gb_used=150,
        disk_allocation_ratio=2.0,
    )
    assert h.free_vcpus == 1
    assert h.free_memory_mb == 300
    assert h.free_disk_gb == 50


def test_over_allocated_host_has_negative_free_resources() -> None:
    h = host("h", vcpus=4, vcpus_used=20, cpu_allocation_ratio=4.0)
    assert h.free_vcpus == -4


def test_request_spec_normalizes_host_sets_and_rejects_unknown_policy() -> None:
    s = RequestSpec("s", Resources(1, 1, 1), group_hosts={"a"}, ignore_hosts=["b", "b"])  # type: ignore[arg-type]
    assert s.group_hosts == frozenset({"a"})
    assert s.ignore_hosts == frozenset({"b"})
    with pytest.raises(ValueError, match="affinty"):
        RequestSpec("s", Resources(1, 1, 1), group_policy="affinty")


# --------------------------------------------------------------------------- filters


def test_compute_filter_requires_enabled_and_up() -> None:
    hosts = [
        host("ok"),
        host("disabled", enabled=False),
        host("down", up=False),
        host("both", enabled=False, up=False),
    ]
    f = ComputeFilter()
    assert names(f.filter_all(hosts, spec())) == ["ok"]
    assert f.host_passes(hosts[0], spec())
    assert not f.host_passes(hosts[1], spec())
    assert not f.host_passes(hosts[2], spec())


def test_ram_filter_counts_overcommit_and_exact_fit_passes() -> None:
    # 4096 MiB * 1.5 = 6144 allocatable, 4096 used -> 2048 free.
    h = host("h", memory_mb=4_096, memory_mb_used=4_096, ram_allocation_ratio=1.5)
    f = RamFilter()
    assert f.host_passes(h, spec(memory_mb=2_048))
    assert not f.host_passes(h, spec(memory_mb=2_049))
    no_overcommit = host("n", memory_mb=4_096, memory_mb_used=4_096, ram_allocation_ratio=1.0)
    assert names(f.filter_all([h, no_overcommit], spec(memory_mb=1))) == ["h"]


def test_core_filter_ratio_two_fits_one_more_vcpu_but_not_two() -> None:
    h = host("h", vcpus=8, vcpus_used=15, cpu_allocation_ratio=2.0)
    f = CoreFilter()
    assert f.host_passes(h, spec(vcpus=1))
    assert not f.host_passes(h, spec(vcpus=2))
    assert names(f.filter_all([h], spec(vcpus=1))) == ["h"]
    assert f.filter_all([h], spec(vcpus=2)) == []


def test_disk_filter_counts_disk_allocation_ratio() -> None:
    thin = host("thin", disk_gb=100, disk_gb_used=150, disk_allocation_ratio=2.0)  # 50 free
    thick = host("thick", disk_gb=100, disk_gb_used=80, disk_allocation_ratio=1.0)  # 20 free
    f = DiskFilter()
    assert names(f.filter_all([thin, thick], spec(disk_gb=20))) == ["thin", "thick"]
    assert names(f.filter_all([thin, thick], spec(disk_gb=21))) == ["thin"]
    assert names(f.filter_all([thin, thick], spec(disk_gb=51))) == []


def test_disk_filter_zero_disk_request_still_rejects_over_allocated_host() -> None:
    over = host("over", disk_gb=10, disk_gb_used=11)
    assert not DiskFilter().host_passes(over, spec(disk_gb=0))
    assert DiskFilter().host_passes(host("ok"), spec(disk_gb=0))


def test_availability_zone_filter() -> None:
    hosts = [host("a", availability_zone="az1"), host("b", availability_zone="az2"), host("c")]
    f = AvailabilityZoneFilter()
    assert not f.applies(spec())
    assert names(f.filter_all(hosts, spec())) == ["a", "b", "c"]
    assert all(f.host_passes(h, spec()) for h in hosts)
    assert f.applies(spec(availability_zone="az2"))
    assert names(f.filter_all(hosts, spec(availability_zone="az2"))) == ["b"]
    assert names(f.filter_all(hosts, spec(availability_zone="nova"))) == ["c"]
    assert f.filter_all(hosts, spec(availability_zone="az9")) == []


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        ({}, ["x86", "arm", "amd64-host", "ARM64-host"]),
        ({"hw_architecture": "aarch64"}, ["arm", "ARM64-host"]),
        ({"hw_architecture": "arm64"}, ["arm", "ARM64-host"]),
        ({"architecture": "x86_64"}, ["x86", "amd64-host"]),
        ({"architecture": "amd64"}, ["x86", "amd64-host"]),
        ({"architecture": "AMD64"}, ["x86", "amd64-host"]),
        # hw_architecture wins over the legacy key
        ({"hw_architecture": "aarch64", "architecture": "x86_64"}, ["arm", "ARM64-host"]),
        ({"hw_architecture": "ppc64le"}, []),
        ({"os_distro": "ubuntu"}, ["x86", "arm", "amd64-host", "ARM64-host"]),
    ],
)
def test_image_properties_filter_architecture_and_aliases(
    props: dict[str, str], expected: list[str]
) -> None:
    hosts = [
        host("x86", arch="x86_64"),
        host("arm", arch="aarch64"),
        host("amd64-host", arch="amd64"),
        host("ARM64-host", arch="ARM64"),
    ]
    f = ImagePropertiesFilter()
    s = spec(image_properties=props)
    assert names(f.filter_all(hosts, s)) == expected
    assert [h.name for h in hosts if f.host_passes(h, s)] == expected
    assert f.applies(s) == (expected != names(hosts))


def test_affinity_filter() -> None:
    hosts = [host("a"), host("b"), host("c")]
    f = ServerGroupAffinityFilter()
    first_member = spec(group_policy="affinity")  # empty group: anywhere
    assert not f.applies(first_member)
    assert names(f.filter_all(hosts, first_member)) == ["a", "b", "c"]
    later = spec(group_policy="affinity", group_hosts=frozenset({"b"}))
    assert names(f.filter_all(hosts, later)) == ["b"]
    assert not f.host_passes(hosts[0], later)
    # other policies are not this filter's business
    anti = spec(group_policy="anti-affinity", group_hosts=frozenset({"b"}))
    assert names(f.filter_all(hosts, anti)) == ["a", "b", "c"]


def test_anti_affinity_filter() -> None:
    hosts = [host("a"), host("b"), host("c")]
    f = ServerGroupAntiAffinityFilter()
    s = spec(group_policy="anti-affinity", group_hosts=frozenset({"a", "c"}))
    assert names(f.filter_all(hosts, s)) == ["b"]
    assert not f.host_passes(hosts[0], s)
    assert f.host_passes(hosts[1], s)
    aff = spec(group_policy="affinity", group_hosts=frozenset({"a"}))
    assert names(f.filter_all(hosts, aff)) == ["a", "b", "c"]
    assert not f.applies(spec(group_policy="soft-anti-affinity", group_hosts=frozenset({"a"})))


def test_ignore_hosts_filter() -> None:
    hosts = [host("a"), host("b"), host("c")]
    f = IgnoreHostsFilter()
    assert not f.applies(spec())
    s = spec(ignore_hosts=frozenset({"a", "zzz"}))
    assert names(f.filter_all(hosts, s)) == ["b", "c"]
    assert not f.host_passes(hosts[0], s)


MIXED_HOSTS = [
    host("h0"),
    host("h1", enabled=False),
    host("h2", up=False),
    host("h3", availability_zone="az1", arch="aarch64"),
    host("h4", arch="amd64", memory_mb=1_024, memory_mb_used=900),
    host("h5", vcpus=2, vcpus_used=8, cpu_allocation_ratio=4.0),
    host("h6", disk_gb=10, disk_gb_used=10),
    host("h7", memory_mb=1_000, memory_mb_used=1_400, ram_allocation_ratio=1.5),
]
MIXED_SPECS = [
    spec(),
    spec(vcpus=4, memory_mb=4_096, disk_gb=40),
    spec(availability_zone="az1"),
    spec(image_properties={"architecture": "x86_64"}),
    spec(image_properties={"hw_architecture": "arm64"}),
    spec(group_policy="affinity", group_hosts=frozenset({"h0", "h3"})),
    spec(group_policy="anti-affinity", group_hosts=frozenset({"h0", "h3"})),
    spec(ignore_hosts=frozenset({"h4", "h5"})),
]


@pytest.mark.parametrize("filter_name", sorted(FILTERS))
def test_filter_all_agrees_with_host_passes(filter_name: str) -> None:
    f = FILTERS[filter_name]()
    for s in MIXED_SPECS:
        expected = [h for h in MIXED_HOSTS if f.host_passes(h, s)]
        assert f.filter_all(MIXED_HOSTS, s) == expected, (filter_name, s)
        if not f.applies(s):  # a skipped filter must not have rejected anything
            assert expected == MIXED_HOSTS, (filter_name, s)


def test_filter_registry_and_default_order() -> None:
    assert set(DEFAULT_FILTERS) == set(FILTERS)
    assert len(DEFAULT_FILTERS) == len(FILTERS) == 9
    assert DEFAULT_FILTERS[0] == "ComputeFilter"
    for name, cls in FILTERS.items():
        assert cls.name == name
        assert cls.__doc__ and cls.__doc__.strip()


# --------------------------------------------------------------------------- weighers


def test_normalize_min_max_and_all_equal() -> None:
    assert normalize([10.0, 20.0, 15.0]) == [0.0, 1.0, 0.5]
    assert normalize([7.0, 7.0]) == [0.0, 0.0]
    assert normalize([]) == []


def test_raw_weigher_values() -> None:
    h = host("h", vcpus=8, vcpus_used=4, cpu_allocation_ratio=2.0, memory_mb=100, memory_mb_used=30)
    assert RAMWeigher().weigh(h, spec()) == 70
    assert CPUWeigher().weigh(h, spec()) == 12
    assert RAMWeigher().weigh_all([h, h], spec()) == [70, 70]
    assert CPUWeigher(-2.0).multiplier == -2.0
    with pytest.raises(ValueError, match="finite"):
        RAMWeigher(float("nan"))


def test_soft_group_weigher_values() -> None:
    hosts = [host("in"), host("out")]
    soft_aff = spec(group_policy="soft-affinity", group_hosts=frozenset({"in"}))
    soft_anti = spec(group_policy="soft-anti-affinity", group_hosts=frozenset({"in"}))
    aff_w, anti_w = ServerGroupSoftAffinityWeigher(), ServerGroupSoftAntiAffinityWeigher()
    assert aff_w.weigh_all(hosts, soft_aff) == [1.0, 0.0]
    assert anti_w.weigh_all(hosts, soft_anti) == [-1.0, 0.0]
    assert [aff_w.weigh(h, soft_aff) for h in hosts] == [1.0, 0.0]
    assert [anti_w.weigh(h, soft_anti) for h in hosts] == [-1.0, 0.0]
    # each only reacts to its own policy
    assert aff_w.weigh_all(hosts, soft_anti) == [0.0, 0.0]
    assert anti_w.weigh_all(hosts, soft_aff) == [0.0, 0.0]
    assert not aff_w.applies(soft_anti)
    assert not anti_w.applies(spec(group_policy="soft-anti-affinity"))


def test_weigher_registry_and_defaults() -> None:
    assert set(DEFAULT_WEIGHERS) == set(WEIGHERS)
    assert DEFAULT_WEIGHERS["RAMWeigher"] == 1.0
    assert DEFAULT_WEIGHERS["CPUWeigher"] == 1.0
    for name, cls in WEIGHERS.items():
        assert cls.name == name


FULLNESS_HOSTS = [
    host("empty", memory_mb=65_536, memory_mb_used=0, vcpus=32, vcpus_used=0),
    host("half", memory_mb=65_536, memory_mb_used=32_768, vcpus=32, vcpus_used=64),
    host("full", memory_mb=65_536, memory_mb_used=60_000, vcpus=32, vcpus_used=120),
]


def test_positive_ram_multiplier_spreads_onto_emptiest_host() -> None:
    sched = FilterScheduler(weighers={"RAMWeigher": 1.0})
    assert names(sched.select(FULLNESS_HOSTS, spec(memory_mb=1_024))) == ["empty", "half", "full"]


def test_negative_ram_multiplier_packs_onto_fullest_host() -> None:
    sched = FilterScheduler(weighers={"RAMWeigher": -1.0})
    assert names(sched.select(FULLNESS_HOSTS, spec(memory_mb=1_024))) == ["full", "half", "empty"]


def test_cpu_weigher_spread_vs_pack() -> None:
    hosts = [host("idle", vcpus=16, vcpus_used=0), host("busy", vcpus=16, vcpus_used=60)]
    assert names(FilterScheduler(weighers={"CPUWeigher": 1.0}).select(hosts, spec()))[0] == "idle"
    assert names(FilterScheduler(weighers={"CPUWeigher": -1.0}).select(hosts, spec()))[0] == "busy"


def test_weighers_are_normalized_before_summing() -> None:
    # "ram" has much more free RAM in absolute MiB, "cpu" much more free vCPU. Without
    # normalization RAM's large numbers would always win; normalized, a 3x CPU multiplier wins.
    hosts = [
        host("ram", memory_mb=65_536, memory_mb_used=0, vcpus=8, vcpus_used=30),
        host("cpu", memory_mb=65_536, memory_mb_used=30_000, vcpus=8, vcpus_used=0),
    ]
    even = FilterScheduler(weighers={"RAMWeigher": 1.0, "CPUWeigher": 1.0})
    cpu_heavy = FilterScheduler(weighers={"RAMWeigher": 1.0, "CPUWeigher": 3.0})
    ram_heavy = FilterScheduler(weighers={"RAMWeigher": 3.0, "CPUWeigher": 1.0})
    assert cpu_heavy.select(hosts, spec())[0].name == "cpu"
    assert ram_heavy.select(hosts, spec())[0].name == "ram"
    # equal multipliers: both normalize to 1 vs 0 and tie -> name order
    assert names(even.select(hosts, spec())) == ["cpu", "ram"]
    totals = cpu_heavy.weigh_hosts(hosts, spec())
    assert totals == [1.0, 3.0]


def test_soft_affinity_prefers_group_host_and_soft_anti_avoids_it() -> None:
    hosts = [host("a"), host("b"), host("c")]  # identical capacity
    sched = FilterScheduler()
    soft_aff = spec(group_policy="soft-affinity", group_hosts=frozenset({"b"}))
    assert names(sched.select(hosts, soft_aff)) == ["b", "a", "c"]
    soft_anti = spec(group_policy="soft-anti-affinity", group_hosts=frozenset({"a", "b"}))
    assert names(sched.select(hosts, soft_anti)) == ["c", "a", "b"]


def test_soft_anti_affinity_still_places_when_every_host_holds_a_member() -> None:
    hosts = [host("a"), host("b")]
    s = spec(group_policy="soft-anti-affinity", group_hosts=frozenset({"a", "b"}))
    assert names(FilterScheduler().select(hosts, s)) == ["a", "b"]


# --------------------------------------------------------------------------- select


def test_select_returns_chosen_then_alternates_and_respects_count() -> None:
    hosts = [host(f"h{i}", memory_mb_used=i * 1_000) for i in range(6)]  # h0 emptiest
    sched = FilterScheduler()
    assert names(sched.select(hosts, spec())) == ["h0", "h1", "h2"]
    assert names(sched.select(hosts, spec(), count=1)) == ["h0"]
    assert names(sched.select(hosts, spec(), count=5)) == ["h0", "h1", "h2", "h3", "h4"]
    assert names(sched.select(hosts, spec(), count=50)) == [f"h{i}" for i in range(6)]
    with pytest.raises(ValueError, match="count"):
        sched.select(hosts, spec(), count=0)


def test_select_applies_filters_before_weighing() -> None:
    hosts = [
        host("disabled-but-empty", enabled=False),
        host("wrong-az", availability_zone="az2"),
        host("small", memory_mb=2_048, memory_mb_used=1_024),
        host("fits-1", memory_mb_used=40_000),
        host("fits-2", memory_mb_used=10_000),
    ]
    s = spec(memory_mb=2_048, availability_zone="nova")
    assert names(FilterScheduler().select(hosts, s)) == ["fits-2", "fits-1"]


def test_select_breaks_ties_by_host_name_regardless_of_input_order() -> None:
    hosts = [host(n) for n in ("delta", "alpha", "charlie", "bravo")]
    sched = FilterScheduler()
    assert names(sched.select(hosts, spec())) == ["alpha", "bravo", "charlie"]
    assert names(sched.select(list(reversed(hosts)), spec())) == ["alpha", "bravo", "charlie"]
    # a strictly better host first, then the tied ones by name
    hosts.append(host("zulu", vcpus=64, memory_mb=131_072))
    assert names(sched.select(hosts, spec())) == ["zulu", "alpha", "bravo"]


def test_select_with_many_ties_at_the_cut_is_deterministic() -> None:
    best = [host(f"best-{i}", memory_mb=131_072) for i in (2, 1)]
    tied = [host(f"tied-{i:03d}") for i in range(200, 0, -1)]
    worse = [host(f"worse-{i}", memory_mb_used=50_000) for i in range(5)]
    sched = FilterScheduler()
    picked = names(sched.select(worse + tied + best, spec(), count=4))
    assert picked == ["best-1", "best-2", "tied-001", "tied-002"]


def test_select_with_no_weighers_orders_by_name() -> None:
    hosts = [host("b", memory_mb_used=60_000), host("a"), host("c")]
    assert names(FilterScheduler(weighers={}).select(hosts, spec())) == ["a", "b", "c"]


def test_select_accepts_any_iterable_and_does_not_mutate_hosts() -> None:
    hosts = [host("a", memory_mb_used=100), host("b")]
    snapshot = [HostState(**{f: getattr(h, f) for f in h.__slots__}) for h in hosts]
    assert names(FilterScheduler().select(iter(hosts), spec())) == ["b", "a"]
    assert hosts == snapshot


def test_no_valid_host_names_the_filter_that_emptied_the_list() -> None:
    hosts = [host("a", memory_mb=1_024), host("b", memory_mb=2_048, enabled=False)]
    with pytest.raises(NoValidHost) as exc:
        FilterScheduler().select(hosts, spec(memory_mb=4_096))
    err = exc.value
    assert err.filter_name == "RamFilter"
    assert str(err).startswith("No valid host was found. There are not enough hosts available.")
    assert "Filter RamFilter returned 0 hosts" in str(err)
    assert err.filter_results == (("ComputeFilter", 2, 1), ("RamFilter", 1, 0))


@pytest.mark.parametrize(
    ("s", "expected_filter"),
    [
        (spec(availability_zone="az9"), "AvailabilityZoneFilter"),
        (spec(image_properties={"hw_architecture": "s390x"}), "ImagePropertiesFilter"),
        (spec(ignore_hosts=frozenset({"a", "b"})), "IgnoreHostsFilter"),
        (
            spec(group_policy="affinity", group_hosts=frozenset({"gone"})),
            "ServerGroupAffinityFilter",
        ),
        (
            spec(group_policy="anti-affinity", group_hosts=frozenset({"a", "b"})),
            "ServerGroupAntiAffinityFilter",
        ),
        (spec(vcpus=1_000), "CoreFilter"),
        (spec(disk_gb=100_000), "DiskFilter"),
    ],
)
def test_no_valid_host_reports_each_filter(s: RequestSpec, expected_filter: str) -> None:
    with pytest.raises(NoValidHost, match=f"Filter {expected_filter} returned 0 hosts") as exc:
        FilterScheduler().select([host("a"), host("b")], s)
    assert exc.value.filter_name == expected_filter


def test_no_valid_host_when_all_down_and_when_no_hosts() -> None:
    with pytest.raises(NoValidHost, match="Filter ComputeFilter returned 0 hosts"):
        FilterScheduler().select([host("a", up=False)], spec())
    with pytest.raises(NoValidHost, match="No valid host was found") as exc:
        FilterScheduler().select([], spec())
    assert exc.value.filter_name is None


def test_no_valid_host_survives_pickling() -> None:
    with pytest.raises(NoValidHost) as exc:
        FilterScheduler().select([host("a", up=False)], spec())
    clone = pickle.loads(pickle.dumps(exc.value))
    assert str(clone) == str(exc.value)
    assert clone.filter_name == "ComputeFilter"
    assert clone.filter_results == exc.value.filter_results


def test_only_configured_filters_run() -> None:
    hosts = [host("down", up=False), host("other-az", availability_zone="az2")]
    sched = FilterScheduler(["RamFilter"], {})
    assert names(sched.select(hosts, spec(availability_zone="nova"))) == ["down", "other-az"]


# --------------------------------------------------------------------------- configuration


def test_from_config_parses_filters_and_weighers() -> None:
    sched = FilterScheduler.from_config(
        " RamFilter, CoreFilter ,", "RAMWeigher:1.0, CPUWeigher:-1.5,ServerGroupSoftAffinityWeigher"
    )
    assert sched.filter_names == ("RamFilter", "CoreFilter")
    assert sched.weigher_multipliers == {
        "RAMWeigher": 1.0,
        "CPUWeigher": -1.5,
        "ServerGroupSoftAffinityWeigher": 1.0,
    }


@pytest.mark.parametrize("value", [None, "", "   "])
def test_from_config_empty_means_defaults(value: str | None) -> None:
    sched = FilterScheduler.from_config(value, value)
    assert sched.filter_names == DEFAULT_FILTERS
    assert sched.weigher_multipliers == DEFAULT_WEIGHERS


def test_from_config_pack_configuration_changes_the_winner() -> None:
    pack = FilterScheduler.from_config(None, "RAMWeigher:-1.0,CPUWeigher:-1.0")
    assert pack.select(FULLNESS_HOSTS, spec(memory_mb=1_024))[0].name == "full"


def test_unknown_filter_name_raises_value_error_naming_it() -> None:
    with pytest.raises(ValueError, match="NoSuchFilter"):
        FilterScheduler(["RamFilter", "NoSuchFilter"])
    with pytest.raises(ValueError, match="RamFliter"):
        FilterScheduler.from_config("RamFliter", None)


def test_unknown_weigher_name_raises_value_error_naming_it() -> None:
    with pytest.raises(ValueError, match="IOWeigher"):
        FilterScheduler(weighers={"IOWeigher": 1.0})
    with pytest.raises(ValueError, match="IOWeigher"):
        FilterScheduler.from_config(None, "RAMWeigher:1.0,IOWeigher:2")


@pytest.mark.parametrize(
    ("filters_csv", "weighers_csv", "message"),
    [
        (None, "RAMWeigher:lots", "RAMWeigher.*'lots'"),
        (None, "RAMWeigher:1,RAMWeigher:2", "more than once"),
        (None, ":1.0", "no name"),
        (None, "RAMWeigher:inf", "finite"),
        ("RamFilter,RamFilter", None, "more than once"),
    ],
)
def test_from_config_rejects_malformed_entries(
    filters_csv: str | None, weighers_csv: str | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        FilterScheduler.from_config(filters_csv, weighers_csv)


def test_filter_names_must_not_be_a_bare_string() -> None:
    with pytest.raises(TypeError):
        FilterScheduler("RamFilter")

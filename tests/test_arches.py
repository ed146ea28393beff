import pytest

from rocstack.arches import (
    all_arches, arch_for_mach, arches_slug, get_arch, parse_arch_list, parse_target_id,
)
from rocstack.errors import ArchError

REQUIRED = ["gfx908", "gfx90a", "gfx942", "gfx950", "gfx1030", "gfx1100", "gfx1101", "gfx1200", "gfx1201"]


def test_registry_has_the_required_arches_with_complete_rows():
    arches = all_arches()
    for name in REQUIRED:
        a = arches[name]
        assert a.family and a.products and a.min_rocm
        assert a.wavefront_size in (32, 64)
        assert a.lds_bytes_per_workgroup >= 65536


@pytest.mark.parametrize("name,mach", [("gfx90a", 0x3F), ("gfx942", 0x4C), ("gfx950", 0x4F), ("gfx1100", 0x41), ("gfx1201", 0x4E)])
def test_mach_values_round_trip(name, mach):
    assert get_arch(name).mach == mach
    assert arch_for_mach(mach) == name


def test_retired_and_generic_mach_values_are_named():
    assert arch_for_mach(0x40) == "gfx940"
    assert arch_for_mach(0x5F) == "gfx9-4-generic"
    assert arch_for_mach(0xEE) is None


def test_fp8_flavours_follow_the_arch():
    assert get_arch("gfx942").fp8_dtypes == ("float8_e4m3fnuz", "float8_e5m2fnuz")
    assert get_arch("gfx950").fp8_dtypes == ("float8_e4m3fn", "float8_e5m2")
    assert get_arch("gfx1201").fp8_dtypes == ("float8_e4m3fn", "float8_e5m2")
    assert get_arch("gfx90a").fp8_dtypes is None


def test_lds_limits():
    assert get_arch("gfx950").lds_bytes_per_workgroup == 160 * 1024
    assert get_arch("gfx942").lds_bytes_per_workgroup == 64 * 1024


@pytest.mark.parametrize("arch,vgprs,waves", [
    ("gfx942", 64, 8), ("gfx942", 128, 4), ("gfx942", 256, 2), ("gfx942", 512, 1), ("gfx942", 129, 3),
    ("gfx908", 128, 2), ("gfx908", 24, 10), ("gfx1100", 96, 16), ("gfx1100", 192, 8),
])
def test_occupancy_from_vgprs(arch, vgprs, waves):
    assert get_arch(arch).occupancy(vgprs) == waves


def test_target_id_parsing_sorts_features():
    t = parse_target_id("gfx942:xnack-:sramecc+")
    assert str(t) == "gfx942:sramecc+:xnack-"
    assert t.feature("xnack") == "-" and t.feature("sramecc") == "+"
    assert parse_target_id("gfx90a").feature("xnack") == "any"


@pytest.mark.parametrize("text,fragment", [
    ("gfx942:xnack", "must look like xnack+"),
    ("gfx1100:xnack+", "has no 'xnack' feature"),
    ("gfx942:xnack+:xnack-", "twice"),
    ("", "empty arch"),
])
def test_malformed_target_ids(text, fragment):
    with pytest.raises(ArchError, match=fragment):
        parse_target_id(text)


def test_feature_any_runs_on_both_modes():
    built_any = parse_target_id("gfx90a")
    assert built_any.runs_on(parse_target_id("gfx90a:xnack+"))
    assert built_any.runs_on(parse_target_id("gfx90a:xnack-"))


def test_explicit_feature_runs_only_on_matching_device():
    built = parse_target_id("gfx90a:xnack+")
    assert built.runs_on(parse_target_id("gfx90a:xnack+"))
    assert not built.runs_on(parse_target_id("gfx90a:xnack-"))
    # an unspecified device mode is the arch's default (MI-series ship xnack off)
    assert not built.runs_on(parse_target_id("gfx90a"))
    assert parse_target_id("gfx942:sramecc+:xnack-").runs_on(parse_target_id("gfx942"))


def test_other_processor_never_runs():
    assert not parse_target_id("gfx90a").runs_on(parse_target_id("gfx942"))


def test_unknown_arch_suggests_the_closest_and_lists_known():
    with pytest.raises(ArchError) as info:
        get_arch("gfx9422")
    text = info.value.one_line()
    assert "did you mean gfx942" in text and "gfx1201" in text and "\n" not in text


def test_product_name_maps_to_its_arch():
    with pytest.raises(ArchError, match="MI300X is gfx942.*--arch gfx942"):
        get_arch("mi300x")
    with pytest.raises(ArchError, match="MI355X is gfx950"):
        get_arch("MI355X")


def test_arch_list_is_a_comma_list_without_duplicates():
    targets = parse_arch_list("gfx90a, gfx942,gfx90a")
    assert [str(t) for t in targets] == ["gfx90a", "gfx942"]
    assert arches_slug(targets) == "gfx90a_gfx942"
    assert arches_slug([parse_target_id("gfx942:sramecc+:xnack-")]) == "gfx942-sramecconn-xnackoff".replace("sramecconn", "srameccon")
    with pytest.raises(ArchError, match="no arch given"):
        parse_arch_list(" , ")

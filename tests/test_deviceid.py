"""Tests of uplink62676.deviceid: the 20-digit Annex A device ID.

Spec: tokens.md section 5 (TOK-27 .. TOK-33, TOK-R6, TOK-R7), OQ-31.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from uplink62676 import DeviceId, InvalidDeviceIdError
from uplink62676.deviceid import agency_info, device_type_info, network_info

EXAMPLE_1 = "32010001071321008015"
EXAMPLE_2 = "32010001072000000002"
AGENCY_07 = {"Agency Related to Traffic Management", "Agency Relates to Traffic Management"}


def test_tokr7_example_1_ip_camera() -> None:
    """TOK-R7, TOK-27, TOK-29 .. TOK-33: first worked example decomposed by position."""
    d = DeviceId.parse(EXAMPLE_1)
    assert (d.province, d.city, d.district, d.unit) == ("32", "01", "00", "01")
    assert d.zone == "32010001" and d.division == "320100"
    assert d.agency == "07" and d.agency_info.name in AGENCY_07
    assert d.device_type == "132" and d.device_type_info.name == "IPC"
    assert d.serial == "1008015" and d.network_id == "1" and d.sequence == "008015"
    assert d.network_info.meaning == "surveillance alarm network"
    assert str(d) == EXAMPLE_1


def test_tokr7_example_2_server() -> None:
    """TOK-R7, TOK-32, TOK-33: second worked example (central signalling control server)."""
    d = DeviceId.parse(EXAMPLE_2)
    assert d.device_type_info.name == "Central Signaling Control Server (Signal Networking Unit)"
    assert d.device_type_info.category == "platform devices"
    assert (d.network_id, d.sequence) == ("0", "000002")
    assert d.agency_info.name in AGENCY_07


def test_tokr7_reserved_codes_are_valid_when_lenient() -> None:
    """TOK-R7, TOK-R6: 42010000991399999999 parses; reserved codes show in the lookups."""
    d = DeviceId.parse("42010000991399999999")
    info = d.agency_info
    assert (info.code, info.name, info.group, info.reserved) == (
        "99", "Reserved 4", "Other Entities", True
    )
    assert str(info) == "Other Entities / Reserved 4"
    assert d.device_type_info.name == "Other Peripheral Devices"
    assert d.network_info.reserved and d.network_id == "9"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("3201000107132100801", r"has 19 characters.*exactly 20 decimal digits \(TOK-27\)"),
        ("32010001071321008O15", r"'O' at position 18.*\(TOK-27, TOK-R6\)"),
        ("3201-0001-0713-2100-8015", r"24 characters"),
        ("3201000107132100801\uff15", r"position 20"),  # full-width digit five
        (" 3201000107132100801", r"' ' at position 1"),
        ("", r"has 0 characters"),
    ],
)
def test_tok27_malformed_ids_are_refused(text: str, message: str) -> None:
    """TOK-27, TOK-R6, TOK-R7: exactly 20 ASCII digits, no separators; errors say where."""
    with pytest.raises(InvalidDeviceIdError, match=message):
        DeviceId.parse(text)


def test_tok27_non_string_refused() -> None:
    """TOK-27: the ID is text."""
    with pytest.raises(InvalidDeviceIdError, match="must be a str, got int"):
        DeviceId.parse(32010001071321008015)
    with pytest.raises(InvalidDeviceIdError):
        DeviceId(12)  # type: ignore[arg-type]


def test_tok29_tok30_zone_and_surveillance_centre() -> None:
    """TOK-29, TOK-30: digits 1-6 are the division code; unit 00 is the surveillance centre."""
    centre = DeviceId.parse("42010000071320000001")
    assert centre.division == "420100" and centre.is_surveillance_centre
    assert "unit 00 (surveillance centre)" in centre.describe()
    assert not DeviceId.parse(EXAMPLE_1).is_surveillance_centre


def test_tok31_agency_table() -> None:
    """TOK-31: named codes, subject groups, reserved ranges 1-4, and both wordings of 07."""
    assert agency_info(0).name == "Urban Roadway"
    assert agency_info("11").name == "Education"
    assert agency_info(11).group == "Government Offices"
    assert agency_info(40).name == "Farming, Forestry, Animal Husbandry & Fishery"
    assert agency_info(55).group == "Enterprise/Administrative Institution"
    assert agency_info(7).matches("Agency Related to Traffic Management")
    assert agency_info(7).matches("Agency Relates to Traffic Management")
    assert not agency_info(7).matches("Traffic Roadway")
    reserved = {c: agency_info(c) for c in (12, 39, 56, 79, 80, 89, 90)}
    assert {c: (i.name, i.group) for c, i in reserved.items()} == {
        12: ("Reserved 1", "Government Offices"),
        39: ("Reserved 1", "Government Offices"),
        56: ("Reserved 2", "Enterprise/Administrative Institution"),
        79: ("Reserved 2", "Enterprise/Administrative Institution"),
        80: ("Reserved 3", "Dwellers Building"),
        89: ("Reserved 3", "Dwellers Building"),
        90: ("Reserved 4", "Other Entities"),
    }
    assert all(i.reserved for i in reserved.values())
    assert sum(not agency_info(c).reserved for c in range(100)) == 28
    with pytest.raises(InvalidDeviceIdError, match="2 decimal digits"):
        agency_info(100)


@pytest.mark.parametrize(
    ("code", "name", "category", "extended", "listed"),
    [
        (111, "DVR", "front-end devices", False, True),
        (121, "Checkpoints on Roadway", "front-end devices", False, True),
        (122, "Extended Front-end devices", "front-end devices", True, True),
        (129, "Extended Front-end devices", "front-end devices", True, True),
        (130, "HVR", "front-end devices", False, True),
        (131, "Camera", None, False, True),
        (145, "Types of Extended Peripheral Devices", None, True, True),
        (210, "Media Storage Server", "platform devices", False, True),
        (211, None, "platform devices", False, True),
        (213, "Extended Device Type", "platform devices", True, True),
        (214, None, "platform devices", False, False),
        (215, "Traffic Grouping", "platform devices", False, True),
        (300, "Central User", "central users", False, True),
        (343, "Industrial Role User", "central users", True, True),
        (444, "Extended Central User Type", "terminal users", True, True),
        (504, "Video/Image Information Platform of Public Security",
         "external servers of the platform", False, True),
        (599, "Extended Platform Server (External)", "external servers of the platform",
         True, True),
        (650, "Extended Type", "extended types", True, True),
        (0, None, None, False, False),
        (110, None, None, False, False),
        (150, None, None, False, False),
        (700, None, None, False, False),
        (999, None, None, False, False),
    ],
)
def test_tok32_device_type_table(
    code: int, name: str | None, category: str | None, extended: bool, listed: bool
) -> None:
    """TOK-32, OQ-31: Table A.3 including its overlaps and gaps (121, 211, 214, 444-499)."""
    info = device_type_info(code)
    assert (info.name, info.category, info.extended, info.listed) == (
        name, category, extended, listed
    )
    assert info.code == f"{code:03d}"


def test_tok33_network_ids() -> None:
    """TOK-33: 0-4 surveillance alarm network, 5 public security, 6 government, 7 internet."""
    meanings = [network_info(d).meaning for d in range(10)]
    assert meanings[:5] == ["surveillance alarm network"] * 5
    assert meanings[5:8] == ["public-security network", "government network", "internet"]
    assert [network_info(d).reserved for d in (7, 8, 9)] == [False, True, True]


def test_tokr6_strict_mode_refuses_what_the_tables_do_not_name() -> None:
    """TOK-R6, section 5.7: lenient by default; strict refuses reserved/undefined codes."""
    assert DeviceId.parse(EXAMPLE_1, strict=True).value == EXAMPLE_1
    assert DeviceId.parse(EXAMPLE_2, strict=True).value == EXAMPLE_2
    with pytest.raises(InvalidDeviceIdError) as info:
        DeviceId.parse("42010000991399999999", strict=True)
    text = str(info.value)
    assert "agency code 99 is Other Entities / Reserved 4 (TOK-31)" in text
    assert "network ID 9 is reserved (TOK-33)" in text
    with pytest.raises(InvalidDeviceIdError, match=r"device type code 214 is not defined"):
        DeviceId.parse("32010001072141000001", strict=True)
    with pytest.raises(InvalidDeviceIdError, match=r"211 is listed without a name"):
        DeviceId.parse("32010001072111000001", strict=True)
    assert DeviceId.parse("32010001072141000001").device_type_info.listed is False


def test_tok27_tok28_build_from_fields_and_names() -> None:
    """TOK-27, TOK-28: a platform assigns IDs at initial configuration by building them from
    their fields; names of Tables A.2/A.3 are accepted (either wording of agency 07)."""
    built = DeviceId.build(
        province=32, city=1, district=0, unit=1, agency="Agency Relates to Traffic Management",
        device_type="IPC", network_id=1, sequence=8015,
    )
    assert str(built) == EXAMPLE_1
    assert DeviceId.build(
        province="32", city="01", district="00", unit="01", agency=7, device_type=200,
        network_id=0, sequence="000002", strict=True,
    ) == DeviceId.parse(EXAMPLE_2)
    with pytest.raises(InvalidDeviceIdError, match=r"sequence number 1000000 does not fit"):
        DeviceId.build(province=32, city=1, district=0, unit=1, agency=7, device_type=132,
                       network_id=1, sequence=1_000_000)
    with pytest.raises(InvalidDeviceIdError, match=r"city code '1' must be exactly 2"):
        DeviceId.build(province=32, city="1", district=0, unit=1, agency=7, device_type=132,
                       network_id=1, sequence=1)
    with pytest.raises(InvalidDeviceIdError, match=r"not a name of Table A\.2"):
        DeviceId.build(province=32, city=1, district=0, unit=1, agency="Police",
                       device_type=132, network_id=1, sequence=1)
    with pytest.raises(InvalidDeviceIdError, match="not a single-code name"):
        DeviceId.build(province=32, city=1, district=0, unit=1, agency=7,
                       device_type="Extended Type", network_id=1, sequence=1)
    with pytest.raises(InvalidDeviceIdError, match="int or a digit string"):
        DeviceId.build(province=True, city=1, district=0, unit=1, agency=7,
                       device_type=132, network_id=1, sequence=1)
    with pytest.raises(InvalidDeviceIdError, match="reserved"):
        DeviceId.build(province=32, city=1, district=0, unit=1, agency=7, device_type=132,
                       network_id=9, sequence=1, strict=True)


def test_tok27_describe_is_readable() -> None:
    """TOK-27 .. TOK-33: describe() names every field and its table meaning."""
    text = DeviceId.parse(EXAMPLE_1).describe()
    assert text.splitlines()[0] == f"device ID {EXAMPLE_1}"
    for fragment in (
        "province 32, city 01, district 00 (division 320100), unit 01",
        "agency 07: Agency Relate",
        "device type 132: IPC",
        "network ID 1 (surveillance alarm network), sequence 008015",
    ):
        assert fragment in text
    assert "211: (no name in Table A.3) [platform devices]" in (
        DeviceId.parse("32010001072111000001").describe()
    )
    assert repr(DeviceId.parse(EXAMPLE_1)) == f"DeviceId({EXAMPLE_1!r})"
    assert DeviceId.parse(EXAMPLE_1).prefix == EXAMPLE_1


@given(st.text(alphabet="0123456789", min_size=20, max_size=20))
def test_tokr6_every_20_digit_string_round_trips(text: str) -> None:
    """TOK-R6: any 20 ASCII digits parse leniently, and str(parse(x)) == x."""
    d = DeviceId.parse(text)
    assert str(d) == text
    assert d.zone + d.agency + d.device_type + d.serial == text
    assert d.network_id + d.sequence == d.serial
    d.describe()  # every lookup succeeds on any digits


@given(
    st.integers(0, 99), st.integers(0, 99), st.integers(0, 99), st.integers(0, 99),
    st.integers(0, 99), st.integers(0, 999), st.integers(0, 9), st.integers(0, 999_999),
)
def test_tok27_build_parse_round_trip(
    province: int, city: int, district: int, unit: int, agency: int, dtype: int, net: int,
    seq: int,
) -> None:
    """TOK-27, TOK-33: build from fields, format, parse: the same fields come back."""
    d = DeviceId.build(province=province, city=city, district=district, unit=unit,
                       agency=agency, device_type=dtype, network_id=net, sequence=seq)
    again = DeviceId.parse(str(d))
    assert again == d
    assert (int(again.province), int(again.city), int(again.district), int(again.unit)) == (
        province, city, district, unit
    )
    assert (int(again.agency), int(again.device_type), int(again.network_id)) == (
        agency, dtype, net
    )
    assert int(again.sequence) == seq


@given(st.text(max_size=30), st.booleans())
def test_tok27_parse_is_total(text: str, strict: bool) -> None:
    """TOK-27, TOK-R6: every string parses or raises InvalidDeviceIdError, nothing else."""
    try:
        d = DeviceId.parse(text, strict=strict)
    except InvalidDeviceIdError as exc:
        assert str(exc)
    else:
        assert str(d) == text and len(text) == 20

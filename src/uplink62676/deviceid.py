"""The 20-digit device ID of IEC 62676-2-33 Annex A (tokens.md section 5).

Layout (TOK-27)::

    PP CC DD UU | AA | TTT | N SSSSSS
    zone code   |agency|type| serial (network ID + sequence)

The annex is informative and inconsistent in places (tokens.md section 5.7,
OQ-31), so parsing is by fixed positions and, by default, *lenient*: any 20
ASCII digits parse, and reserved or undefined codes show up in the lookup
results instead of being rejected (TOK-R6).  ``strict=True`` additionally
refuses codes the tables do not name (reserved agencies, undefined or
unnamed device types, reserved network IDs) -- useful when *assigning* IDs.
Both views of the serial are exposed: the raw seven digits and Table A.4's
network ID + six-digit sequence; the examples' station/ticket-check split is
example-specific and not interpreted.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

import attrs

from .errors import InvalidDeviceIdError

__all__ = [
    "AGENCY_NAME_ALIASES",
    "AgencyInfo",
    "DeviceId",
    "DeviceTypeInfo",
    "NetworkInfo",
    "agency_info",
    "device_type_info",
    "network_info",
]

_GOV: Final = "Government Offices"
_ENT: Final = "Enterprise/Administrative Institution"

# Table A.2, named codes.
_AGENCY_NAMES: Final[dict[int, str]] = {
    0: "Urban Roadway",
    1: "Society Community",
    2: "Social Security Agency",
    3: "Other Security Agencies",
    4: "Traffic Roadway",
    5: "Traffic Checkpoints",
    6: "Traffic Management Agency",
    7: "Agency Related to Traffic Management",
    8: "City Management",
    9: "Health & Environmental Management",
    10: "Commodity Inspection & Custom",
    11: "Education",
    40: "Farming, Forestry, Animal Husbandry & Fishery",
    41: "Mining",
    42: "Manufacturing",
    43: "Metallurgy",
    44: "Electric Power",
    45: "Gas",
    46: "Construction",
    47: "Logistics",
    48: "Postal Services",
    49: "IT",
    50: "Hotels & Catering",
    51: "Financing",
    52: "Real Estate",
    53: "Commercial Services",
    54: "Water Resources Enterprises",
    55: "Entertainment",
}

#: Other wordings of Table A.2 names: code 07 reads "Agency Relates to ..." in
#: the 19.12 text the IEC edition is based on (tokens.md section 5.3).
AGENCY_NAME_ALIASES: Final[dict[int, tuple[str, ...]]] = {
    7: ("Agency Relates to Traffic Management",),
}

# Table A.2, reserved ranges: (low, high, subject group, label).
_AGENCY_RESERVED: Final = (
    (12, 39, _GOV, "Reserved 1"),
    (56, 79, _ENT, "Reserved 2"),
    (80, 89, "Dwellers Building", "Reserved 3"),
    (90, 99, "Other Entities", "Reserved 4"),
)

# Table A.3, single codes.
_DEVICE_TYPE_NAMES: Final[dict[int, str]] = {
    111: "DVR",
    112: "Video Server",
    113: "Encoder",
    114: "Decoder",
    115: "Video Switching Matrix",
    116: "Audio Switching Matrix",
    117: "Alarm Controller",
    118: "NVR",
    119: "Online Information Acquisition Device",
    120: "Online Information Acquisition System",
    121: "Checkpoints on Roadway",
    130: "HVR",
    131: "Camera",
    132: "IPC",
    133: "Display Encoding",
    134: "Alarm Input Devices",
    135: "Alarm Output Devices",
    136: "Audio Input Devices",
    137: "Audio Output Devices",
    138: "Mobile Transmission Devices",
    139: "Other Peripheral Devices",
    200: "Central Signaling Control Server (Signal Networking Unit)",
    201: "Web Application Server",
    202: "Media Distribution Server",
    203: "Proxy Server",
    204: "Security Server",
    205: "Alarm Server",
    206: "Database Server",
    207: "GIS Server",
    208: "Management Server",
    209: "Access Gateway",
    210: "Media Storage Server",
    215: "Traffic Grouping",
    216: "Virtual Grouping",
    300: "Central User",
    400: "Terminal User",
    500: "Signaling Server of Video/Image Information Application Platform",
    501: "Signaling Server of Video/Image Information Maintenance Platform",
    502: "Video/Image Analysis Device/System of Public Security",
    503: "Video/Image Information Database of Public Security",
    504: "Video/Image Information Platform of Public Security",
}

# Table A.3, named ranges (extended codes): (low, high, name).
_DEVICE_TYPE_RANGES: Final = (
    (122, 129, "Extended Front-end devices"),
    (140, 149, "Types of Extended Peripheral Devices"),
    (212, 213, "Extended Device Type"),
    (217, 299, "Extended Device Type"),
    (301, 343, "Industrial Role User"),
    (344, 399, "Extended Central User Type"),
    (401, 443, "Industrial Role User"),
    (444, 499, "Extended Central User Type"),
    (505, 599, "Extended Platform Server (External)"),
    (600, 699, "Extended Type"),
)

# Range notes of Table A.3 (131-149 carry none in the source).
_DEVICE_TYPE_CATEGORIES: Final = (
    (111, 130, "front-end devices"),
    (200, 299, "platform devices"),
    (300, 399, "central users"),
    (400, 499, "terminal users"),
    (500, 599, "external servers of the platform"),
    (600, 699, "extended types"),
)

# Table A.4 network IDs.
_NETWORKS: Final[dict[int, str]] = {
    0: "surveillance alarm network",
    1: "surveillance alarm network",
    2: "surveillance alarm network",
    3: "surveillance alarm network",
    4: "surveillance alarm network",
    5: "public-security network",
    6: "government network",
    7: "internet",
}


@attrs.frozen(slots=True)
class AgencyInfo:
    """Table A.2 entry for an agency code (TOK-31).

    ``name`` is the table's name, or the reserved label (``"Reserved 1"`` ..
    ``"Reserved 4"``) when ``reserved`` is true; ``group`` is the subject group.
    """

    code: str
    name: str
    group: str
    reserved: bool
    aliases: tuple[str, ...] = ()

    def matches(self, name: str) -> bool:
        """True for the table name or any accepted other wording (tokens.md section 5.3)."""
        return name == self.name or name in self.aliases

    def __str__(self) -> str:
        return f"{self.group} / {self.name}" if self.reserved else f"{self.name} ({self.group})"


@attrs.frozen(slots=True)
class DeviceTypeInfo:
    """Table A.3 entry for a device type code (TOK-32).

    ``name`` is ``None`` where the table gives none (211, 214, undefined
    codes); ``category`` is the range note (``"front-end devices"`` ...), or
    ``None`` where the source has none (131-149, undefined codes);
    ``extended`` marks codes inside a named "Extended ..."/role range;
    ``listed`` is false for codes absent from the table (000-110, 150-199,
    214, 700-999).
    """

    code: str
    name: str | None
    category: str | None
    extended: bool
    listed: bool

    def __str__(self) -> str:
        name = self.name if self.name is not None else "(no name in Table A.3)"
        return f"{name} [{self.category}]" if self.category else name


@attrs.frozen(slots=True)
class NetworkInfo:
    """Table A.4 network ID (TOK-33)."""

    digit: str
    meaning: str
    reserved: bool

    def __str__(self) -> str:
        return self.meaning


def _code(value: object, width: int, what: str) -> str:
    """Normalise an int or digit string to exactly ``width`` ASCII digits."""
    if isinstance(value, bool):
        raise InvalidDeviceIdError(f"{what} must be an int or a digit string, got {value!r}")
    if isinstance(value, int):
        if not 0 <= value < 10**width:
            raise InvalidDeviceIdError(
                f"{what} {value!r} does not fit in {width} decimal digits (TOK-27)"
            )
        return f"{value:0{width}d}"
    if isinstance(value, str):
        if len(value) == width and value.isascii() and value.isdigit():
            return value
        raise InvalidDeviceIdError(
            f"{what} {value!r} must be exactly {width} ASCII digits (TOK-27)"
        )
    raise InvalidDeviceIdError(
        f"{what} must be an int or a digit string, got {type(value).__name__}"
    )


def agency_info(code: int | str) -> AgencyInfo:
    """Look up an agency code (0-99 or two digits) in Table A.2 (TOK-31)."""
    text = _code(code, 2, "agency code")
    number = int(text)
    name = _AGENCY_NAMES.get(number)
    if name is not None:
        group = _GOV if number <= 39 else _ENT
        return AgencyInfo(text, name, group, False, AGENCY_NAME_ALIASES.get(number, ()))
    for low, high, group, label in _AGENCY_RESERVED:
        if low <= number <= high:
            return AgencyInfo(text, label, group, True)
    raise AssertionError(f"agency table does not cover {text}")  # pragma: no cover


def device_type_info(code: int | str) -> DeviceTypeInfo:
    """Look up a device type code (0-999 or three digits) in Table A.3 (TOK-32).

    121 is "Checkpoints on Roadway" (not the extended range it also starts);
    122-129 are "Extended Front-end devices"; 211 is listed without a name,
    214 is not listed (tokens.md section 5.7 item 5).
    """
    text = _code(code, 3, "device type code")
    number = int(text)
    category = next((c for lo, hi, c in _DEVICE_TYPE_CATEGORIES if lo <= number <= hi), None)
    name = _DEVICE_TYPE_NAMES.get(number)
    if name is not None:
        return DeviceTypeInfo(text, name, category, False, True)
    for low, high, range_name in _DEVICE_TYPE_RANGES:
        if low <= number <= high:
            return DeviceTypeInfo(text, range_name, category, True, True)
    return DeviceTypeInfo(text, None, category, False, number == 211)


def network_info(digit: int | str) -> NetworkInfo:
    """Look up a network ID digit in Table A.4 (TOK-33); 8 and 9 are reserved."""
    text = _code(digit, 1, "network ID")
    meaning = _NETWORKS.get(int(text))
    if meaning is None:
        return NetworkInfo(text, "reserved", True)
    return NetworkInfo(text, meaning, False)


def _agency_code_for_name(name: str) -> str:
    for number, table_name in _AGENCY_NAMES.items():
        if name == table_name or name in AGENCY_NAME_ALIASES.get(number, ()):
            return f"{number:02d}"
    raise InvalidDeviceIdError(f"agency {name!r} is not a name of Table A.2 (TOK-31)")


def _device_type_code_for_name(name: str) -> str:
    for number, table_name in _DEVICE_TYPE_NAMES.items():
        if name == table_name:
            return f"{number:03d}"
    raise InvalidDeviceIdError(
        f"device type {name!r} is not a single-code name of Table A.3 (TOK-32); "
        "give the numeric code"
    )


def _strict_problems(value: str) -> Iterator[str]:
    agency = agency_info(value[8:10])
    if agency.reserved:
        yield f"agency code {agency.code} is {agency.group} / {agency.name} (TOK-31)"
    dtype = device_type_info(value[10:13])
    if dtype.name is None:
        state = "listed without a name" if dtype.listed else "not defined"
        yield f"device type code {dtype.code} is {state} in Table A.3 (TOK-32)"
    network = network_info(value[13])
    if network.reserved:
        yield f"network ID {network.digit} is reserved (TOK-33)"


def _check_strict(value: str) -> None:
    problems = list(_strict_problems(value))
    if problems:
        raise InvalidDeviceIdError(
            f"device ID {value!r} is refused in strict mode: " + "; ".join(problems)
        )


def _validate(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidDeviceIdError(f"a device ID must be a str, got {type(value).__name__}")
    if len(value) == 20 and value.isascii() and value.isdigit():
        return value
    shown = repr(value) if len(value) <= 40 else f"{value[:32]!r}... ({len(value)} characters)"
    if len(value) != 20:
        raise InvalidDeviceIdError(
            f"device ID {shown} has {len(value)} characters; it must be exactly 20 decimal "
            "digits (TOK-27)"
        )
    bad = next(i for i, ch in enumerate(value) if not ("0" <= ch <= "9"))
    raise InvalidDeviceIdError(
        f"device ID {shown} has {value[bad]!r} at position {bad + 1}; it must be exactly 20 "
        "ASCII decimal digits with no separators (TOK-27, TOK-R6)"
    )


@attrs.frozen(slots=True, repr=False)
class DeviceId:
    """A 20-digit Annex A device ID (TOK-27 .. TOK-33).

    Fields are read by position (TOK-R6): zone 1-8 (province, city,
    district, unit), agency 9-10, device type 11-13, serial 14-20 with
    ``network_id`` = digit 14 and ``sequence`` = digits 15-20.
    ``str(DeviceId.parse(x)) == x``.  It can serve directly as a
    remote-token prefix (TOK-14).
    """

    value: str = attrs.field(converter=_validate)

    @classmethod
    def parse(cls, value: object, *, strict: bool = False) -> DeviceId:
        """Parse 20 ASCII digits, or raise :class:`InvalidDeviceIdError`.

        Lenient by default (TOK-R6: never reject a reserved or unknown code);
        ``strict=True`` also refuses codes the tables do not name.
        """
        if type(value) is str and len(value) == 20 and value.isascii() and value.isdigit():
            if strict:
                _check_strict(value)
            obj = object.__new__(cls)
            object.__setattr__(obj, "value", value)
            return obj
        text = _validate(value)
        if strict:
            _check_strict(text)
        return cls(text)

    @classmethod
    def build(
        cls,
        *,
        province: int | str,
        city: int | str,
        district: int | str,
        unit: int | str,
        agency: int | str,
        device_type: int | str,
        network_id: int | str,
        sequence: int | str,
        strict: bool = False,
    ) -> DeviceId:
        """Assemble an ID from its fields (TOK-27 .. TOK-33).

        Numbers are zero-padded to their width; digit strings must have it
        exactly.  ``agency`` may also be a Table A.2 name (either wording of
        07) and ``device_type`` a single-code Table A.3 name (e.g. ``"IPC"``).
        """
        if isinstance(agency, str) and not agency.isdigit():
            agency = _agency_code_for_name(agency)
        if isinstance(device_type, str) and not device_type.isdigit():
            device_type = _device_type_code_for_name(device_type)
        text = "".join(
            (
                _code(province, 2, "province code"),
                _code(city, 2, "city code"),
                _code(district, 2, "district code"),
                _code(unit, 2, "unit code"),
                _code(agency, 2, "agency code"),
                _code(device_type, 3, "device type code"),
                _code(network_id, 1, "network ID"),
                _code(sequence, 6, "sequence number"),
            )
        )
        return cls.parse(text, strict=strict)

    # -- fields by position (TOK-27, TOK-29 .. TOK-33) -------------------------

    @property
    def zone(self) -> str:
        """Digits 1-8: the zone code (TOK-29, TOK-30)."""
        return self.value[0:8]

    @property
    def province(self) -> str:
        """Province part of the zone code (digits 1-2)."""
        return self.value[0:2]

    @property
    def city(self) -> str:
        """City part of the zone code (digits 3-4)."""
        return self.value[2:4]

    @property
    def district(self) -> str:
        """District part of the zone code (digits 5-6)."""
        return self.value[4:6]

    @property
    def division(self) -> str:
        """Digits 1-6: the administrative-division code (GB/T 2260, TOK-29)."""
        return self.value[0:6]

    @property
    def unit(self) -> str:
        """Digits 7-8: user-defined unit; ``00`` is the surveillance centre (TOK-30)."""
        return self.value[6:8]

    @property
    def is_surveillance_centre(self) -> bool:
        """True when the unit is ``00`` (TOK-30)."""
        return self.value[6:8] == "00"

    @property
    def agency(self) -> str:
        """Digits 9-10 (TOK-31)."""
        return self.value[8:10]

    @property
    def device_type(self) -> str:
        """Digits 11-13 (TOK-32)."""
        return self.value[10:13]

    @property
    def serial(self) -> str:
        """Digits 14-20: the raw seven-digit serial number (TOK-33)."""
        return self.value[13:20]

    @property
    def network_id(self) -> str:
        """Digit 14: the network ID of Table A.4 (TOK-33)."""
        return self.value[13]

    @property
    def sequence(self) -> str:
        """Digits 15-20: the six-digit sequence of Table A.4 (TOK-33)."""
        return self.value[14:20]

    # -- table lookups ---------------------------------------------------------

    @property
    def agency_info(self) -> AgencyInfo:
        """Annex A name and reserved flag of the agency code (digits 9-10)."""
        return agency_info(self.agency)

    @property
    def device_type_info(self) -> DeviceTypeInfo:
        """Annex A name and reserved flag of the device type code (digits 11-13)."""
        return device_type_info(self.device_type)

    @property
    def network_info(self) -> NetworkInfo:
        """Annex A meaning of the network-ID digit (digit 14)."""
        return network_info(self.network_id)

    @property
    def prefix(self) -> str:
        """The ID as a remote-token prefix (TOK-14); the same 20 digits."""
        return self.value

    def describe(self) -> str:
        """A readable multi-line breakdown of every field and its table meaning."""
        unit_note = " (surveillance centre)" if self.is_surveillance_centre else ""
        network = self.network_info
        lines = [
            f"device ID {self.value}",
            f"  zone {self.zone}: province {self.province}, city {self.city}, "
            f"district {self.district} (division {self.division}), unit {self.unit}{unit_note}",
            f"  agency {self.agency}: {self.agency_info}",
            f"  device type {self.device_type}: {self.device_type_info}",
            f"  serial {self.serial}: network ID {self.network_id} ({network.meaning}), "
            f"sequence {self.sequence}",
        ]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return f"DeviceId({self.value!r})"

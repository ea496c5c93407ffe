"""The configuration store's file format: versioned XML of the uplink configurations.

Encoding and decoding only (layer 2, no file I/O): :mod:`uplink62676.io.store`
does the crash-safe writing and reading.  The format is self-describing
(``format="1"``) and every older version stays readable (CFG-36).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from lxml import etree

from ._xml import parse_xml
from .config import UplinkConfiguration, configuration_from_xml, configuration_to_xml
from .errors import ConfigurationError
from .namespaces import TUP

__all__ = [
    "FORMAT_VERSION",
    "MAX_STORE_BYTES",
    "STORE_NAMESPACE",
    "NewerFormatError",
    "decode_store",
    "encode_store",
]

#: Namespace of the store's root element.
STORE_NAMESPACE: Final = "urn:uplink62676:config-store"
#: Format version written; every version up to it is readable.
FORMAT_VERSION: Final = 1
#: The largest store file read.
MAX_STORE_BYTES: Final = 64 * 1024 * 1024
_ROOT: Final = f"{{{STORE_NAMESPACE}}}UplinkStore"


class NewerFormatError(ConfigurationError):
    """The file was written by a newer release (its format version is higher)."""



def encode_store(configurations: Iterable[UplinkConfiguration]) -> bytes:
    """The store file's bytes for ``configurations`` (format :data:`FORMAT_VERSION`)."""
    root = etree.Element(_ROOT, nsmap={"store": STORE_NAMESPACE, "tup": TUP})
    root.set("format", str(FORMAT_VERSION))
    root.text = "\n  "
    for config in configurations:
        elem = configuration_to_xml(config.without_runtime())
        elem.tail = "\n  "
        root.append(elem)
    if len(root):
        root[-1].tail = "\n"
    else:
        root.text = None
    return etree.tostring(root, encoding="UTF-8", xml_declaration=True) + b"\n"


def decode_store(data: bytes) -> list[UplinkConfiguration]:
    """Parse a store file's octets; :class:`ConfigurationError` if it is damaged."""
    if len(data) > MAX_STORE_BYTES:
        raise ConfigurationError(f"store larger than {MAX_STORE_BYTES} octets")
    root = parse_xml(data, max_bytes=MAX_STORE_BYTES, max_elements=1_000_000, require_utf8=True)
    if root.tag != _ROOT:
        raise ConfigurationError(f"root element is {root.tag!r}, not the store's")
    version_text = root.get("format", "")
    if not version_text.isdigit():
        raise ConfigurationError(f"format version {version_text!r} is not a number")
    if int(version_text) > FORMAT_VERSION:
        raise NewerFormatError(
            f"store format {version_text} is newer than this release reads ({FORMAT_VERSION})"
        )
    configs: list[UplinkConfiguration] = []
    seen: set[str] = set()
    for child in root:
        if not isinstance(child.tag, str):
            continue
        if child.tag != f"{{{TUP}}}Configuration":
            raise ConfigurationError(f"unexpected element {child.tag!r} in the store")
        config = configuration_from_xml(child)
        if config.remote_address in seen:
            raise ConfigurationError(f"RemoteAddress {config.remote_address!r} stored twice")
        seen.add(config.remote_address)
        configs.append(config)
    return configs

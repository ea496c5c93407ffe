"""Hardened XML parsing shared by every codec (SOAP, filters, token adaption).

One parser configuration, set explicitly because older lxml releases had
looser defaults: no DTD loading, no entity resolution, no network, no huge
trees, comments and processing instructions dropped.  On top of libxml2's
own guards we enforce a byte limit *before* parsing, refuse any DOCTYPE
(SOAP 1.2 forbids it), and bound depth and element count after parsing.
"""

from __future__ import annotations

import re
from typing import Any, Final

from lxml import etree

from .errors import XmlRejectedError

__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_MAX_DEPTH", "DEFAULT_MAX_ELEMENTS", "parse_xml"]

DEFAULT_MAX_BYTES: Final = 1024 * 1024
DEFAULT_MAX_DEPTH: Final = 64
DEFAULT_MAX_ELEMENTS: Final = 100_000


def _new_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
    )


_PARSER: Final = _new_parser()


def parse_xml(
    data: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
    require_utf8: bool = False,
) -> etree._Element:
    """Parse ``data`` into an element tree, or raise :class:`XmlRejectedError`.

    ``require_utf8`` additionally refuses documents that are not valid UTF-8
    (with or without a BOM) or that declare another encoding.
    """
    if type(data) is not bytes:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise XmlRejectedError("malformed", f"XML must be bytes, got {type(data).__name__}")
        data = bytes(data)
    if len(data) > max_bytes:
        raise XmlRejectedError(
            "too-large", f"XML document of {len(data)} octets exceeds the limit of {max_bytes}"
        )
    if require_utf8:
        _check_utf8(data)
    # Fast refusal of a DOCTYPE in the common encodings before libxml2 sees it.
    if b"<!DOCTYPE" in data or b"<\x00!\x00D\x00O\x00C\x00" in data:
        raise XmlRejectedError("doctype", "XML with a DOCTYPE is refused (no DTDs in SOAP 1.2)")
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise XmlRejectedError("malformed", f"malformed XML: {exc}") from None
    except (ValueError, etree.LxmlError) as exc:
        raise XmlRejectedError("malformed", f"unparseable XML: {exc}") from None
    if root is None:
        raise XmlRejectedError("malformed", "empty XML document")
    docinfo: Any = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise XmlRejectedError("doctype", "XML with a DOCTYPE is refused (no DTDs in SOAP 1.2)")
    # Every element needs a '<', and depth d needs at least 2d - 1 of them, so
    # counting '<' (a C scan) proves most documents within both limits without
    # walking the tree; only larger ones pay for the exact check.
    tags = data.count(b"<")
    if tags > max_elements or (tags + 1) // 2 > max_depth:
        _check_shape(root, max_depth, max_elements)
    return root


_ENCODING_DECL: Final = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


def _check_utf8(data: bytes) -> None:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise XmlRejectedError(
            "encoding",
            f"XML is not valid UTF-8 (octet {exc.start}: {data[exc.start : exc.start + 1]!r})",
        ) from None
    head = data[3:203] if data.startswith(b"\xef\xbb\xbf") else data[:200]
    m = _ENCODING_DECL.match(head)
    if m is not None and m.group(1).lower() not in (b"utf-8", b"utf8"):
        raise XmlRejectedError(
            "encoding", f"XML declares a non-UTF-8 encoding: {m.group(1).decode('ascii')!r}"
        )


_COUNT_ELEMENTS: Final = etree.XPath("count(//*)")
_DEPTH_PROBES: dict[int, etree.XPath] = {}


def _depth_probe(max_depth: int) -> etree.XPath:
    """XPath that is true when an element sits deeper than ``max_depth`` (compiled once)."""
    probe = _DEPTH_PROBES.get(max_depth)
    if probe is None:
        probe = etree.XPath("boolean(/" + "/".join(["*"] * (max_depth + 1)) + ")")
        _DEPTH_PROBES[max_depth] = probe
    return probe


def _check_shape(root: etree._Element, max_depth: int, max_elements: int) -> None:
    # Both checks run inside libxml2 (no Python loop over the elements).
    if _depth_probe(max_depth)(root):
        raise XmlRejectedError("too-deep", f"XML nesting deeper than {max_depth} elements")
    count = _COUNT_ELEMENTS(root)
    if isinstance(count, float) and count > max_elements:
        raise XmlRejectedError(
            "too-many-elements", f"XML has {int(count)} elements, more than {max_elements}"
        )

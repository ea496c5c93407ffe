"""Device IDs as DNS labels, for virtual hosts ``<label>.DOMAIN`` (reversible, lowercase).

A virtual host names one device (``cam-1.cloud.example`` -> device ``cam-1``), but a
device ID may hold characters a host name cannot (upper case, ``_``, ``.``, non-ASCII)
and host names compare case-insensitively.  The encoding, one label per ID:

* an ID that already is a lowercase LDH label -- ``a``-``z``, ``0``-``9`` and ``-``,
  1 to 63 characters, no hyphen first or last, neither ``??--`` in characters 3-4
  (RFC 5891 §4.2.3.1 reserves those, ``xn--`` among them) nor starting ``x--`` -- is
  its own label;
* any other ID becomes ``x--`` followed by the RFC 4648 base32 of its UTF-8 octets, in
  lowercase without padding (``CAM_1`` -> ``x--inau2xzr``).

So two IDs never share a label, every label maps back to at most one ID, and an
upper-case ID still resolves (the host is lowercased before decoding).  A label has at
most 63 characters (RFC 1035 §2.3.4): an ID that needs encoding may then have at most
37 UTF-8 octets (3 + ceil(8 * 37 / 5) = 63).  A longer one has no label:
:func:`device_label` raises :class:`~uplink62676.errors.ConfigurationError` and the
device is reachable by path (and by its own port) only.  The 20-digit device IDs of
the device ID scheme are plain labels.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Final

from ..errors import ConfigurationError

__all__ = ["ENCODED_PREFIX", "MAX_LABEL", "device_from_label", "device_label", "has_label"]

#: Prefix of an encoded label (``x--`` + base32).
ENCODED_PREFIX: Final = "x--"
#: The longest DNS label (RFC 1035 §2.3.4).
MAX_LABEL: Final = 63

_LDH = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
_B32 = re.compile(r"[a-z2-7]+\Z")


def _plain(text: str) -> bool:
    """A lowercase LDH label that is not reserved (no ``??--``) nor ``x--``-prefixed."""
    return (_LDH.match(text) is not None and text[2:4] != "--"
            and not text.startswith(ENCODED_PREFIX))


def device_label(device_id: str) -> str:
    """The DNS label of ``device_id`` (see the module docstring); ConfigurationError if none."""
    if _plain(device_id):
        return device_id
    if not device_id:
        raise ConfigurationError("an empty device ID has no DNS label")
    try:
        raw = device_id.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigurationError(f"device ID {device_id[:80]!r} is not valid Unicode") from None
    label = ENCODED_PREFIX + base64.b32encode(raw).decode("ascii").rstrip("=").lower()
    if len(label) > MAX_LABEL:
        raise ConfigurationError(
            f"device ID {device_id[:80]!r} needs a {len(label)}-character DNS label "
            f"(at most {MAX_LABEL}): reachable by path only")
    return label


def has_label(device_id: str) -> bool:
    """True when ``device_id`` can be reached by a virtual host."""
    try:
        device_label(device_id)
    except ConfigurationError:
        return False
    return True


def device_from_label(label: str) -> str | None:
    """The device ID whose label is ``label`` (case-insensitive), or None for no device."""
    label = label.lower()
    if len(label) > MAX_LABEL:
        return None
    if label.startswith(ENCODED_PREFIX):
        text = label[len(ENCODED_PREFIX):]
        if _B32.match(text) is None:
            return None
        try:
            device_id = base64.b32decode(text.upper() + "=" * (-len(text) % 8)).decode("utf-8")
        except (binascii.Error, ValueError):
            return None
        try:  # only the canonical spelling maps back: one label per ID
            return device_id if device_label(device_id) == label else None
        except ConfigurationError:
            return None
    return label if _plain(label) else None

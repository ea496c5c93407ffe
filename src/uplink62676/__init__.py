"""uplink62676: IEC 62676-2-33 (ONVIF Uplink and Resource Query), sans-I/O.

The public API is re-exported here; see the documentation for the three
audiences (firmware teams, cloud/VMS builders, integrators).
"""

from __future__ import annotations

from .errors import (
    ConfigurationError,
    InvalidDeviceIdError,
    InvalidTokenError,
    LocalProtocolError,
    RemoteProtocolError,
    SoapFault,
    UplinkError,
    XmlRejectedError,
)

__version__ = "0.1.0"

__all__ = [
    "ConfigurationError",
    "InvalidDeviceIdError",
    "InvalidTokenError",
    "LocalProtocolError",
    "RemoteProtocolError",
    "SoapFault",
    "UplinkError",
    "XmlRejectedError",
    "__version__",
]

"""Deprecated path: this module moved to :mod:`uplink62676.io.certs`.

An I/O helper of the adapters; importing the old path warns (DeprecationWarning).
"""

from ._moved import alias

alias(__name__)

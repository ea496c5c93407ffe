"""Deprecated path: this module moved to :mod:`uplink62676.app.demo`.

An application; importing the old path warns (DeprecationWarning).
"""

from ._moved import alias

alias(__name__)

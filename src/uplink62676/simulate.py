"""Deprecated path: this module moved to :mod:`uplink62676.app.simulate`.

An application; importing the old path warns (DeprecationWarning).
"""

from ._moved import alias

alias(__name__)

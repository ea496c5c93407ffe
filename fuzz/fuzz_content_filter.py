"""Fuzz target: the ItemFilter message-content compiler (EVT-56, EVT-57, EVT-R12).

Input bytes (decoded as UTF-8, invalid sequences replaced) become the
expression text; the compiled predicate is evaluated on sample items.
Only UplinkError may escape.
"""

from __future__ import annotations

from _common import main
from lxml import etree

from uplink62676.namespaces import TT, WSNT
from uplink62676.query.filters import ITEM_FILTER, compile_content


def target(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    elem = etree.Element(f"{{{WSNT}}}MessageContent", Dialect=ITEM_FILTER, nsmap={"tt": TT})
    try:
        elem.text = text
    except ValueError:  # characters XML cannot carry never reach the compiler
        return
    flt = compile_content(elem, 0.0)
    flt.evaluate([("Token", "A:1"), ("Name", "x"), ("Offline", "true")], ["Location"])
    flt.evaluate([], [])


if __name__ == "__main__":
    main(target)

"""The applications built on the library: the command line, the demo, the query CLI, the simulator.

Layer 6: they may use everything below them; nothing in the library imports them.
"""

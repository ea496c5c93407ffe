"""The I/O helpers the adapters share: TLS contexts, certificates, the configuration store.

Layer 5 (with :mod:`uplink62676.aio` and :mod:`uplink62676.threaded`): these
modules touch files, sockets' TLS settings and the operating system; nothing in
the sans-I/O layers below imports them.
"""

"""Persistent, crash-safe store of the uplink configurations (adapter level; CFG-36, CFG-R9).

:class:`ConfigStore` keeps the list of :class:`~uplink62676.config.UplinkConfiguration`
in one XML file.  Every save is atomic: a temporary file in the same
directory is written, flushed and fsync'ed, renamed over the old file, and
the directory is fsync'ed, so after a crash at any moment the file holds
either the old or the new list.  The format is versioned and
self-describing (``format="1"``); a newer release reads every older format,
so a firmware upgrade restores every entry unchanged, extensions included
(CFG-36).  A file that cannot be read or parsed at start-up is moved aside
to ``<name>.corrupt-<n>`` and reported with :class:`CorruptStoreError`; it is
never overwritten silently.

Wiring with the service (the change listener runs before the response is
sent, CFG-R9)::

    store = ConfigStore("/etc/uplink/uplinks.xml")
    service = UplinkService(caps, configurations=store.load(), on_change=store.on_change)
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable
from typing import Final, NoReturn

from ..config import UplinkConfiguration
from ..errors import ConfigStoreError, ConfigurationError, CorruptStoreError, XmlRejectedError
from ..services.uplink import ConfigurationChange
from ..storeformat import (
    FORMAT_VERSION,
    MAX_STORE_BYTES,
    STORE_NAMESPACE,
    NewerFormatError,
    decode_store,
    encode_store,
)

__all__ = ["FORMAT_VERSION", "STORE_NAMESPACE", "ConfigStore"]

_TMP_SUFFIX: Final = ".tmp"


_PREVIOUS_SUFFIX: Final = ".prev"


class ConfigStore:
    """One XML file holding the uplink configurations, and the generation before it.

    Every save keeps the file it replaces as ``<name>.prev`` (a hard link made
    before the rename, so at every instant one good generation is on disk).
    When the file cannot be read at start-up, it is moved aside and the
    previous generation is restored and used: :attr:`recovered` then holds the
    error about the damaged file, for the caller to report loudly.  Only when
    no good generation exists does :meth:`load` raise.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._dir = os.path.dirname(os.path.abspath(self.path))
        self._name = os.path.basename(self.path)
        self.previous_path = self.path + _PREVIOUS_SUFFIX
        #: Why the current file was not used at the last :meth:`load` (None: it was).
        self.recovered: CorruptStoreError | None = None

    def __repr__(self) -> str:
        return f"ConfigStore({self.path!r})"

    # ----------------------------------------------------------------- reading

    def load(self) -> list[UplinkConfiguration]:
        """Read the stored list; a missing file is an empty list.

        Leftover temporary files of an interrupted save are removed.  Raises
        :class:`CorruptStoreError` (after moving the file aside) when the file
        is unreadable or not a store, and :class:`ConfigStoreError` when it was
        written by a newer format version (left in place).
        """
        self._remove_stale_temporaries()
        self.recovered = None
        try:
            return self._read(self.path)
        except CorruptStoreError as damaged:
            previous = self._read_previous()
            if previous is None:
                raise
            self.recovered = damaged
            with contextlib.suppress(ConfigStoreError):
                self.save(previous, keep_previous=False)  # the good generation is current again
            return previous

    def _read(self, path: str) -> list[UplinkConfiguration]:
        try:
            with open(path, "rb") as handle:
                data = handle.read(MAX_STORE_BYTES + 1)
        except FileNotFoundError:
            return []
        except OSError as exc:
            self._corrupt(f"cannot read {path}: {exc.strerror or exc}")
        try:
            return decode_store(data)
        except NewerFormatError as exc:
            raise ConfigStoreError(str(exc), path=path) from None
        except (XmlRejectedError, ConfigurationError) as exc:
            self._corrupt(f"{path} is not a valid uplink store: {exc}")

    def _read_previous(self) -> list[UplinkConfiguration] | None:
        """The previous generation, or None when there is none or it is no good either."""
        if not os.path.exists(self.previous_path):
            return None
        try:
            with open(self.previous_path, "rb") as handle:
                return decode_store(handle.read(MAX_STORE_BYTES + 1))
        except (OSError, XmlRejectedError, ConfigurationError):
            return None

    def _corrupt(self, message: str) -> NoReturn:
        moved_to = self._move_aside()
        where = f"; moved aside to {moved_to}" if moved_to else "; could not move it aside"
        raise CorruptStoreError(message + where, path=self.path, moved_to=moved_to)

    def _move_aside(self) -> str | None:
        for n in range(1, 10_000):
            target = f"{self.path}.corrupt-{n}"
            if os.path.lexists(target):
                continue
            try:
                os.rename(self.path, target)
            except OSError:
                return None
            return target
        return None

    def _remove_stale_temporaries(self) -> None:
        prefix = f".{self._name}."
        try:
            names = os.listdir(self._dir)
        except OSError:
            return
        for name in names:
            if name.startswith(prefix) and name.endswith(_TMP_SUFFIX):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(self._dir, name))

    # ----------------------------------------------------------------- writing

    def save(self, configurations: Iterable[UplinkConfiguration], *,
             keep_previous: bool = True) -> None:
        """Replace the stored list atomically (Status and Error are not stored).

        The file replaced becomes the previous generation (``keep_previous``).
        Raises :class:`ConfigStoreError` when the file system refuses; the
        previous file is then still intact.
        """
        data = encode_store(configurations)
        tmp: str | None = None
        try:
            os.makedirs(self._dir, exist_ok=True)
            fd, tmp = tempfile.mkstemp(
                dir=self._dir, prefix=f".{self._name}.", suffix=_TMP_SUFFIX
            )
            try:
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
            finally:
                os.close(fd)
            if keep_previous:
                self._keep_previous()
            os.replace(tmp, self.path)
            tmp = None
            self._fsync_dir()
        except OSError as exc:
            raise ConfigStoreError(
                f"cannot save {self.path}: {exc.strerror or exc}", path=self.path
            ) from exc
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    def _keep_previous(self) -> None:
        """Hard-link the current file as ``<name>.prev`` (atomically replacing the older one)."""
        if not os.path.exists(self.path):
            return
        link = os.path.join(self._dir, f".{self._name}.prev{_TMP_SUFFIX}")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(link)
        try:
            try:
                os.link(self.path, link)
            except OSError:  # no hard links here: a copy does the same, less cheaply
                with open(self.path, "rb") as src, open(link, "wb") as dst:
                    dst.write(src.read())
                    dst.flush()
                    os.fsync(dst.fileno())
            os.replace(link, self.previous_path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(link)
            raise

    def _fsync_dir(self) -> None:
        flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
        fd = os.open(self._dir, flags)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def on_change(self, change: ConfigurationChange) -> None:
        """A :data:`~uplink62676.services.uplink.ChangeListener` that persists the new list."""
        self.save(change.configurations)

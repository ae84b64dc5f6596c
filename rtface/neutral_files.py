"""Where ``save-neutral`` / ``load-neutral`` (control channel) may write and read: one folder, names only.

A name is 1-64 characters of letters, digits, ``_``, ``-`` and ``.``, not starting with ``.`` (an optional
``.npz`` suffix is dropped); it can never be a path. The folder is ``[control] neutral_dir`` (default
``<user data folder>/neutrals``, see :mod:`rtface.userdirs`), created with mode 0700. Saving never replaces an
existing file unless ``overwrite`` is asked for, and writes atomically (a temporary file, then a link or rename,
so a symbolic link planted in the folder is replaced, never followed). Loading reads only a regular file (not a
link) directly in the folder, and every failure gives the same message, so a peer learns nothing about other files.

(``neutral_mode = "file"`` in a config file is the local user's own choice of path and does not go through here.)
Used from the processing thread.
"""
from __future__ import annotations

import os
import re
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from rtface.errors import RtfaceError

_NAME_RE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$")
T = TypeVar("T")


class NeutralFileError(RtfaceError):
    """A neutral name is invalid, or the named file cannot be saved or loaded."""


class NeutralFolder:
    """The one folder of neutral files. ``folder`` "" = the per-user default."""

    def __init__(self, folder: str | Path = "") -> None:
        if folder:
            self.folder = Path(folder).expanduser()
        else:
            from rtface.userdirs import data_dir

            self.folder = data_dir() / "neutrals"

    @staticmethod
    def check_name(name: Any) -> str:
        """The file name (``<name>.npz``) for a valid name; NeutralFileError otherwise."""
        if isinstance(name, str) and name.endswith(".npz"):
            name = name[:-4]
        if not isinstance(name, str) or not _NAME_RE.match(name) or ".." in name:
            shown = repr(name)[:80]
            raise NeutralFileError(f"invalid neutral name {shown}: use 1-64 letters, digits, '_', '-' or '.' "
                                   f"(a name, not a path; files live in the engine's neutral folder)")
        return name + ".npz"

    def _ensure(self) -> Path:
        from rtface.userdirs import private_dir

        try:
            return private_dir(self.folder)
        except OSError as exc:
            raise NeutralFileError(f"neutral folder {self.folder} cannot be used: {exc}") from exc

    def save(self, name: Any, write: Callable[[Path], Path], *, overwrite: bool = False) -> Path:
        """Call ``write(tmp_path)`` (it writes a neutral .npz there), then give it the final name. Returns the path."""
        fname = self.check_name(name)
        folder = self._ensure()
        final = folder / fname
        tmp = folder / f".{fname[:-4]}.{secrets.token_hex(6)}.tmp.npz"
        try:
            written = Path(write(tmp))
            if written != tmp:
                raise NeutralFileError(f"neutral {name!r}: writer wrote {written.name}, expected {tmp.name}")
            if overwrite:
                os.replace(tmp, final)
            else:
                try:
                    os.link(tmp, final)  # atomic "create only if absent"
                except FileExistsError:
                    raise NeutralFileError(f"neutral {fname[:-4]!r} already exists in the neutral folder; "
                                           f"pass --overwrite (overwrite = true) to replace it") from None
        finally:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        return final

    def load(self, name: Any, read: Callable[[Path], T]) -> T:
        """``read(path)`` of the named file. Missing, not a regular file, a link, or unreadable/invalid content all
        raise the same NeutralFileError."""
        fname = self.check_name(name)
        path = self.folder / fname
        uniform = NeutralFileError(f"cannot load neutral {fname[:-4]!r}: no valid neutral file of that name in the "
                                   f"neutral folder")
        try:
            st = os.lstat(path)
        except OSError:
            raise uniform from None
        if not stat.S_ISREG(st.st_mode):
            raise uniform
        try:
            return read(path)
        except Exception:  # noqa: BLE001 - DataError, BadZipFile, OSError...: one answer for all
            raise uniform from None

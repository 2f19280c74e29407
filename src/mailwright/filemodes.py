"""Who may read what Mailwright writes: nobody but its own user and group.

The data directory holds password hashes (the database), every message (the blobs and their
staging files), the TLS and DKIM private keys sit next to the configuration. Whatever umask the
operator's shell or service manager has, the CLI and the server create directories 0750 and
files 0640 at most (`restrict_umask`), the data directory itself is closed to other users when a
store opens (`close_to_others`, which also covers files an older version left readable), and
`mailwright check` lists anything other users can still reach (`open_to_others`).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

# Group may read (a backup or monitoring group), others get nothing: files 0640, dirs 0750.
PRIVATE_UMASK = 0o027


def restrict_umask() -> int:
    """Tighten this process's umask to at least `PRIVATE_UMASK`; the previous one."""
    previous = os.umask(PRIVATE_UMASK)
    os.umask(previous | PRIVATE_UMASK)
    return previous


def close_to_others(directory: Path) -> None:
    """Take every permission of "others" off `directory` (not its contents): what is inside
    can then not be reached by other users whatever its own mode. Best effort: a directory
    owned by someone else (a read-only check) is left as it is."""
    try:
        st = directory.stat()
        if st.st_mode & 0o007 and st.st_uid == os.geteuid():
            os.chmod(directory, stat.S_IMODE(st.st_mode) & ~0o007)
    except OSError:
        pass


def open_to_others(paths: Iterable[Path]) -> Iterator[tuple[Path, int]]:
    """Each file or directory under `paths` (and each path itself) that other users may
    read, write or enter, with its mode. Symbolic links are not followed."""
    for root in paths:
        if not root.exists():
            continue
        todo = [root]
        while todo:
            path = todo.pop()
            try:
                st = path.lstat()
            except OSError:
                continue
            if stat.S_ISLNK(st.st_mode):
                continue
            if st.st_mode & 0o007:
                yield path, stat.S_IMODE(st.st_mode)
            if stat.S_ISDIR(st.st_mode):
                try:
                    todo.extend(sorted(path.iterdir(), reverse=True))
                except OSError:
                    continue

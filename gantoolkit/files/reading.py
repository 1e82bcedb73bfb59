"""Opening the files a user names (checkpoints, directions, classifiers, TOML configs, weights, images): regular files
only. A named pipe, a device or a socket is refused before anything reads from it, so no command ever blocks on one,
and a symbolic link to a missing file is named as such. Torch-free, so the CLI modules may import it.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

_PICKLE_MAGIC = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")
#: bytes read to recognise a pickle of protocol 0 or 1 (which has no magic number)
PICKLE_SNIFF = 4096
#: opcodes a protocol 0 or 1 pickle starts with: MARK, EMPTY_LIST/DICT/TUPLE, GLOBAL, INT, LONG, FLOAT, STRING, UNICODE,
#: NONE, BININT*, BINSTRING, SHORT_BINSTRING, BINUNICODE, BINFLOAT, PERSID, BINPERSID
_OLD_PICKLE_START = frozenset(b"(])}cILFSVNJKMTUXGPQ")
_KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


class NotARegularFile(OSError):
    """The path names something other than a regular file or a folder (its `strerror` says what)."""


def open_regular(path: str | Path) -> BinaryIO:
    """`path` opened for reading in binary mode, when it is a regular file.

    It is opened without blocking (a FIFO with no writer would otherwise wait forever) and checked on the open
    descriptor, so what is checked is what is read. Raises IsADirectoryError, FileNotFoundError (its strerror names a
    dangling symbolic link), NotARegularFile, or the OSError of the open."""
    path = os.fspath(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        if os.path.islink(path):
            raise FileNotFoundError(errno.ENOENT, "it is a symbolic link to a missing file", path) from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "it is a folder, not a file", path)
        if not stat.S_ISREG(mode):
            what = next((name for test, name in _KINDS if test(mode)), "not a regular file")
            raise NotARegularFile(errno.EINVAL, f"it is {what}, not a regular file", path)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def check_regular(path: str | Path) -> None:
    """Raise as `open_regular` does when `path` is not a regular file (for libraries that open paths themselves)."""
    open_regular(path).close()


def pickle_protocol(head: bytes) -> int | None:
    """The protocol of the pickle `head` starts, or None when it is not one. Protocols 2-5 start with their magic
    number; protocols 0 and 1 are recognised by decoding their opcodes with `pickletools` (which only parses: it
    never imports or calls anything) until STOP, or to the end of `head` when the pickle is longer."""
    import pickletools

    if head.startswith(_PICKLE_MAGIC):
        return head[1]
    if not head or head[0] not in _OLD_PICKLE_START:
        return None
    count, binary = 0, False
    try:
        for opcode, _, _ in pickletools.genops(head):
            count += 1
            binary = binary or opcode.proto >= 1
            if opcode.name == "STOP":
                return 1 if binary else 0
    except ValueError:  # not opcodes, or `head` was cut inside a long pickle: many opcodes decoded say which
        pass
    return (1 if binary else 0) if len(head) >= PICKLE_SNIFF and count >= 8 else None

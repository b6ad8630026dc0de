"""Exclusive claims on output folders: one generation run per data folder, one training run per work dir.

`claim_folder(folder, purpose)` takes an advisory `flock` on the folder itself for as long as the `with` block
runs. A second claim on the same folder (another process, or another claim in this process) fails at once
with `FolderBusyError`, naming the holder's pid and command line when the system tells them. Nothing is
written into the folder for the claim (outputs stay byte-identical), and the kernel drops the lock when its
process ends in any way (kill -9 included), so a crash never leaves a stale lock to clean up by hand.
On a file system that cannot lock a directory (some NFS mounts) the claim falls back to a lock file
`<folder>/.occworld.lock` (same semantics; the readers of data folders ignore it).

Child processes: by default a forked child drops its copy of the claim at once (DataLoader workers must not
keep a work dir busy after their run). `claim_folder(..., children_hold=True)` is for children that WRITE into
the folder (generation workers): they keep the claim while they live, so a folder is never free while anything
still writes there; such children call `die_with_parent(pid)` first, so that they end with their run even when
it is killed with SIGKILL.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import signal
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from occworld_tokyo.errors import UserError

LOCK_NAME = ".occworld.lock"


class FolderBusyError(UserError):
    """Another run holds the folder."""


def _holder(fd: int) -> str:
    """'pid N: command line' of the process holding a flock on fd's inode (from /proc/locks), else ''."""
    try:
        st = os.fstat(fd)
        key = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
        with open("/proc/locks") as f:
            for line in f:
                parts = line.split()
                if len(parts) > 5 and parts[1] == "FLOCK" and parts[5] == key:
                    pid = parts[4]
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
                    return f"pid {pid}: {cmd[:200]}" if cmd else f"pid {pid}"
    except (OSError, ValueError):
        pass
    return ""


def _lock(fd: int, folder: Path, purpose: str) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd) or "another process"
        os.close(fd)
        raise FolderBusyError(
            f"{folder} is in use by another run ({holder}); two runs into one folder would mix their files. "
            f"Wait for it to finish, stop it, or choose another folder for this {purpose}") from None


@contextmanager
def claim_folder(folder: str | Path, purpose: str, *, children_hold: bool = False) -> Iterator[Path]:
    """Hold `folder` (created when missing) exclusively for the block; yields the folder. children_hold: forked
    children keep the claim while they live (module docstring)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise FolderBusyError(f"{folder} is a file, not a folder: choose a folder for the {purpose}")
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        _lock(fd, folder, purpose)
    except OSError as exc:  # the file system cannot flock a directory: use a lock file inside it
        if exc.errno not in (errno.EBADF, errno.ENOLCK, errno.EINVAL, errno.EOPNOTSUPP):
            raise
        os.close(fd)
        fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        _lock(fd, folder, purpose)
    # A flock belongs to the open file, which forked children (DataLoader workers, generation workers) share:
    # they close their copy at once, so the lock ends with THIS process even when it is killed before them.
    held = {"fd": fd}
    if not children_hold:
        os.register_at_fork(after_in_child=lambda: _close_quietly(held))
    try:
        yield folder
    finally:
        held["fd"] = None
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _close_quietly(held: dict) -> None:
    fd, held["fd"] = held["fd"], None
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass


PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Call first in a child process: the kernel kills it (SIGKILL) when its parent dies, however the parent ends
    (Linux prctl PR_SET_PDEATHSIG); a child whose parent is already gone exits at once."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)

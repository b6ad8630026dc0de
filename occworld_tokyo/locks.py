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

Shared folders (cluster array jobs): `claim_folder(..., shared=True)` lets several runs hold a folder at once
(while no exclusive claim is held), and `claim_names(folder, names, purpose)` then claims single items of it
(generation: the sessions a run will write) exclusively, so `--shard 0/2` and `--shard 1/2` write into one
folder together while two runs that would write the same session (identical runs, or shards of runs with another
n) cannot. The item claims are Linux open-file-description byte-range locks (`F_OFD_SETLK`, one byte per name at
an offset hashed from it) on `<folder>/.occworld.sessions.lock`: inherited by forked children like a flock, held
across machines on NFS, dropped by the kernel when the last process holding them ends. The last shared claimant
to leave removes the lock file (it then holds the folder alone), so finished folders hold only their sessions.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import hashlib
import os
import signal
import struct
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from occworld_tokyo.errors import UserError

LOCK_NAME = ".occworld.lock"
NAMES_LOCK_NAME = ".occworld.sessions.lock"
LOCK_FILES = (LOCK_NAME, NAMES_LOCK_NAME)  # what claims may leave in a folder (its readers ignore them)
NAMED_CLAIMS = hasattr(fcntl, "F_OFD_SETLK")  # Linux 3.15+: claims on single items of a shared folder


class FolderBusyError(UserError):
    """Another run holds the folder."""


class FolderNotWritableError(UserError):
    """The folder cannot be created or written (read-only file system, permissions)."""


def check_writable(folder: Path, what: str) -> None:
    """Refuse, before any work, a folder this process cannot write: an unnamed temporary file is created and
    dropped there (nothing stays; also true for root on a read-only mount, where permission bits say nothing)."""
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise FolderNotWritableError(f"{folder} is not writable ({exc.strerror or exc}), and {what} writes there: "
                                     "choose a folder you can write, or fix its permissions or mount") from None


def _cmdline(pid: str) -> str:
    try:
        return " ".join(Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").replace("\0", " ").split())
    except OSError:
        return ""


def _describe(pid: str) -> str:
    cmd = _cmdline(pid)
    return f"pid {pid}: {cmd[:200]}" if cmd else f"pid {pid}"


def _processes_locking(key: str, kind: str, start: int | None = None) -> list[str]:
    """Pids of the live processes whose open files hold a `kind` (FLOCK / OFDLCK) lock on inode `key`
    ('maj:min:ino'), starting at byte `start` when given (from /proc/<pid>/fdinfo; only this user's processes)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            infos = list((proc / "fdinfo").iterdir())
        except OSError:
            continue
        for info in infos:
            try:
                text = info.read_text()
            except OSError:
                continue
            for line in text.splitlines():
                parts = line.split()
                if (len(parts) > 6 and parts[0] == "lock:" and parts[2] == kind and parts[6] == key
                        and (start is None or parts[7] == str(start))):
                    pids.append(proc.name)
                    break
            if pids and pids[-1] == proc.name:
                break
    return pids


def _key(fd: int) -> str:
    st = os.fstat(fd)
    return f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"


def _holder(fd: int) -> str:
    """'pid N: command line' of the process holding a flock on fd's inode, else ''. /proc/locks names the process
    that took the lock; when that one has ended and a child it forked still holds the lock (a generation worker),
    the live holders are named, with the ended one."""
    try:
        key = _key(fd)
        with open("/proc/locks") as f:
            for line in f:
                parts = line.split()
                if len(parts) > 5 and parts[1] == "FLOCK" and parts[5] == key:
                    pid = parts[4]
                    if Path(f"/proc/{pid}").exists():
                        return _describe(pid)
                    live = [p for p in _processes_locking(key, "FLOCK") if p != str(os.getpid())]
                    if live:
                        return (", ".join(_describe(p) for p in live[:3])
                                + f", still running after the run that took the claim, pid {pid}, ended")
                    return f"pid {pid}, which has ended"
    except (OSError, ValueError):
        pass
    return ""


def _lock(fd: int, folder: Path, purpose: str, shared: bool = False) -> None:
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd) or "another process"
        os.close(fd)
        raise FolderBusyError(
            f"{folder} is in use by another run ({holder}); two runs into one folder would mix their files. "
            f"Wait for it to finish, stop it, or choose another folder for this {purpose}") from None


@contextmanager
def claim_folder(folder: str | Path, purpose: str, *, children_hold: bool = False,
                 shared: bool = False) -> Iterator[Path]:
    """Hold `folder` (created when missing) exclusively for the block; yields the folder. children_hold: forked
    children keep the claim while they live; shared: other shared claims may hold it too, exclusive ones not (then
    claim what is written with `claim_names`; module docstring)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise FolderBusyError(f"{folder} is a file, not a folder: choose a folder for the {purpose}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FolderNotWritableError(f"cannot create the folder {folder} for the {purpose} ({exc.strerror or exc}): "
                                     "choose a folder you can write, or fix its permissions or mount") from None
    check_writable(folder, f"the {purpose}")
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        _lock(fd, folder, purpose, shared)
    except OSError as exc:  # the file system cannot flock a directory: use a lock file inside it
        if exc.errno not in (errno.EBADF, errno.ENOLCK, errno.EINVAL, errno.EOPNOTSUPP):
            raise
        os.close(fd)
        fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        _lock(fd, folder, purpose, shared)
    # A flock belongs to the open file, which forked children (DataLoader workers, generation workers) share:
    # they close their copy at once, so the lock ends with THIS process even when it is killed before them.
    held = {"fd": fd}
    if not children_hold:
        os.register_at_fork(after_in_child=lambda: _close_quietly(held))
    try:
        yield folder
    finally:
        held["fd"] = None
        if shared:
            _remove_names_lock(fd, folder)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _remove_names_lock(fd: int, folder: Path) -> None:
    """The last shared claimant removes the item lock file: only when it gets the folder alone (every user of
    that file holds a shared claim first, so none can have it open)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return
    try:
        (folder / NAMES_LOCK_NAME).unlink(missing_ok=True)
    except OSError:
        pass


def _name_offset(name: str) -> int:
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=7).digest(), "big")


def _range_lock(fd: int, offset: int) -> bool:
    """Try an exclusive one-byte OFD lock at `offset`; False when another open file holds it."""
    try:
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, offset, 1, 0))
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


@contextmanager
def claim_names(folder: str | Path, names: list[str], purpose: str, fix: str, *,
                children_hold: bool = False) -> Iterator[None]:
    """Claim the items `names` of a folder held with `claim_folder(..., shared=True)` exclusively for the block
    (module docstring). Raises FolderBusyError, holding none of them, when another run holds any: the message
    names the item, the holder's pid where the system tells it, and `fix`."""
    folder = Path(folder)
    if not names or not NAMED_CLAIMS:  # without item locks the folder claim is exclusive (generate_sessions)
        yield
        return
    fd = os.open(folder / NAMES_LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        for i, name in enumerate(names):
            if not _range_lock(fd, _name_offset(name)):
                others = sum(1 for n in names[i + 1:] if not _probe(folder, n))
                try:
                    holders = [p for p in _processes_locking(_key(fd), "OFDLCK", _name_offset(name))
                               if p != str(os.getpid())]
                except OSError:
                    holders = []
                who = ", ".join(_describe(p) for p in holders[:3]) or "another process"
                more = f" (and {others} more of this run's)" if others else ""
                raise FolderBusyError(
                    f"{folder / name}{more} is being written by another run ({who}); two runs writing one "
                    f"{purpose} would mix their files. {fix}")
    except BaseException:
        os.close(fd)
        raise
    held = {"fd": fd}
    if not children_hold:
        os.register_at_fork(after_in_child=lambda: _close_quietly(held))
    try:
        yield
    finally:
        held["fd"] = None
        os.close(fd)


def _probe(folder: Path, name: str) -> bool:
    """Whether `name` of `folder` is free right now (a probe: the lock is taken and dropped on a new open file)."""
    fd = os.open(folder / NAMES_LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        return _range_lock(fd, _name_offset(name))
    finally:
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

"""An exclusive lock on a run directory, held by the process that trains (or itinfs) in it.

Two processes in one run directory would log every step twice and overwrite each other's
checkpoints. The lock is an flock(2) on `<run dir>/.lock`, which the kernel releases when its
holder exits in any way (also kill -9), so the lock of a dead process is simply taken over.
The file records the holder (host, pid, command) for the refusal message.
"""
import contextlib
import fcntl
import json
import os
import socket
import sys
import time

from absl import logging

LOCK_FILE = ".lock"


class RunLockedError(RuntimeError):
  """The run directory is locked by another live process."""


def _describe(holder):
  return (f"pid {holder.get('pid')} on {holder.get('host')} since {holder.get('started')} "
          f"({' '.join(holder.get('argv', []))[:200]})")


def _read_holder(fd):
  os.lseek(fd, 0, os.SEEK_SET)
  try:
    return json.loads(os.read(fd, 1 << 16).decode() or "null")
  except (UnicodeDecodeError, json.JSONDecodeError):
    return None


@contextlib.contextmanager
def hold(workdir):
  """Holds the lock of `workdir` for the block; RunLockedError if another process holds it."""
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, LOCK_FILE)
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = _read_holder(fd)
      raise RunLockedError(
          f"{workdir} is in use by another process: "
          f"{_describe(holder) if holder else 'unknown holder'}. Wait for it to finish, stop "
          f"it, or use another --xid/--workdir.") from None
    previous = _read_holder(fd)
    if previous:
      logging.info("Taking over the lock of %s from a process that ended: %s.", workdir,
                   _describe(previous))
    holder = dict(pid=os.getpid(), host=socket.gethostname(), argv=sys.argv,
                  started=time.strftime("%Y-%m-%d %H:%M:%S"))
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(holder).encode(), 0)
    try:
      yield
    finally:
      os.ftruncate(fd, 0)  # A clean exit leaves no holder behind.
  finally:
    os.close(fd)  # Releases the flock.

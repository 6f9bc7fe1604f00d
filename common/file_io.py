"""Atomic file writes (no TensorFlow, so result and plotting tools start fast)."""
import contextlib
import os
import uuid


@contextlib.contextmanager
def atomic_path(path):
  """Yields a temporary path next to `path`, renamed over `path` if the block succeeds.

  Readers never see a half-written file, and concurrent writers of the same content are
  safe. The temporary name starts with a dot so that globs like '*.png' skip it.
  """
  path = os.path.abspath(os.fspath(path))
  directory, base = os.path.split(path)
  os.makedirs(directory, exist_ok=True)
  temporary = os.path.join(directory, f".{base}.{uuid.uuid4().hex}.tmp")
  try:
    yield temporary
    os.replace(temporary, path)
  finally:
    if os.path.exists(temporary):
      os.remove(temporary)


def write_bytes_atomic(path, data):
  """Writes `data` to `path` atomically (see atomic_path); creates parent folders."""
  with atomic_path(path) as temporary:
    with open(temporary, "wb") as f:
      f.write(data)


def write_text_atomic(path, text):
  """Writes `text` to `path` atomically (see atomic_path); creates parent folders."""
  with atomic_path(path) as temporary:
    with open(temporary, "w") as f:
      f.write(text)

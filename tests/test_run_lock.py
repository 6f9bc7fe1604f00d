"""Run-directory lock: a second process is refused naming the holder; a dead holder's lock is
taken over. (Fast: no TensorFlow; about 1 s.)"""
import os
import signal
import subprocess
import sys

import pytest

from common import run_lock

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOLDER = ("import sys, time\n"
          "from common import run_lock\n"
          "with run_lock.hold(sys.argv[1]):\n"
          "  print('held', flush=True)\n"
          "  time.sleep(60)\n")


def start_holder(workdir):
  holder = subprocess.Popen([sys.executable, "-c", HOLDER, workdir], cwd=ROOT,
                            env=dict(os.environ, PYTHONPATH=ROOT), stdout=subprocess.PIPE,
                            text=True)
  assert holder.stdout.readline().strip() == "held"
  return holder


def test_second_holder_is_refused_naming_the_first(tmp_path):
  workdir = str(tmp_path / "run")
  holder = start_holder(workdir)
  try:
    with pytest.raises(run_lock.RunLockedError, match=f"in use by another process: pid "
                       f"{holder.pid} on "):
      with run_lock.hold(workdir):
        pass
  finally:
    holder.kill()
    holder.wait()


def test_lock_of_a_killed_process_is_taken_over(tmp_path):
  workdir = str(tmp_path / "run")
  holder = start_holder(workdir)
  os.kill(holder.pid, signal.SIGKILL)
  holder.wait()
  with run_lock.hold(workdir):
    with pytest.raises(run_lock.RunLockedError, match=f"pid {os.getpid()} "):
      with run_lock.hold(workdir):  # Also within one process.
        pass
  with run_lock.hold(workdir):  # Released at the end of the block.
    pass
  assert open(os.path.join(workdir, run_lock.LOCK_FILE)).read() == ""

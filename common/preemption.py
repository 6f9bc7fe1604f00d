"""Stopping a long run cleanly on a signal: save progress, then exit or ask to be requeued.

SIGTERM (Slurm's time limit or preemption, `kill`) and SIGINT (Ctrl-C) ask the run to save and
stop. SIGUSR1 is the warning that Slurm sends before a job's time limit (`#SBATCH --signal`,
see slurm_template.py): the run saves and exits with EXIT_REQUEUE, on which the job script
requeues the task, which then resumes from what was saved.
"""
import signal

# EX_TEMPFAIL: "try again later"; the Slurm job script requeues a task that exits with it.
EXIT_REQUEUE = 75
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
REQUEUE_SIGNALS = (signal.SIGUSR1,)


class StopRequest:
  """Context manager recording stop/requeue signals instead of dying of them.

  A second Ctrl-C raises KeyboardInterrupt at once (for a user who does not want to wait for
  the save). The previous handlers come back on exit.
  """

  def __init__(self):
    self.signal = None
    self._previous = {}

  def __enter__(self):
    for signum in STOP_SIGNALS + REQUEUE_SIGNALS:
      self._previous[signum] = signal.signal(signum, self._handle)
    return self

  def __exit__(self, *exc_info):
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)

  def _handle(self, signum, frame):
    del frame
    if signum == signal.SIGINT and self.signal == signal.SIGINT:
      raise KeyboardInterrupt
    if self.signal is None or signum in REQUEUE_SIGNALS:
      self.signal = signal.Signals(signum)

  @property
  def requested(self):
    return self.signal is not None

  @property
  def requeue(self):
    return self.signal in REQUEUE_SIGNALS

  def exit_code(self):
    """What the process should exit with after saving: 0 if no signal came."""
    if self.signal is None:
      return 0
    return EXIT_REQUEUE if self.requeue else 128 + int(self.signal)


class Stopped(Exception):
  """A loop stopped on a signal, its finished work kept; exit with `exit_code`."""

  def __init__(self, message, exit_code):
    super().__init__(message)
    self.exit_code = exit_code

"""pytest fixture `slurm_cluster`: a real one-node Slurm cluster for the whole test session.

munged, slurmctld and slurmd (Debian packages slurmctld slurmd slurm-client munge) run as the
current user from a private short dir under /tmp, with their own munge key and socket, their
own slurm.conf and free ports; nothing under /etc is read or written. The node advertises 2 CPUs
so two 1-CPU tasks run at once. Missing packages are installed the way .ci/run does
(.ci/install_slurm, when run as root or with password-less sudo); if that is impossible the
cluster tests are skipped with one line saying what to install. Once installed, a daemon that
does not come up fails the requesting test with the daemon log tails (never a skip), because a
silently skipped cluster test would hide a broken launcher.
"""
import dataclasses
import getpass
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

SBIN = Path("/usr/sbin")
INSTALLER = Path(__file__).resolve().parent.parent / ".ci" / "install_slurm"
INSTALL_TIMEOUT_S = 900
DAEMONS = ("munged", "mungekey", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scontrol", "scancel", "sinfo")
INSTALL_HINT = "apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge"
NODE_CPUS = 2

# 22.05 knobs: no cgroups (linuxproc, task/none) so no privileges are needed; jobcomp/filetxt keeps
# one record per finished task (sacct needs slurmdbd); batch_sched_delay=0 starts tasks at once;
# config_overrides keeps the node usable when CPUs/memory differ from the hardware.
SLURM_CONF = """\
ClusterName=pytest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser={user}
SlurmdUser={user}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge_socket}
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={jobcomp}
MailProg=/bin/true
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=300
StateSaveLocation={dir}/state
SlurmdSpoolDir={dir}/spool
SlurmctldPidFile={dir}/slurmctld.pid
SlurmdPidFile={dir}/slurmd.pid
SlurmctldLogFile={dir}/log/slurmctld.log
SlurmdLogFile={dir}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem_mb} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


class ClusterError(RuntimeError):
  """The cluster misbehaved; the message includes the daemon log tails."""


def _free_port(taken=()):
  while True:
    with socket.socket() as s:
      s.bind(("127.0.0.1", 0))
      port = s.getsockname()[1]
    if port not in taken:
      return port


def _tail(path: Path, lines: int = 15) -> str:
  if not path.exists():
    return f"--- {path.name}: (missing)"
  text = path.read_text(errors="replace").splitlines()[-lines:]
  return f"--- {path.name} (last {len(text)} lines):\n" + "\n".join(text)


@dataclasses.dataclass
class SlurmCluster:
  """A running cluster; pass `env` (it has SLURM_CONF) to every Slurm client call."""
  dir: Path
  env: dict
  procs: dict  # daemon name -> Popen, in start order

  def log_tails(self) -> str:
    logs = sorted((self.dir / "log").glob("*"))
    return "\n".join(_tail(p) for p in logs)

  def check_alive(self):
    dead = {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}
    if dead:
      raise ClusterError(f"Slurm daemons exited (name: exit code) {dead}\n{self.log_tails()}")

  def wait_until(self, predicate, timeout_s: float, what: str):
    end = time.monotonic() + timeout_s
    while not predicate():
      self.check_alive()
      if time.monotonic() > end:
        raise ClusterError(f"Timed out after {timeout_s} s waiting for {what}.\n"
                           f"{self.log_tails()}")
      time.sleep(0.3)

  def client(self, *cmd) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=self.env, capture_output=True, text=True)

  def task_records(self, job_id: str) -> dict:
    """ArrayTaskId -> {JobState, ExitCode, ...} of finished tasks, from the jobcomp file.

    The jobcomp file survives the purge of finished jobs from slurmctld's memory (MinJobAge)
    and, unlike sacct, works without slurmdbd.
    """
    jobcomp = self.dir / "log/jobcomp.txt"
    records = {}
    if jobcomp.exists():
      for line in jobcomp.read_text().splitlines():
        fields = dict(re.findall(r"(\w+)=(\S*)", line))
        if fields.get("ArrayJobId") == job_id:
          records[int(fields["ArrayTaskId"])] = fields
    return records

  def wait_for_array(self, job_id: str, num_tasks: int, timeout_s: float) -> dict:
    """Waits until all tasks of the array job left the queue; returns task_records."""
    try:
      self.wait_until(
          lambda: (not self.client("squeue", "-h", "-j", job_id).stdout.strip()
                   and len(self.task_records(job_id)) == num_tasks),
          timeout_s, f"the {num_tasks} tasks of array job {job_id} to finish")
    except ClusterError as e:
      queue = self.client("squeue", "-j", job_id, "-o", "%i %T %r").stdout
      raise ClusterError(f"{e}\nQueue (job, state, reason):\n{queue}") from None
    return self.task_records(job_id)


def _start(cluster: SlurmCluster):
  d = cluster.dir
  munge_socket, munge_key = d / "munge/munge.sock", d / "munge/munge.key"
  mem_mb = int(int(Path("/proc/meminfo").read_text().split()[1]) / 1024 * 0.9)
  ctld_port = _free_port()
  conf = d / "slurm.conf"
  conf.write_text(SLURM_CONF.format(
      ctld_port=ctld_port, slurmd_port=_free_port(taken=(ctld_port,)), user=getpass.getuser(),
      munge_socket=munge_socket, jobcomp=d / "log/jobcomp.txt", dir=d, cpus=NODE_CPUS,
      mem_mb=mem_mb))

  def spawn(name, *args):
    with open(d / f"log/{name}.out", "wb") as out:
      cluster.procs[name] = subprocess.Popen(
          [str(SBIN / name), *args], stdout=out, stderr=subprocess.STDOUT,
          stdin=subprocess.DEVNULL, env=cluster.env)

  keygen = subprocess.run([str(SBIN / "mungekey"), "--create", f"--keyfile={munge_key}"],
                          capture_output=True, text=True)
  if keygen.returncode != 0:
    raise ClusterError(f"mungekey failed: {keygen.stderr.strip()}")
  spawn("munged", "-F", f"--socket={munge_socket}", f"--key-file={munge_key}",
        f"--pid-file={d}/munge/munged.pid", f"--log-file={d}/log/munged.log",
        f"--seed-file={d}/munge/munged.seed")
  cluster.wait_until(munge_socket.exists, 10, "the munged socket")
  spawn("slurmctld", "-D", "-f", str(conf))
  cluster.wait_until(lambda: cluster.client("scontrol", "ping").returncode == 0, 30,
                     "slurmctld to answer scontrol ping")
  spawn("slurmd", "-D", "-f", str(conf), "-N", "localhost")
  cluster.wait_until(
      lambda: cluster.client("sinfo", "-h", "-n", "localhost", "-o", "%T").stdout.strip() == "idle",
      30, "node localhost to become idle")


def _stop(cluster: SlurmCluster):
  if "slurmctld" in cluster.procs and cluster.procs["slurmctld"].poll() is None:
    cluster.client("scancel", "-u", getpass.getuser())
    end = time.monotonic() + 20  # let slurmd reap the steps so no slurmstepd outlives it
    while cluster.client("squeue", "-h").stdout.strip() and time.monotonic() < end:
      time.sleep(0.3)
  for proc in reversed(list(cluster.procs.values())):  # by PID, in reverse start order
    proc.terminate()
    try:
      proc.wait(10)
    except subprocess.TimeoutExpired:
      proc.kill()
      proc.wait()
  shutil.rmtree(cluster.dir, ignore_errors=True)


def _missing_programs():
  return ([n for n in DAEMONS if not (SBIN / n).exists()] +
          [n for n in CLIENTS if shutil.which(n) is None])


def _install_or_skip():
  """Installs Slurm with .ci/install_slurm when missing; skips the cluster tests if it cannot."""
  if not _missing_programs():
    return
  try:
    install = subprocess.run([str(INSTALLER)], capture_output=True, text=True,
                             timeout=INSTALL_TIMEOUT_S)
    reason = (install.stderr.strip().splitlines() or [f"exit code {install.returncode}"])[-1]
  except (OSError, subprocess.TimeoutExpired) as e:
    reason = str(e)
  missing = _missing_programs()
  if missing:
    pytest.skip(f"Slurm cluster tests skipped: missing {', '.join(missing)} and could not "
                f"install them ({reason}); install with: {INSTALL_HINT}")


@pytest.fixture(scope="session")
def slurm_cluster():
  _install_or_skip()
  # Short path (unix sockets are limited to 108 bytes) and mode 0755 on every level (munged
  # refuses a socket dir its clients cannot traverse), hence not pytest's tmp_path.
  d = Path(tempfile.mkdtemp(prefix="slurm.", dir="/tmp"))
  d.chmod(0o755)
  for sub in ("munge", "state", "spool", "log"):
    (d / sub).mkdir(mode=0o755)
  # Slurm variables of an enclosing job would redirect our client calls.
  env = {k: v for k, v in os.environ.items()
         if not k.startswith(("SLURM_", "SBATCH_", "SRUN_", "SALLOC_"))}
  env["SLURM_CONF"] = str(d / "slurm.conf")
  cluster = SlurmCluster(dir=d, env=env, procs={})
  try:
    try:
      _start(cluster)
    except ClusterError as e:  # its message has the log tails
      pytest.fail(f"The local Slurm cluster did not start: {e}", pytrace=False)
    except OSError as e:
      pytest.fail(f"The local Slurm cluster did not start: {e}\n{cluster.log_tails()}",
                  pytrace=False)
    yield cluster
  finally:
    _stop(cluster)

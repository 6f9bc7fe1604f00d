"""The sbatch array-job template, and the launching code that launch.py and launch_eval.py share.

A sweep is N runs of `python -m MAIN ...` that differ in one per-task argument: `--hid i` for
training and iterative inference, `--workdir W_i` for evaluation. It becomes one Slurm array job
(`--array=0-(N-1)`), or with --local N sequential subprocesses with the same command lines.

Every launch gets a job dir `configs.SLURM_JOBS_DIR/<timestamp>-<job name>/` holding what queued
tasks read (config snapshot, workdir list), so later edits cannot change them, plus the script,
the task logs (`logs/<array job id>_<task>.out`, appended to by requeued runs), `done/<task>`
for each task that exited 0, and `launch.json` (job id, command line, tasks, resubmissions).
After submission a symlink `configs.SLURM_JOBS_DIR/<job id>` points to it.

Time limits and preemption: training and itinf tasks get `--requeue` and `--signal=USR1@S`
(--signal_before_limit); on that signal they checkpoint and exit with preemption.EXIT_REQUEUE,
and the script requeues the task, which resumes. `launch.py --resume JOBDIR` resubmits the
tasks without a `done/` file. Run dirs do not depend on the job id, so a requeued or
resubmitted task continues its run.

Tasks inherit the submitting shell's environment (`--export=ALL`), so SLURM_ARRAY_TASK_ID
reaches the Python process. Nothing site-specific is built in: resources come from the flags
below, whose defaults come from NTC_SLURM_* environment variables.
"""
import datetime
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from absl import flags
from absl import logging

import configs
from common import preemption


def _env(name: str, default: Optional[str] = None) -> Optional[str]:
  return os.environ.get(f"NTC_SLURM_{name}", default)


# The flags defined here, which every launcher's --help lists.
FLAG_NAMES = ("args", "sargs", "dry_run", "local", "job_name", "partition", "gres",
              "cpus_per_task", "mem", "time", "setup", "python", "signal_before_limit")

flags.DEFINE_string("args", "", "Extra arguments appended to every task's command line, e.g. "
                    "'--config.train_eval_config.num_steps=1000'.")
flags.DEFINE_string("sargs", "", "Extra arguments for sbatch itself, e.g. '--qos=long --nice=10'.")
flags.DEFINE_bool("dry_run", False, "Print the script (or with --local the commands) and exit.")
flags.DEFINE_bool("local", False, "Run the tasks here one after another, without Slurm.")
flags.DEFINE_string("job_name", _env("JOB_NAME"),
                    "Slurm job name [NTC_SLURM_JOB_NAME; default derived from --main and input].")
flags.DEFINE_string("partition", _env("PARTITION"), "Slurm partition [NTC_SLURM_PARTITION].")
flags.DEFINE_string("gres", _env("GRES"), "Generic resources, e.g. gpu:1 [NTC_SLURM_GRES].")
flags.DEFINE_integer("cpus_per_task", _env("CPUS_PER_TASK", "4"),
                     "CPUs per task [NTC_SLURM_CPUS_PER_TASK].", lower_bound=1)
flags.DEFINE_string("mem", _env("MEM", "16G"),
                    "Memory per node; empty = cluster default [NTC_SLURM_MEM].")
flags.DEFINE_string("time", _env("TIME"), "Time limit, e.g. 2-00:00:00 [NTC_SLURM_TIME].")
flags.DEFINE_string("setup", _env("SETUP", ""),
                    "Shell lines run before each task, e.g. 'module load cuda; "
                    "source .venv/bin/activate' [NTC_SLURM_SETUP].")
flags.DEFINE_string("python", _env("PYTHON", sys.executable),
                    "Python interpreter the tasks run [NTC_SLURM_PYTHON; default: this one].")
flags.DEFINE_integer("signal_before_limit", _env("SIGNAL_BEFORE_LIMIT", "300"),
                     "Seconds before the time limit at which Slurm warns a training task "
                     "(SIGUSR1), which then checkpoints and requeues itself "
                     "[NTC_SLURM_SIGNAL_BEFORE_LIMIT].", lower_bound=1)

FLAGS = flags.FLAGS

# Directives are parsed by sbatch, not bash, so values are inserted verbatim; paths in them are
# checked for whitespace instead of quoted.
TEMPLATE = """\
#!/bin/bash
# {description}
#SBATCH --job-name={job_name}
#SBATCH --array=0-{last_task}
#SBATCH --output={log_dir}/%A_%a.out
#SBATCH --chdir={project_dir}
#SBATCH --export=ALL
#SBATCH --open-mode=append
{task_directives}
#SBATCH --cpus-per-task={cpus_per_task}
{resource_directives}
set -eo pipefail
{setup}
echo "array job $SLURM_ARRAY_JOB_ID task $SLURM_ARRAY_TASK_ID (job $SLURM_JOB_ID, start \
$((${{SLURM_RESTART_COUNT:-0}} + 1))) on $(hostname) at $(date -u +%FT%TZ)"
status=0
# Slurm 22.05-23.02 do not pass sbatch's --cpus-per-task on to srun, hence repeated here.
srun --ntasks={nodes} --cpus-per-task={cpus_per_task} {command} || status=$?
{on_exit}
"""
# A task that exits with this status saved its progress after the warning signal: requeue it
# (same array job and task id; it resumes from its checkpoint).
REQUEUE_ON_EXIT = """if [ "$status" -eq {exit_requeue} ]; then
  echo "task saved its progress before the time limit; requeueing job $SLURM_JOB_ID"
  scontrol requeue "$SLURM_JOB_ID"
  exit 0
fi
"""
MARK_DONE = """if [ "$status" -eq 0 ]; then touch {done_dir}/"$SLURM_ARRAY_TASK_ID"; fi
exit "$status"
"""

TASK_INDEX = '"$SLURM_ARRAY_TASK_ID"'
DONE_SUBDIR = "done"


def task_value_from_file(path: Path) -> str:
  """Shell expression for line number SLURM_ARRAY_TASK_ID (0-based) of `path`."""
  return f'"$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" {shlex.quote(str(path))})"'


def render_script(*, description: str, job_name: str, num_tasks: int, log_dir: Path,
                  done_dir: Path, project_dir: Path, command: str, cpus_per_task: int,
                  mem: Optional[str], time: Optional[str], partition: Optional[str],
                  gres: Optional[str], setup: str,
                  requeue_signal_before_s: Optional[int] = None, nodes: int = 1) -> str:
  """Fills TEMPLATE; `command` is a shell command line that may use SLURM_ARRAY_TASK_ID.

  A task that exits with 0 leaves an empty file `done_dir/<task id>` (what `launch.py
  --resume` skips). requeue_signal_before_s: Slurm sends SIGUSR1 that many seconds before the
  time limit, and a task exiting with preemption.EXIT_REQUEUE is requeued. nodes > 1: each
  array task is one process per node (multi-worker training).
  """
  if num_tasks < 1:
    raise ValueError(f"An array job needs at least one task, got {num_tasks}.")
  for what, path in (("log dir", log_dir), ("done dir", done_dir),
                     ("project dir", project_dir)):
    if any(c.isspace() for c in str(path)):
      raise ValueError(f"The {what} {str(path)!r} contains whitespace, which #SBATCH lines "
                       "cannot carry; choose another NTC_SLURM_JOBS_DIR or project location.")
  optional = {"mem": mem, "time": time, "partition": partition, "gres": gres}
  directives = [f"#SBATCH --{k}={v}" for k, v in optional.items() if v]
  on_exit = MARK_DONE.format(done_dir=done_dir)
  if requeue_signal_before_s:
    directives += ["#SBATCH --requeue", f"#SBATCH --signal=USR1@{requeue_signal_before_s}"]
    on_exit = REQUEUE_ON_EXIT.format(exit_requeue=preemption.EXIT_REQUEUE) + on_exit
  task_directives = ("#SBATCH --ntasks=1" if nodes == 1 else
                     f"#SBATCH --nodes={nodes}\n#SBATCH --ntasks-per-node=1")
  return TEMPLATE.format(
      task_directives=task_directives,
      nodes=nodes,
      description=description,
      job_name=job_name,
      last_task=num_tasks - 1,
      log_dir=log_dir,
      project_dir=project_dir,
      cpus_per_task=cpus_per_task,
      resource_directives="\n".join(directives),
      setup=setup,
      command=command,
      on_exit=on_exit.rstrip())


def new_job_dir(job_name: str, create: bool) -> Path:
  """A fresh `SLURM_JOBS_DIR/<timestamp>-<job_name>` (suffixed -2, -3... if taken)."""
  if not re.fullmatch(r"[A-Za-z0-9._=+-]+", job_name):
    raise ValueError(f"Job name {job_name!r} may only contain letters, digits and ._=+-")
  base = Path(configs.SLURM_JOBS_DIR).resolve()
  stem = f"{datetime.datetime.now():%Y%m%d-%H%M%S}-{job_name}"
  for n in range(1, 1000):
    path = base / (stem if n == 1 else f"{stem}-{n}")
    if not create:
      if path.exists():
        continue
      return path
    try:
      path.mkdir(parents=True)
      return path
    except FileExistsError:
      continue
  raise RuntimeError(f"No free job dir name {stem}-N under {base}.")


def default_job_name(main: str, what: str) -> str:
  """E.g. ('mshyper.train', 'quickstart') -> 'train-quickstart'; odd characters become '_'."""
  what = re.sub(r"[^A-Za-z0-9._=+-]+", "_", what).strip("_")[:40]
  return f"{main.rsplit('.', 1)[-1]}-{what}"


def launch_sweep(*, job_dir: Path, main: str, job_name: str, description: str,
                 fixed_args: Sequence[str], task_flag: str, num_tasks: int,
                 task_values: Optional[Sequence[str]] = None, files: Mapping[str, bytes],
                 record: Mapping[str, Any], local_one_process: bool = False,
                 requeue: bool = False, gres: Optional[str] = None,
                 nodes: int = 1) -> Optional[str]:
  """Submits (or runs locally / prints) `python -m main *fixed_args task_flag VALUE *FLAGS.args`.

  `job_dir` comes from new_job_dir (created unless --dry_run). VALUE is the task index, or
  `task_values[index]` when given: those are stored in the job dir as task_values.txt, from which
  each Slurm task reads its line. `files` (name -> content) are snapshot into the job dir;
  `record` is added to launch.json. Returns the Slurm job id (None for --local and --dry_run).
  local_one_process: `main` takes `task_flag` repeatedly, so --local runs all tasks as one
  process (`task_flag V0 task_flag V1 ...`), which pays start-up and shared work once.
  requeue: `main` saves and exits with preemption.EXIT_REQUEUE on SIGUSR1, so the job asks for
  that signal before its time limit and requeues such tasks. gres: the generic resources
  (default: --gres). nodes: processes (one per node) of each task.
  """
  if task_values is not None:
    if len(task_values) != num_tasks:
      raise ValueError(f"{len(task_values)} task values for {num_tasks} tasks.")
    bad = [v for v in task_values if "\n" in v or not v]
    if bad:
      raise ValueError(f"Task values must be non-empty single lines, got {bad!r}.")
  extra_args = shlex.split(FLAGS.args)
  sbatch_args = shlex.split(FLAGS.sargs)
  project_dir = Path(configs.PROJECT_DIR).resolve()
  values_file = job_dir / "task_values.txt"
  prefix = [FLAGS.python, "-m", main, *fixed_args, task_flag]

  def task_argv(index: int) -> list[str]:
    value = str(index) if task_values is None else task_values[index]
    return [*prefix, value, *extra_args]

  if FLAGS.local and local_one_process:
    values = [str(i) for i in range(num_tasks)] if task_values is None else task_values
    local_argvs = [[*prefix[:-1], *(a for v in values for a in (task_flag, v)), *extra_args]]
  else:
    local_argvs = [task_argv(index) for index in range(num_tasks)]

  files = dict(files)
  if task_values is not None:
    files[values_file.name] = "".join(f"{v}\n" for v in task_values).encode()
  script = render_script(
      description=description,
      job_name=job_name,
      num_tasks=num_tasks,
      log_dir=job_dir / "logs",
      done_dir=job_dir / DONE_SUBDIR,
      project_dir=project_dir,
      command=" ".join([
          shlex.join(prefix),
          TASK_INDEX if task_values is None else task_value_from_file(values_file),
          shlex.join(extra_args)]).rstrip(),
      cpus_per_task=FLAGS.cpus_per_task,
      mem=FLAGS.mem,
      time=FLAGS.time,
      partition=FLAGS.partition,
      gres=gres or FLAGS.gres,
      setup=FLAGS.setup,
      requeue_signal_before_s=FLAGS.signal_before_limit if requeue else None,
      nodes=nodes)
  script_path = job_dir / "job.sbatch"

  if FLAGS.dry_run:
    if FLAGS.local:
      for argv in local_argvs:
        print(f"(cd {shlex.quote(str(project_dir))} && {shlex.join(argv)})")
    else:
      print("# " + shlex.join(["sbatch", "--parsable", *sbatch_args, str(script_path)]))
      print(script, end="")
    return None

  for name, content in files.items():
    (job_dir / name).write_bytes(content)
  script_path.write_text(script)
  launch_info = {
      "job_id": None,
      "mode": "local" if FLAGS.local else "slurm",
      "launched_at": datetime.datetime.now().isoformat(timespec="seconds"),
      "command_line": [sys.executable, *sys.argv],
      "script": str(script_path),
      "sbatch_args": sbatch_args,
      "tasks": [{"task": i, "argv": task_argv(i)} for i in range(num_tasks)],
      **({"local_processes": local_argvs} if FLAGS.local else {}),
      **record,
  }
  info_path = job_dir / "launch.json"

  def write_info():
    info_path.write_text(json.dumps(launch_info, indent=2, default=repr) + "\n")

  write_info()
  if FLAGS.local:
    _run_locally(local_argvs, project_dir)
    return None

  (job_dir / "logs").mkdir()  # Slurm does not create the --output dir
  (job_dir / DONE_SUBDIR).mkdir()
  job_id = _sbatch(script_path, sbatch_args, job_dir)
  launch_info["job_id"] = job_id
  write_info()
  link = _link_job_id(job_dir, job_id)
  print(f"Submitted array job {job_id} ({num_tasks} tasks of {main}); "
        f"job dir {link} -> {job_dir.name}, logs {job_dir / 'logs'}/{job_id}_<task>.out")
  return job_id


def resume(job_dir: Path) -> Optional[str]:
  """Resubmits the tasks of a launched job dir that have not finished; returns the new job id.

  Finished = exited 0 (a file in `done/`). Refused while a job of this dir is still queued or
  running, which would run a task twice at once. The runs themselves continue from their
  checkpoints (their run dirs do not depend on the job id).
  """
  info_path = job_dir / "launch.json"
  if not info_path.is_file():
    raise ValueError(f"{job_dir} is not a job dir (no launch.json).")
  info = json.loads(info_path.read_text())
  if info.get("mode") != "slurm" or not info.get("job_id"):
    raise ValueError(f"{job_dir} was not submitted to Slurm (mode {info.get('mode')!r}).")
  done = {int(p.name) for p in (job_dir / DONE_SUBDIR).iterdir() if p.name.isdigit()}
  todo = [t["task"] for t in info["tasks"] if t["task"] not in done]
  if not todo:
    print(f"All {len(info['tasks'])} tasks of {job_dir} finished; nothing to resubmit.")
    return None
  job_ids = [info["job_id"], *(r["job_id"] for r in info.get("resubmissions", []))]
  active = [j for j in job_ids if _queued(j)]
  if active:
    raise RuntimeError(f"Job(s) {', '.join(active)} of {job_dir} are still queued or running; "
                       "wait for them (or scancel them) before resuming.")
  array = ",".join(str(t) for t in todo)
  sbatch_args = [*info["sbatch_args"], *shlex.split(FLAGS.sargs), f"--array={array}"]
  job_id = _sbatch(Path(info["script"]), sbatch_args, job_dir)
  info.setdefault("resubmissions", []).append(dict(
      job_id=job_id, tasks=todo, sbatch_args=sbatch_args,
      submitted_at=datetime.datetime.now().isoformat(timespec="seconds")))
  info_path.write_text(json.dumps(info, indent=2, default=repr) + "\n")
  link = _link_job_id(job_dir, job_id)
  print(f"Resubmitted {len(todo)} unfinished of {len(info['tasks'])} tasks ({array}) as array "
        f"job {job_id}; job dir {link} -> {job_dir.name}")
  return job_id


def _queued(job_id: str) -> bool:
  """Whether Slurm still has a pending or running task of `job_id` (unknown ids: no)."""
  proc = subprocess.run(["squeue", "-h", "-o", "%i", "-j", job_id], capture_output=True,
                        text=True)
  return proc.returncode == 0 and bool(proc.stdout.strip())


def _link_job_id(job_dir: Path, job_id: str) -> Path:
  link = job_dir.parent / job_id
  tmp_link = job_dir.parent / f".{job_id}.tmp"
  tmp_link.unlink(missing_ok=True)
  tmp_link.symlink_to(job_dir.name)
  os.replace(tmp_link, link)  # a job id reused by a reinstalled cluster points to the newer job
  return link


def _sbatch(script_path: Path, sbatch_args: Sequence[str], job_dir: Path) -> str:
  if shutil.which("sbatch") is None:
    raise RuntimeError("sbatch not found on PATH: run this on a Slurm submit host, or pass "
                       "--local to run the tasks here without Slurm.")
  cmd = ["sbatch", "--parsable", *sbatch_args, str(script_path)]
  proc = subprocess.run(cmd, capture_output=True, text=True)
  if proc.returncode != 0:
    raise RuntimeError(f"{shlex.join(cmd)} failed with exit code {proc.returncode}:\n"
                       f"{proc.stderr.strip()}\n(the unsubmitted job dir is {job_dir})")
  # --parsable prints "<id>" or "<id>;<cluster>"
  return proc.stdout.strip().split(";")[0]


def _run_locally(argvs: Sequence[Sequence[str]], project_dir: Path) -> None:
  failed = []
  for index, argv in enumerate(argvs):
    logging.info("Local process %d/%d: %s", index + 1, len(argvs), shlex.join(argv))
    code = subprocess.run(argv, cwd=project_dir).returncode
    if code != 0:
      logging.error("Local process %d exited with code %d.", index, code)
      failed.append((index, code))
  if failed:
    raise RuntimeError(f"{len(failed)} of {len(argvs)} local processes failed (process, exit "
                       f"code): {failed}")

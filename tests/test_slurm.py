"""launch.py / launch_eval.py: rendered scripts, --local, and sweeps on a real local Slurm cluster.

The cluster tests use the `slurm_cluster` fixture (tests/slurm_cluster.py): 1 node, 2 CPUs,
tasks of 1 CPU each with TensorFlow limited to one thread, so two tasks run at once.
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from slurm_cluster import ClusterError

REPO = Path(__file__).resolve().parents[1]
DUMMY_MAIN = "tests.slurm_dummy_main"
QUICKSTART = REPO / "mshyper/configs/quickstart.py"
ONE_THREAD = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
              "OMP_NUM_THREADS": "1"}
SWEEP_CONFIG = """\
import ml_collections


def get_config():
  return ml_collections.ConfigDict({{"model_config": {{"rd_lambda": 0.01}}}})


def get_hyper():
  return [{{"model_config.{key}": v}} for v in {lambdas}]


def get_cfg_str(config):
  return f"rd_lambda={{config.model_config.rd_lambda}}"
"""


def launcher_env(jobs_dir, base=None, **extra):
  """A launcher's environment: `base` (default: os.environ without Slurm variables) without
  NTC_SLURM_* resource defaults, plus NTC_SLURM_JOBS_DIR=jobs_dir and one TF thread per task."""
  if base is None:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("SLURM_", "SBATCH_", "SRUN_", "SALLOC_"))}
  env = {k: v for k, v in base.items() if not k.startswith("NTC_SLURM_")}
  env.update(NTC_SLURM_JOBS_DIR=str(jobs_dir), **ONE_THREAD, **extra)
  return env


def run_launcher(script, *args, env):
  return subprocess.run([sys.executable, str(REPO / script), *args], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=600)


def write_sweep_config(path, lambdas, key="rd_lambda"):
  path.write_text(SWEEP_CONFIG.format(lambdas=list(lambdas), key=key))
  return path


def submitted(jobs_dir):
  """(job id, job dir, launch.json) of the one job submitted into `jobs_dir`."""
  links = [p for p in jobs_dir.iterdir() if p.is_symlink()]
  assert len(links) == 1, f"expected one <job id> link in {jobs_dir}: {list(jobs_dir.iterdir())}"
  job_dir = links[0].resolve()
  info = json.loads((job_dir / "launch.json").read_text())
  assert info["job_id"] == links[0].name
  return links[0].name, job_dir, info


def task_logs(job_dir, head=2000, tail=4000):
  """The task logs, each cut to its start and end (a traceback's first and last frames)."""
  parts = []
  for path in sorted((job_dir / "logs").glob("*.out")):
    text = path.read_text(errors="replace")
    if len(text) > head + tail:
      text = f"{text[:head]}\n[... {len(text) - head - tail} characters ...]\n{text[-tail:]}"
    parts.append(f"--- {path.name}:\n{text}")
  return "\n".join(parts)


def wait_for_success(cluster, jobs_dir, launch, timeout_s):
  """Waits for the job that `launch` (a finished launcher process) submitted into `jobs_dir`;
  fails with the task logs unless every task completed with exit code 0."""
  assert launch.returncode == 0, launch.stderr
  job_id, job_dir, info = submitted(jobs_dir)
  num_tasks = len(info["tasks"])
  try:
    records = cluster.wait_for_array(job_id, num_tasks, timeout_s)
  except ClusterError as e:  # timeout or dead daemon: show what the tasks printed too
    pytest.fail(f"{e}\n{task_logs(job_dir)}", pytrace=False)
  states = {t: (r["JobState"], r["ExitCode"]) for t, r in records.items()}
  if any(state != ("COMPLETED", "0:0") for state in states.values()):
    pytest.fail(f"array job {job_id} tasks (state, exit code): {states}\n{task_logs(job_dir)}",
                pytrace=False)
  return job_id, job_dir


def test_launch_dry_run_renders_array_script(tmp_path):
  config = write_sweep_config(tmp_path / "sweep.py", [0.04, 0.02, 0.01])
  env = launcher_env(tmp_path / "jobs", NTC_SLURM_PARTITION="envpart")
  out = run_launcher(
      "launch.py", "--main", "mshyper.train", "--config", str(config), "--dry_run",
      "--args", "--experiments_dir /x/exp --config.train_eval_config.num_steps=3",
      "--sargs", "--qos=long", "--gres", "gpu:1", "--cpus_per_task", "3", "--mem", "2G",
      "--time", "01:00:00", "--job_name", "myjob", "--setup", "source .venv/bin/activate",
      env=env)
  assert out.returncode == 0, out.stderr
  script = out.stdout
  lines = script.splitlines()
  srun = next(line for line in lines if line.startswith("srun"))
  snapshot = srun.split("--config ")[1].split()[0]
  job_dir = Path(snapshot).parent
  assert job_dir.parent == tmp_path / "jobs" and job_dir.name.endswith("-myjob")
  assert Path(snapshot).name == "sweep.py"
  for directive in ("--array=0-2", "--job-name=myjob", "--partition=envpart", "--gres=gpu:1",
                    "--cpus-per-task=3", "--mem=2G", "--time=01:00:00", "--export=ALL",
                    f"--chdir={REPO}", f"--output={job_dir}/logs/%A_%a.out"):
    assert f"#SBATCH {directive}" in lines, directive
  assert "source .venv/bin/activate" in lines
  assert srun == (f'srun --ntasks=1 --cpus-per-task=3 {sys.executable} -m mshyper.train '
                  f'--config {snapshot} --hid "$SLURM_ARRAY_TASK_ID" --experiments_dir /x/exp '
                  '--config.train_eval_config.num_steps=3 || status=$?')
  # Warned 300 s before the time limit, a training task checkpoints and exits 75: requeued.
  for directive in ("--requeue", "--signal=USR1@300", "--open-mode=append"):
    assert f"#SBATCH {directive}" in lines, directive
  assert 'if [ "$status" -eq 75 ]; then' in lines
  assert '  scontrol requeue "$SLURM_JOB_ID"' in lines
  assert f'if [ "$status" -eq 0 ]; then touch {job_dir}/done/"$SLURM_ARRAY_TASK_ID"; fi' in lines
  assert lines[0] == f"# sbatch --parsable --qos=long {job_dir}/job.sbatch"
  assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0
  assert not (tmp_path / "jobs").exists(), "a dry run must not write anything"


def test_launch_gpus_per_node_trains_mirrored(tmp_path):
  config = write_sweep_config(tmp_path / "sweep.py", [0.04])
  out = run_launcher("launch.py", "--main", "mshyper.train", "--config", str(config),
                     "--dry_run", "--gpus_per_node", "4", env=launcher_env(tmp_path / "jobs"))
  assert out.returncode == 0, out.stderr
  lines = out.stdout.splitlines()
  assert "#SBATCH --gres=gpu:4" in lines
  srun = next(line for line in lines if line.startswith("srun"))
  assert " --config.train_eval_config.distribution=mirrored --hid " in srun


def test_launch_nodes_trains_multi_worker_one_process_per_node(tmp_path):
  config = write_sweep_config(tmp_path / "sweep.py", [0.04])
  out = run_launcher("launch.py", "--main", "mshyper.train", "--config", str(config),
                     "--dry_run", "--nodes", "2", "--gpus_per_node", "4",
                     env=launcher_env(tmp_path / "jobs"))
  assert out.returncode == 0, out.stderr
  lines = out.stdout.splitlines()
  for directive in ("--nodes=2", "--ntasks-per-node=1", "--gres=gpu:4"):
    assert f"#SBATCH {directive}" in lines, directive
  assert "#SBATCH --ntasks=1" not in lines
  srun = next(line for line in lines if line.startswith("srun"))
  assert srun.startswith("srun --ntasks=2 ")
  assert " --config.train_eval_config.distribution=multi_worker --hid " in srun


def resume_unfinished(slurm_cluster, job_dir, env, expected, timeout):
  """`launch.py --resume JOB_DIR`: checks it says `expected`, waits for the resubmitted task;
  returns (its job id, its records)."""
  resume = run_launcher("launch.py", "--resume", str(job_dir), env=env)
  assert resume.returncode == 0, resume.stderr
  assert expected in resume.stdout, resume.stdout
  resubmitted = json.loads((job_dir / "launch.json").read_text())["resubmissions"][0]["job_id"]
  try:
    return resubmitted, slurm_cluster.wait_for_array(resubmitted, 1, timeout)
  except ClusterError as e:
    pytest.fail(f"{e}\n{task_logs(job_dir)}", pytrace=False)


def make_runs(experiment_dir, wids, model="mshyper.models"):
  """Run directories wid=<wid>-run with the run record training writes (run.json)."""
  for wid in wids:
    workdir = experiment_dir / f"wid={wid}-run"
    workdir.mkdir(parents=True)
    (workdir / "run.json").write_text(json.dumps({"model": model}))


def test_launch_eval_dry_run_reads_workdir_from_list(tmp_path):
  make_runs(tmp_path / "exp/7", range(2))
  out = run_launcher("launch_eval.py", "--workdirs", str(tmp_path / "exp/7/wid=*"),
                     "--dataset", str(REPO / "tests/*.py"), "--dry_run",
                     env=launcher_env(tmp_path / "jobs"))
  assert out.returncode == 0, out.stderr
  lines = out.stdout.splitlines()
  assert "#SBATCH --array=0-1" in lines
  output = next(line for line in lines if line.startswith("#SBATCH --output="))
  job_dir = Path(output.split("=", 1)[1]).parents[1]
  srun = next(line for line in lines if line.startswith("srun"))
  assert " -m mshyper.eval --dataset " in srun
  assert srun.endswith(
      f'--workdir "$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" {job_dir}/task_values.txt)" '
      '|| status=$?')
  assert not any("--signal" in line or "requeue" in line for line in lines), \
      "evaluation does not checkpoint on a signal, so it must not ask for one"


def test_launch_eval_runs_the_eval_of_the_runs_family(tmp_path):
  make_runs(tmp_path / "exp", range(2), model="factorized.models")
  out = run_launcher("launch_eval.py", "--workdirs", str(tmp_path / "exp/wid=*"),
                     "--dataset", str(REPO / "tests/*.py"), "--dry_run",
                     env=launcher_env(tmp_path / "jobs"))
  assert out.returncode == 0, out.stderr
  srun = next(line for line in out.stdout.splitlines() if line.startswith("srun"))
  assert " -m factorized.eval --dataset " in srun


def itinf_launch(tmp_path, experiment_dir):
  return run_launcher("launch.py", "--main", "mshyper.itinf", "--config",
                      str(REPO / "mshyper/configs/itinf.py"), "--dry_run",
                      "--args", f"--config.itinf_config.warm_start={experiment_dir}",
                      env=launcher_env(tmp_path / "jobs"))


def test_itinf_sweep_has_one_task_per_run_of_the_refined_experiment(tmp_path):
  make_runs(tmp_path / "exp", range(3))
  out = itinf_launch(tmp_path, tmp_path / "exp")
  assert out.returncode == 0, out.stderr
  assert "#SBATCH --array=0-2" in out.stdout.splitlines()


def test_itinf_sweep_that_cannot_name_every_run_is_refused(tmp_path):
  make_runs(tmp_path / "exp", [0, 2])  # wid=1 missing: task 1 would find no run.
  out = itinf_launch(tmp_path, tmp_path / "exp")
  assert out.returncode == 2
  assert out.stderr.startswith(f"error: {tmp_path / 'exp'} holds 2 run(s) (wid=0-run, wid=2-run)")
  assert "refine itinf_config.warm_start_wid=0, 1:" in out.stderr


@pytest.mark.parametrize("script,args,message", [
    ("launch.py", ["--main", "m", "--config", "missing.py"], "Config file not found: missing.py"),
    ("launch.py", ["--main", "mshyper.itinf", "--config", "mshyper/configs/itinf.py"],
     "itinf_config.warm_start is not set"),
    ("launch_eval.py", ["--workdirs", "{tmp}/mixed/*/*", "--dataset", "tests/*.py"],
     "runs of several model families"),
    ("launch_eval.py", ["--workdirs", "{tmp}/norecord", "--dataset", "tests/*.py"],
     "norecord has no run.json"),
    ("launch.py", ["--main", "m", "--config", "{empty_config}"], "non-empty list"),
    ("launch.py", ["--main", "m", "--config", "{typo_config}"],
     "config has no key 'model_config.rd_lambd'"),
    ("launch_eval.py", ["--workdirs", "{tmp}/nothing*", "--dataset", "kodak"],
     "No directories match"),
    ("launch_eval.py", ["--workdirs", "{tmp}", "--dataset", "no_such_set"],
     "Unknown dataset name 'no_such_set'"),
])
def test_launchers_reject_bad_input(tmp_path, script, args, message):
  empty_config = write_sweep_config(tmp_path / "empty.py", [])
  typo_config = write_sweep_config(tmp_path / "typo.py", [0.1], key="rd_lambd")
  make_runs(tmp_path / "mixed/a", [0])
  make_runs(tmp_path / "mixed/b", [0], model="factorized.models")
  (tmp_path / "norecord").mkdir()
  args = [a.format(tmp=tmp_path, empty_config=empty_config, typo_config=typo_config)
          for a in args]
  out = run_launcher(script, *args, "--dry_run", env=launcher_env(tmp_path / "jobs"))
  assert out.returncode == 2
  assert out.stderr.startswith("error: ") and message in out.stderr


def test_launch_local_runs_each_hid(tmp_path):
  config = write_sweep_config(tmp_path / "sweep.py", [0.3, 0.2])
  out = run_launcher("launch.py", "--main", DUMMY_MAIN, "--config", str(config), "--local",
                     "--args", f"--out_dir {tmp_path}", env=launcher_env(tmp_path / "jobs"))
  assert out.returncode == 0, out.stderr
  for hid, rd_lambda in enumerate([0.3, 0.2]):
    record = json.loads((tmp_path / f"hid={hid}.json").read_text())
    assert record["hyper"] == {"model_config.rd_lambda": rd_lambda}
    assert record["env"]["SLURM_ARRAY_JOB_ID"] is None
  info = json.loads(next((tmp_path / "jobs").glob("*/launch.json")).read_text())
  assert [t["run_name"] for t in info["sweep"]] == ["rd_lambda=0.3", "rd_lambda=0.2"]


def test_launch_eval_local_evaluates_all_workdirs_in_one_process(tmp_path):
  workdirs = [tmp_path / f"exp/1/wid={wid}-dummy" for wid in range(3)]
  for workdir in workdirs:
    workdir.mkdir(parents=True)
  out = run_launcher("launch_eval.py", "--main", DUMMY_MAIN, "--workdirs",
                     str(tmp_path / "exp/1/wid=*"), "--dataset", str(REPO / "tests/*.py"),
                     "--local", env=launcher_env(tmp_path / "jobs"))
  assert out.returncode == 0, out.stderr
  records = [json.loads((w / "dummy_eval.json").read_text()) for w in workdirs]
  assert len({r["pid"] for r in records}) == 1
  assert [a for a in records[0]["argv"] if a.startswith(str(tmp_path))] == \
      [str(w) for w in workdirs]


@pytest.mark.slurm
@pytest.mark.slow
def test_dummy_sweep_and_eval_on_cluster(slurm_cluster, tmp_path):
  config = write_sweep_config(tmp_path / "sweep.py", [0.04, 0.02, 0.01])
  train_jobs, eval_jobs = tmp_path / "train_jobs", tmp_path / "eval_jobs"
  launch = run_launcher("launch.py", "--main", DUMMY_MAIN, "--config", str(config),
                        "--args", f"--out_dir {tmp_path}", "--cpus_per_task", "1",
                        "--mem", "100M", env=launcher_env(train_jobs, slurm_cluster.env))
  write_sweep_config(config, [9, 9, 9])  # queued tasks must keep the submitted snapshot
  job_id, job_dir = wait_for_success(slurm_cluster, train_jobs, launch, timeout_s=120)
  for hid, rd_lambda in enumerate([0.04, 0.02, 0.01]):
    record = json.loads((tmp_path / f"hid={hid}.json").read_text())
    assert record["hyper"] == {"model_config.rd_lambda": rd_lambda}
    assert record["cwd"] == str(REPO)
    assert record["env"]["SLURM_ARRAY_JOB_ID"] == job_id
    assert record["env"]["SLURM_ARRAY_TASK_ID"] == str(hid)
    assert record["env"]["TF_NUM_INTRAOP_THREADS"] == "1"
    assert record["argv"][1:3] == ["--config", str(job_dir / "sweep.py")]

  # --resume resubmits only the tasks without a done/ file (here: as if task 1 had failed).
  (job_dir / "done" / "1").unlink()
  (tmp_path / "hid=1.json").unlink()
  resubmitted, records = resume_unfinished(slurm_cluster, job_dir,
                                           launcher_env(train_jobs, slurm_cluster.env),
                                           "Resubmitted 1 unfinished of 3 tasks (1)", 120)
  assert {t: (r["JobState"], r["ExitCode"]) for t, r in records.items()} == \
      {1: ("COMPLETED", "0:0")}, records
  assert sorted(p.name for p in (job_dir / "done").iterdir()) == ["0", "1", "2"]
  reruns = {hid: json.loads((tmp_path / f"hid={hid}.json").read_text())["env"]
            for hid in range(3)}
  assert [env["SLURM_ARRAY_JOB_ID"] for env in reruns.values()] == [job_id, resubmitted, job_id]
  assert reruns[1]["SLURM_ARRAY_TASK_ID"] == "1"

  workdirs = [tmp_path / f"exp/{job_id}/wid={wid}-dummy" for wid in range(3)]
  for workdir in workdirs:
    workdir.mkdir(parents=True)
  launch = run_launcher("launch_eval.py", "--main", DUMMY_MAIN,
                        "--workdirs", str(tmp_path / f"exp/{job_id}/wid=*"),
                        "--dataset", str(REPO / "tests/*.py"), "--cpus_per_task", "1",
                        "--mem", "100M", env=launcher_env(eval_jobs, slurm_cluster.env))
  wait_for_success(slurm_cluster, eval_jobs, launch, timeout_s=120)
  for workdir in workdirs:
    record = json.loads((workdir / "dummy_eval.json").read_text())
    assert record["argv"][-2:] == ["--workdir", str(workdir)]


@pytest.mark.slurm
@pytest.mark.slow
def test_quickstart_sweep_and_eval_on_cluster(slurm_cluster, tmp_path):
  import tensorflow as tf

  from common import eval_lib, results, run_dir

  experiments = tmp_path / "experiments"
  train_jobs, eval_jobs = tmp_path / "train_jobs", tmp_path / "eval_jobs"
  launch = run_launcher(
      "launch.py", "--main", "mshyper.train", "--config", str(QUICKSTART),
      "--args", f"--experiments_dir {experiments} --config.train_eval_config.num_steps=3 "
      "--config.val_data_config.max_images=1",
      "--cpus_per_task", "1", "--mem", "1G", env=launcher_env(train_jobs, slurm_cluster.env))
  job_id, job_dir = wait_for_success(slurm_cluster, train_jobs, launch, timeout_s=900)
  sweep = json.loads((job_dir / "launch.json").read_text())["sweep"]
  assert len(sweep) == 3, "the quickstart sweep should have 3 elements"
  xid_dir, = experiments.glob("mshyper-quickstart-*")  # one experiment, named after the sweep
  workdirs, rd_lambdas = [], []
  for task in sweep:
    workdir = xid_dir / f"wid={task['hid']}-{task['run_name']}"
    assert workdir.is_dir(), f"{workdir} missing; {experiments}: {sorted(experiments.rglob('*'))}"
    latest = tf.train.latest_checkpoint(run_dir.checkpoint_dir(str(workdir)))
    assert latest and latest.endswith("-3"), f"{workdir}: latest checkpoint {latest}"
    rd_lambda = json.loads((workdir / "config.json").read_text())["model_config"]["rd_lambda"]
    assert rd_lambda == task["overrides"]["model_config.rd_lambda"], (workdir, rd_lambda)
    rd_lambdas.append(rd_lambda)
    workdirs.append(workdir)
  assert len(set(rd_lambdas)) == 3, rd_lambdas

  results_dir = tmp_path / "results"
  launch = run_launcher("launch_eval.py", "--workdirs", str(xid_dir / "wid=*"),
                        "--dataset", "embedded_eval",
                        "--args", f"--results_dir {results_dir} --max_images 1",
                        "--cpus_per_task", "1", "--mem", "1G",
                        env=launcher_env(eval_jobs, slurm_cluster.env))
  wait_for_success(slurm_cluster, eval_jobs, launch, timeout_s=900)
  for workdir, rd_lambda in zip(workdirs, rd_lambdas):
    per_image_path, _ = eval_lib.result_paths(str(results_dir), "embedded_eval", str(workdir))
    records = results.read_per_image(per_image_path)  # checks the per-image fields
    assert {r["rd_lambda"] for r in records} == {rd_lambda}


REQUEUE_CONFIG = """\
from common import config_defaults, config_utils


def get_config():
  config = config_defaults.quickstart_config()
  config.train_data_config.patchsize = 64
  config.val_data_config.max_images = 1
  config.train_eval_config.update(num_steps=120, log_metrics_every_steps=5,
                                  checkpoint_every_steps=1000, eval_every_steps=1000)
  return config


def get_hyper():
  return [{"model_config.rd_lambda": 0.01}]


def get_cfg_str(config):
  return config_utils.cfg_str([("rd_lambda", config.model_config.rd_lambda)])
"""


@pytest.mark.slurm
@pytest.mark.slow
def test_signalled_task_checkpoints_requeues_and_finishes(slurm_cluster, tmp_path):
  """Slurm's time-limit warning (here sent early with scancel --signal=USR1) makes the task
  checkpoint and requeue itself; the requeued run resumes and logs every step once."""
  import tensorflow as tf

  from common import run_dir

  config = tmp_path / "requeue.py"
  config.write_text(REQUEUE_CONFIG)
  experiments, jobs = tmp_path / "experiments", tmp_path / "jobs"
  env = launcher_env(jobs, slurm_cluster.env)
  launch = run_launcher("launch.py", "--main", "mshyper.train", "--config", str(config),
                        "--args", f"--experiments_dir {experiments}", "--cpus_per_task", "1",
                        "--mem", "1G", env=env)
  assert launch.returncode == 0, launch.stderr
  job_id, job_dir = preempt_after_steps(
      slurm_cluster, jobs, launch, lambda: experiments.glob("*/wid=0-*/metrics.jsonl"), 20, 300)

  workdir, = experiments.glob("*/wid=0-*")
  assert workdir.parent.name.startswith("mshyper-requeue-")
  log = (job_dir / "logs" / f"{job_id}_0.out").read_text()  # both runs, appended
  assert "requeueing job" in log and "start 2)" in log, task_logs(job_dir)
  train_log = (workdir / "train.log").read_text()
  saved = re.search(r"SIGUSR1 received: checkpoint saved at step (\d+)", train_log)
  assert saved and 20 <= int(saved.group(1)) < 120, train_log[-3000:]
  assert re.search(rf"Resumed from .*ckpt-{saved.group(1)} at step {saved.group(1)}", train_log)
  latest = tf.train.latest_checkpoint(run_dir.checkpoint_dir(str(workdir)))
  assert latest.endswith("-120"), latest
  steps = logged_train_steps(workdir / "metrics.jsonl")
  assert steps == list(range(5, 121, 5)), steps
  print(f"requeue test: signalled at step {saved.group(1)}; train/loss steps logged {steps}")
  assert (job_dir / "done" / "0").exists()
  resume = run_launcher("launch.py", "--resume", str(job_dir), env=env)
  assert resume.returncode == 0 and "nothing to resubmit" in resume.stdout, resume.stderr

  # --resume resubmits the tasks without a done/ file; the run continues (here: is complete).
  (job_dir / "done" / "0").unlink()
  _, records = resume_unfinished(slurm_cluster, job_dir, env,
                                 "Resubmitted 1 unfinished of 1 tasks (0)", 300)
  assert (records[0]["JobState"], records[0]["ExitCode"]) == ("COMPLETED", "0:0"), records
  assert (job_dir / "done" / "0").exists()
  assert "Already trained for 120 >= 120 steps" in (workdir / "train.log").read_text()


MULTI_WORKER_CONFIG = """\
from common import config_defaults, config_utils


def get_config():
  config = config_defaults.quickstart_config()
  config.model_config.latent_config.method = "ste"  # deterministic: comparable to one device
  config.train_data_config.update(patchsize=64, seed=1)
  config.val_data_config.max_images = 1
  config.train_eval_config.update(num_steps=12, log_metrics_every_steps=1,
                                  checkpoint_every_steps=1000, eval_every_steps=1000)
  return config


def get_hyper():
  return [{}]


def get_cfg_str(config):
  return "multi"
"""


def wait_for_requeued_task(cluster, job_id, job_dir):
  """Waits until task 0 of `job_id`, signalled to requeue, finished (left a done/ file)."""
  queue, released = [], []

  def finished():
    # Slurm holds a requeued job for 2 minutes (BeginTime), so that slurmd no longer takes the
    # new launch credential for the revoked one of the killed run (they are compared to the
    # second); the tests wait a few seconds instead, once.
    queue[:] = [cluster.client("squeue", "-h", "-j", job_id, "-o", "%i %T %r").stdout]
    if "PENDING" in queue[0] and not released:
      cluster.client("scontrol", "update", f"JobId={job_id}_0", "StartTime=now+5")
      released.append(True)
    return not queue[0].strip() and (job_dir / "done" / "0").exists()

  try:
    cluster.wait_until(finished, 600, "the requeued task to finish")
  except ClusterError as e:
    pytest.fail(f"{e}\nQueue (job, state, reason): {queue}\n{task_logs(job_dir)}",
                pytrace=False)


def logged_train_steps(metrics_path):
  if not metrics_path.exists():
    return []
  return [json.loads(line)["step"] for line in metrics_path.read_text().splitlines()
          if line.endswith("}") and "train/loss" in line]


def preempt_after_steps(cluster, jobs_dir, launch, metrics_paths, min_steps, timeout_s):
  """Waits until task 0 of the job `launch` submitted logged `min_steps` training steps (in the
  first of metrics_paths()), sends it SIGUSR1 (Slurm's preemption warning), then waits for its
  requeued run and for the whole job to succeed; returns (job id, job dir)."""
  job_id, job_dir, _ = submitted(jobs_dir)

  def steps_logged():
    paths = list(metrics_paths())
    return logged_train_steps(paths[0]) if paths else []

  try:
    cluster.wait_until(lambda: max(steps_logged(), default=0) >= min_steps, timeout_s,
                       f"{min_steps} logged training steps")
  except ClusterError as e:
    pytest.fail(f"{e}\n{task_logs(job_dir)}", pytrace=False)
  signalled = cluster.client("scancel", "--signal=USR1", f"{job_id}_0")
  assert signalled.returncode == 0, signalled.stderr
  wait_for_requeued_task(cluster, job_id, job_dir)
  wait_for_success(cluster, jobs_dir, launch, timeout_s=60)
  return job_id, job_dir


@pytest.mark.slurm
@pytest.mark.slow
def test_multi_worker_training_on_two_tasks(slurm_cluster, tmp_path):
  """One run on 2 Slurm tasks with MultiWorkerMirroredStrategy (as `--nodes 2` on 2 nodes; here
  2 tasks of the one test node), signalled mid-run: both workers stop at the same step, the
  task is requeued and resumes; one checkpoint and one log of each step, written by the chief,
  and the weights of 12 steps on one device from the same start."""
  import numpy as np
  import tensorflow as tf

  from common import config_utils, data_lib, run_dir, train_lib
  from mshyper.models import Model

  config_path = tmp_path / "multi.py"
  config_path.write_text(MULTI_WORKER_CONFIG)
  config = config_utils.load_config_module(str(config_path)).get_config()
  start = run_dir.build_model(Model, config.model_config)
  start_prefix = tf.train.Checkpoint(model=start).save(str(tmp_path / "start" / "ckpt"))
  experiments, jobs = tmp_path / "experiments", tmp_path / "jobs"
  launch = run_launcher(
      "launch.py", "--main", "mshyper.train", "--config", str(config_path), "--nodes", "2",
      "--args", f"--experiments_dir {experiments} --warm_start {start_prefix}",
      "--sargs", "--nodes=1 --ntasks-per-node=2",  # the test cluster has one node
      "--cpus_per_task", "1", "--mem", "1G", env=launcher_env(jobs, slurm_cluster.env))
  assert launch.returncode == 0, launch.stderr
  job_id, job_dir = preempt_after_steps(
      slurm_cluster, jobs, launch,
      lambda: experiments.glob("mshyper-multi-*/wid=0-multi/metrics.jsonl"), 3, 600)
  log = (job_dir / "logs" / f"{job_id}_0.out").read_text()
  # MultiWorkerMirroredStrategy is a CollectiveAllReduceStrategy in TF 2.14.
  assert log.count("Strategy CollectiveAllReduceStrategy with 2 replica(s)") == 4, log[-3000:]
  saved = re.findall(r"SIGUSR1 received: checkpoint saved at step (\d+)", log)
  assert len(saved) == 2 and saved[0] == saved[1], saved  # both workers, at the same step
  assert re.search(rf"Resumed from .*ckpt-{saved[0]} at step {saved[0]}", log)

  workdir, = experiments.glob("mshyper-multi-*/wid=0-multi")
  assert sorted(p.name for p in (workdir / "checkpoints").iterdir()) == sorted([
      "checkpoint", f"ckpt-{saved[0]}.data-00000-of-00001", f"ckpt-{saved[0]}.index",
      "ckpt-12.data-00000-of-00001", "ckpt-12.index"])
  assert not list(workdir.glob(".worker-*")), "the other worker's checkpoint copies stay"
  steps = logged_train_steps(workdir / "metrics.jsonl")
  assert steps == list(range(1, 13)), steps

  trained = run_dir.build_model(Model, config.model_config)
  run_dir.restore(trained, str(workdir / "checkpoints" / "ckpt-12"), weights_only=True)
  single = run_dir.build_model(Model, config.model_config)
  train_input = data_lib.TrainInput(config.train_data_config.dataset, 64, 4, seed=1)
  assert train_lib.train(single, str(tmp_path / "single"), train_input, 12,
                         warm_start=start_prefix, checkpoint_every=1000, eval_every=1000) == 0
  difference = max(float(np.max(np.abs(a.numpy() - b.numpy())))
                   for a, b in zip(single.trainable_variables, trained.trainable_variables))
  print(f"multi-worker (signalled at step {saved[0]}, requeued) vs one device after 12 steps: "
        f"max |weight difference| {difference:.3g}")
  assert difference < 1e-5

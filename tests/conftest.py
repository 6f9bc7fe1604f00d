"""What several test modules share: the repository root, the environment of the entry points
they start, a trained quickstart run per model family, and the real local Slurm cluster fixture
(tests/slurm_cluster.py) for tests marked `slurm`."""
import glob
import os
import subprocess
import sys

import pytest

pytest_plugins = ["slurm_cluster"]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Entry points started by tests: the project importable, TensorFlow's C++ start-up lines off.
ENV = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
# The trained quickstart runs: sweep element 1 (lambda 0.01). The hyperprior trains long enough
# to code photos well; the factorized run serves tests of its files and of refusals only.
QUICKSTART_XID = "train"
QUICKSTART_WID = 1
QUICKSTART_STEPS = {"mshyper": 800, "factorized": 20}


@pytest.fixture(scope="session")
def trained_quickstart(tmp_path_factory):
  """family ('mshyper' or 'factorized') -> (experiments dir, run dir) of that family's quickstart
  run EXPERIMENTS/QUICKSTART_XID/wid=QUICKSTART_WID-*, trained QUICKSTART_STEPS[family] steps on
  96x96 crops by its train entry point, once per test session. Tests may read the run and add other
  experiments to the experiments dir, not change the run."""
  experiments_dirs = {}

  def trained(family):
    if family not in experiments_dirs:
      experiments_dir = str(tmp_path_factory.mktemp(f"{family}_experiments"))
      steps = QUICKSTART_STEPS[family]
      result = subprocess.run(
          [sys.executable, "-m", f"{family}.train", "--config",
           os.path.join(ROOT, family, "configs", "quickstart.py"), "--hid", str(QUICKSTART_WID),
           "--experiments_dir", experiments_dir, "--xid", QUICKSTART_XID,
           f"--config.train_eval_config.num_steps={steps}",
           f"--config.train_eval_config.checkpoint_every_steps={steps}",
           f"--config.train_eval_config.eval_every_steps={steps}",
           "--config.train_data_config.patchsize=96"],
          cwd=ROOT, env=ENV, capture_output=True, text=True)
      if result.returncode:
        pytest.fail(f"training the {family} quickstart failed:\n{result.stderr[-3000:]}")
      experiments_dirs[family] = experiments_dir
    experiments_dir = experiments_dirs[family]
    workdir, = glob.glob(os.path.join(experiments_dir, QUICKSTART_XID, f"wid={QUICKSTART_WID}-*"))
    return experiments_dir, workdir

  return trained

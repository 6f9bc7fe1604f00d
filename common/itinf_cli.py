"""`python -m {factorized,mshyper}.itinf --config C [--hid N] [--config.x.y=v]`."""
import os
import shutil
import sys

from absl import app, flags, logging

import configs
from common import codec, config_utils, experiment, itinf_lib, preemption

FLAGS = flags.FLAGS


def main(model_cls):
  experiment.define_flags(workdir_help="Itinf run directory (default: derived from "
                          "experiments_dir/xid/hid).")
  flags.DEFINE_string("results_dir", configs.RESULTS_DIR, "Root of result files.")

  def run(argv):
    del argv
    config, module, config_path = experiment.resolved_config()
    ic = config.itinf_config
    train_workdir, step = itinf_lib.resolve_warm_start(ic.warm_start, ic.warm_start_wid)
    workdir = experiment.run_workdir(config, module, config_path,
                                     model_cls.__module__.split(".")[0])
    os.makedirs(workdir, exist_ok=True)
    itinf_lib.check_run_record(workdir, config, train_workdir, step)
    with open(os.path.join(workdir, "config.json"), "w") as f:
      f.write(config_utils.config_to_json(config))
    shutil.copyfile(config_path, os.path.join(workdir, "config_snapshot.py"))
    experiment.log_to_file(os.path.join(workdir, "itinf.log"))
    logging.info("Workdir: %s; warm start: %s at step %d.", workdir, train_workdir, step)
    coder = codec.load_codec(train_workdir, model_cls, step=step)
    try:
      itinf_lib.run(coder, config, workdir, train_workdir, FLAGS.results_dir)
    except preemption.Stopped as e:
      logging.warning("%s", e)
      sys.exit(e.exit_code)

  app.run(run)

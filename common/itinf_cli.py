"""`python -m {factorized,mshyper}.itinf --config C [--hid N] [--config.x.y=v]`."""
import os
import sys

from absl import app, flags, logging

import configs
from common import cli, experiment, itinf_lib, preemption, run_dir, run_lock

FLAGS = flags.FLAGS


def main(model_cls):
  experiment.define_flags(workdir_help="Itinf run directory (default: derived from "
                          "experiments_dir/xid/hid).")
  flags.DEFINE_string("results_dir", configs.RESULTS_DIR, "Root of result files.")
  cli.define_debug_flag()

  cli.list_in_help(experiment.FLAG_NAMES + ("results_dir",))

  def run(argv):
    del argv
    with cli.user_errors(FLAGS.debug):
      itinf()

  def itinf():
    config, module, config_path = experiment.resolved_config()
    ic = config.itinf_config
    train_workdir, step = run_dir.resolve_warm_start(ic.warm_start, ic.warm_start_wid)
    workdir = experiment.run_workdir(config, module, config_path,
                                     model_cls.__module__.split(".")[0])
    with run_lock.hold(workdir):  # Before anything is written there.
      run_dir.prepare_itinf(workdir, config, config_path, train_workdir, step)
      experiment.log_to_file(os.path.join(workdir, "itinf.log"))
      logging.info("Workdir: %s; warm start: %s at step %d.", workdir, train_workdir, step)
      coder = run_dir.load_codec(train_workdir, model_cls, step=step,
                                 offset_heuristic=ic.offset_heuristic)
      try:
        itinf_lib.run(coder, config, workdir, train_workdir, FLAGS.results_dir)
      except preemption.Stopped as e:
        logging.warning("%s", e)
        sys.exit(e.exit_code)

  app.run(run, flags_parser=cli.parse_flags)

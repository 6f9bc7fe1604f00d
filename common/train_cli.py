"""`python -m {factorized,mshyper}.train --config C [--hid N] [--config.x.y=v]`."""
import contextlib
import hashlib
import os
import sys

from absl import app, flags, logging

from common import cli, data_lib, distribute, experiment, run_dir, run_lock, train_lib

FLAGS = flags.FLAGS


def main(model_cls):
  experiment.define_flags()
  cli.define_debug_flag()
  flags.DEFINE_string("warm_start", None, "Checkpoint prefix, workdir, or experiment dir "
                      "(with the same --hid) to initialize weights from (overrides the config).")
  flags.DEFINE_integer("cpu_devices", None, "Split the CPU into this many logical devices, so "
                       "that distribution=mirrored trains that many replicas without GPUs (for "
                       "testing; not part of the config, like the number of GPUs).",
                       lower_bound=1)

  cli.list_in_help(experiment.FLAG_NAMES + ("warm_start", "cpu_devices"))

  def run(argv):
    del argv
    with cli.user_errors(FLAGS.debug):
      exit_code = train()
    if exit_code:
      sys.exit(exit_code)

  def train():
    """Trains (or resumes) the run; returns the process exit code (non-zero: stopped early)."""
    config, module, config_path = experiment.resolved_config()
    experiment.check_train_config(config)
    workdir = experiment.run_workdir(config, module, config_path,
                                     model_cls.__module__.split(".")[0])
    tec, data = config.train_eval_config, config.train_data_config
    # First: logical devices and a multi-worker strategy must be set up before TensorFlow runs
    # anything.
    if FLAGS.cpu_devices:
      if tec.distribution != "mirrored":
        raise ValueError(f"--cpu_devices splits the CPU for distribution=mirrored; this run's "
                         f"train_eval_config.distribution is {tec.distribution!r}.")
      distribute.split_cpu(FLAGS.cpu_devices)
    strategy = distribute.make_strategy(tec.distribution, data.batchsize)
    chief = distribute.worker(strategy)[0] == 0
    # The chief writes the run dir and holds its lock (taken before anything is written there);
    # the other workers of the same run write nothing.
    with run_lock.hold(workdir) if chief else contextlib.nullcontext():
      if chief:
        run_dir.prepare_training(workdir, config, config_path, model_cls.__module__, FLAGS.hid)
        experiment.log_to_file(os.path.join(workdir, "train.log"))
      logging.info("Workdir: %s", workdir)
      with strategy.scope():  # variables (and optimizer slots) are created per replica
        model = run_dir.build_model(model_cls, config.model_config)
      warm_start = FLAGS.warm_start or tec.warm_start
      if warm_start:
        warm_start = run_dir.resolve_checkpoint(warm_start, FLAGS.hid)
      # Every worker of a run, and every restart of it, reads files in the same order.
      seed = data.seed if data.seed is not None else int(
          hashlib.sha256(workdir.encode()).hexdigest()[:12], 16)
      train_input = data_lib.TrainInput(data.dataset, data.patchsize, data.batchsize, seed=seed,
                                        random_flip=data.random_flip,
                                        max_bad_share=data.max_bad_share)
      val = config.val_data_config
      val_ds = data_lib.eval_dataset(val.dataset, center_crop=val.patchsize)
      exit_code = train_lib.train(
          model, workdir, train_input, tec.num_steps, val_dataset=val_ds,
          log_every=tec.log_metrics_every_steps, checkpoint_every=tec.checkpoint_every_steps,
          eval_every=tec.eval_every_steps, max_checkpoints_to_keep=tec.max_checkpoints_to_keep,
          warm_start=warm_start, max_eval_images=val.max_images or None, strategy=strategy,
          jit_compile=tec.jit_compile)
      if not exit_code:
        logging.info("Done: %s", workdir)
      return exit_code

  app.run(run, flags_parser=cli.parse_flags)

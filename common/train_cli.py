"""`python -m {factorized,mshyper}.train --config C [--hid N] [--config.x.y=v]`."""
import os

from absl import app, flags, logging

from common import cli, data_lib, experiment, run_lock, train_lib

FLAGS = flags.FLAGS


def main(model_cls):
  experiment.define_flags()
  cli.define_debug_flag()
  flags.DEFINE_string("warm_start", None, "Checkpoint prefix, workdir, or experiment dir "
                      "(with the same --hid) to initialize weights from (overrides the config).")

  cli.list_in_help(experiment.FLAG_NAMES + ("warm_start",))

  def run(argv):
    del argv
    with cli.user_errors(FLAGS.debug):
      train()

  def train():
    config, module, config_path = experiment.resolved_config()
    experiment.check_train_config(config)
    workdir = experiment.run_workdir(config, module, config_path,
                                     model_cls.__module__.split(".")[0])
    with run_lock.hold(workdir):  # Before anything is written there.
      experiment.prepare_workdir(workdir, config, config_path, model_cls.__module__)
      experiment.log_to_file(os.path.join(workdir, "train.log"))
      logging.info("Workdir: %s", workdir)
      model = experiment.build_model(model_cls, config.model_config)
      tec = config.train_eval_config
      warm_start = FLAGS.warm_start or tec.warm_start
      if warm_start:
        warm_start = train_lib.resolve_checkpoint(warm_start, FLAGS.hid)
      data = config.train_data_config
      train_ds = data_lib.train_dataset(data.dataset, data.patchsize, data.batchsize,
                                        random_flip=data.random_flip)
      val = config.val_data_config
      val_ds = data_lib.eval_dataset(val.dataset, center_crop=val.patchsize)
      train_lib.train(model, workdir, train_ds, tec.num_steps, val_dataset=val_ds,
                      log_every=tec.log_metrics_every_steps,
                      checkpoint_every=tec.checkpoint_every_steps,
                      eval_every=tec.eval_every_steps,
                      max_checkpoints_to_keep=tec.max_checkpoints_to_keep,
                      warm_start=warm_start, max_eval_images=val.max_images or None)
      logging.info("Done: %s", workdir)

  app.run(run, flags_parser=cli.parse_flags)

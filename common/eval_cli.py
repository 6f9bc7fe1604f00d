"""`python -m {factorized,mshyper}.eval --workdir W [--workdir W2 ...] --dataset D [--skip_existing]`.

Several runs (e.g. a whole sweep) are evaluated one after another in this process, so TF is
imported once and FLOPs are profiled once per model and image size.
"""
import os

from absl import app, flags, logging

import configs
from common import codec, eval_lib, experiment

FLAGS = flags.FLAGS


def main(model_cls):
  flags.DEFINE_multi_string("workdir", None, "Training run directory (with checkpoints); "
                            "repeat the flag to evaluate several runs in one process.")
  flags.DEFINE_string("dataset", "embedded_eval", "Dataset name (configs.DATASETS) or glob.")
  flags.DEFINE_string("results_dir", configs.RESULTS_DIR, "Root of result files.")
  flags.DEFINE_bool("skip_existing", False, "Skip a workdir whose result file exists.")
  flags.DEFINE_integer("timing_repeats", 1, "Timed encode/decode runs per image (median; "
                       "after one untimed warm-up run).")
  flags.DEFINE_integer("max_images", 0, "Evaluate only the first N images (0 = all).")
  flags.DEFINE_string("bitstream_dir", None, "Also keep each image's compressed file here.")
  flags.mark_flag_as_required("workdir")

  def run(argv):
    del argv
    logging.set_verbosity(logging.INFO)
    for i, workdir in enumerate(FLAGS.workdir):
      logging.info("Run %d/%d: %s", i + 1, len(FLAGS.workdir), workdir)
      per_image_path, _ = eval_lib.result_paths(FLAGS.results_dir, FLAGS.dataset, workdir)
      if FLAGS.skip_existing and os.path.exists(per_image_path):
        logging.info("Skipping %s: %s exists.", workdir, per_image_path)
        continue
      coder = codec.load_codec(workdir, model_cls)
      config = experiment.load_config(workdir, model_cls)
      path = eval_lib.evaluate_workdir(coder, config, workdir, FLAGS.dataset, FLAGS.results_dir,
                                       timing_repeats=FLAGS.timing_repeats,
                                       max_images=FLAGS.max_images,
                                       bitstream_dir=FLAGS.bitstream_dir)
      logging.info("Results: %s", path)

  app.run(run)

"""`python -m {factorized,mshyper}.eval --workdir W [--workdir W2 ...] --dataset D
[--skip_existing]`.

Several runs (e.g. a whole sweep) are evaluated one after another in this process, so TF is
imported once and FLOPs are profiled once per model and image size.
"""
import os
import sys

from absl import app, flags, logging

import configs
from common import cli, eval_lib, run_dir

FLAGS = flags.FLAGS
# Some images could not be evaluated (the others were, and their results written).
EXIT_IMAGES_FAILED = 1


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
  cli.define_debug_flag()
  flags.mark_flag_as_required("workdir")

  cli.list_in_help(("workdir", "dataset", "results_dir", "skip_existing", "timing_repeats",
                    "max_images", "bitstream_dir"))

  def run(argv):
    del argv
    logging.set_verbosity(logging.INFO)
    with cli.user_errors(FLAGS.debug):
      failed = evaluate()
    if failed:
      print(f"error: {len(failed)} image(s) could not be evaluated (the others were): " +
            "; ".join(f"{path}: {reason}" for path, reason in failed), file=sys.stderr)
      sys.exit(EXIT_IMAGES_FAILED)

  def evaluate():
    """Evaluates every --workdir; returns [(image path, reason)] of images that failed."""
    if FLAGS.timing_repeats < 1 or FLAGS.max_images < 0:
      raise ValueError(f"--timing_repeats must be at least 1 and --max_images at least 0, got "
                       f"{FLAGS.timing_repeats} and {FLAGS.max_images}.")
    for workdir in FLAGS.workdir:
      eval_lib.check_outputs(FLAGS.results_dir, FLAGS.dataset, workdir, FLAGS.bitstream_dir)
    failed = []
    for i, workdir in enumerate(FLAGS.workdir):
      logging.info("Run %d/%d: %s", i + 1, len(FLAGS.workdir), workdir)
      per_image_path, _ = eval_lib.result_paths(FLAGS.results_dir, FLAGS.dataset, workdir)
      if FLAGS.skip_existing and os.path.exists(per_image_path):
        logging.info("Skipping %s: %s exists.", workdir, per_image_path)
        continue
      coder = run_dir.load_codec(workdir, model_cls)
      config, _ = run_dir.read_run_config(workdir, model_cls)
      path, failed_here = eval_lib.evaluate_workdir(
          coder, config, workdir, FLAGS.dataset, FLAGS.results_dir,
          timing_repeats=FLAGS.timing_repeats, max_images=FLAGS.max_images,
          bitstream_dir=FLAGS.bitstream_dir)
      logging.info("Results: %s", path or "none (no image could be evaluated)")
      failed += failed_here
    return failed

  app.run(run, flags_parser=cli.parse_flags)

"""Ordinary mistakes on the command line: one `error:` line, exit status 2, no traceback (the
traceback only with --debug). Every case of issue 13 that needs no trained model is here; the
ones that need one (damaged bitstreams, eval with a bad image) are in test_codec.py.
About 2 minutes on 2 cores (one Python + TensorFlow start per train/eval/itinf case)."""
import logging
import os
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

from common import cli, codec_cli, log_setup, run_lock

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICKSTART = os.path.join(ROOT, "mshyper", "configs", "quickstart.py")
ITINF = os.path.join(ROOT, "mshyper", "configs", "itinf.py")


def assert_one_error_line(stderr, *fragments):
  assert "Traceback" not in stderr, stderr[-3000:]
  errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
  assert len(errors) == 1, stderr[-3000:]
  for fragment in fragments:
    assert fragment in errors[0], errors[0]


def run_module(module, *args):
  env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
  return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=300)


def train_args(tmp_path, *extra):
  return ("--config", QUICKSTART, "--experiments_dir", str(tmp_path / "experiments"), *extra)


@pytest.mark.slow
@pytest.mark.parametrize("case,args,fragments", [
    ("unknown config key", ("--config.model_config.nope=1",), ("nope",)),
    ("unknown config key in a sweep", ("--hid", "0", "--config.model_config.nope=1"),
     ("no key 'model_config.nope'", "valid there")),
    ("negative num_steps", ("--config.train_eval_config.num_steps=-5",),
     ("train_eval_config.num_steps must be a positive integer",)),
    ("sweep element out of range", ("--hid", "99"), ("--hid=99 out of range",)),
    ("no training images", ("--config.train_data_config.dataset=/nonexistent/*.png",),
     ("No image files match",)),
    ("warm start not found", ("--warm_start", "/nonexistent/run"), ("No checkpoint found",)),
])
def test_train_mistakes(tmp_path, case, args, fragments):
  result = run_module("mshyper.train", *train_args(tmp_path, *args))
  assert result.returncode == 2, (case, result.stderr[-3000:])
  assert_one_error_line(result.stderr, *fragments)


@pytest.mark.slow
def test_missing_config_file(tmp_path):
  result = run_module("mshyper.train", "--config", str(tmp_path / "nope.py"))
  assert result.returncode == 2, result.stderr[-3000:]
  assert_one_error_line(result.stderr, "nope.py")


@pytest.mark.slow
def test_debug_shows_the_traceback(tmp_path):
  debug = run_module("mshyper.train", *train_args(tmp_path, "--hid", "99", "--debug"))
  assert debug.returncode != 0 and "Traceback" in debug.stderr


@pytest.mark.slow
def test_training_in_a_locked_run_directory_is_refused(tmp_path):
  workdir = str(tmp_path / "run")
  with run_lock.hold(workdir):
    result = run_module("mshyper.train", *train_args(tmp_path, "--workdir", workdir))
  assert result.returncode == 2, result.stderr[-3000:]
  assert_one_error_line(result.stderr, f"in use by another process: pid {os.getpid()}")
  assert not os.path.exists(os.path.join(workdir, "config.json"))  # nothing written


@pytest.mark.slow
@pytest.mark.parametrize("case,module,args,fragment", [
    ("eval of a missing run", "mshyper.eval", ("--workdir", "{tmp}/nope"),
     "not a run directory"),
    ("eval into a results folder that is a file", "mshyper.eval",
     ("--workdir", "{tmp}/nope", "--results_dir", "{tmp}/a_file"), "Cannot write result files"),
    ("itinf without a warm start", "mshyper.itinf",
     ("--config", ITINF, "--experiments_dir", "{tmp}"), "itinf_config.warm_start is not set"),
])
def test_eval_and_itinf_mistakes(tmp_path, case, module, args, fragment):
  (tmp_path / "a_file").write_text("")
  result = run_module(module, *(a.format(tmp=tmp_path) for a in args))
  assert result.returncode == 2, (case, result.stderr[-3000:])
  assert_one_error_line(result.stderr, fragment)


def png_claiming_size(path, width, height):
  """A valid small PNG whose header claims width x height pixels."""
  Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(path)
  data = bytearray(open(path, "rb").read())
  data[16:24] = struct.pack(">II", width, height)
  data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
  open(path, "wb").write(bytes(data))


@pytest.mark.parametrize("case", ["output is a directory", "input missing", "not a run dir",
                                  "over Pillow's pixel limit"])
def test_codec_mistakes(tmp_path, capsys, case):
  image = tmp_path / "image.png"
  Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)
  argv, fragment = {
      "output is a directory": (["compress", "--workdir", str(tmp_path), str(image),
                                 str(tmp_path)], "is a directory"),
      "input missing": (["decompress", "--workdir", str(tmp_path), str(tmp_path / "x.ntc"),
                         str(tmp_path / "x.png")], "x.ntc"),
      "not a run dir": (["compress", "--workdir", str(tmp_path / "run"), str(image),
                         str(tmp_path / "x.ntc")], "not a run directory"),
      "over Pillow's pixel limit": (["compress", "--workdir", str(tmp_path),
                                     str(tmp_path / "big.png"), str(tmp_path / "x.ntc")],
                                    "too large"),
  }[case]
  png_claiming_size(tmp_path / "big.png", 40000, 40000)
  with pytest.raises(SystemExit) as exit_info:
    codec_cli.main("mshyper.models", argv)
  assert exit_info.value.code == cli.EXIT_USER_ERROR
  assert_one_error_line(capsys.readouterr().err, fragment)
  assert not (tmp_path / "x.ntc").exists() and not (tmp_path / "x.png").exists()


def test_known_harmless_warnings_are_dropped(caplog):
  log_setup.quiet(["prog"])
  absl_logger = logging.getLogger("absl")
  with caplog.at_level(logging.WARNING, logger="absl"):
    absl_logger.warning("Computing quantization offsets using offset heuristic within a "
                        "tf.function. Ideally, ...")
    absl_logger.warning("step 100/800 | 11.49 steps/s")
  assert [r.getMessage() for r in caplog.records] == ["step 100/800 | 11.49 steps/s"]
  assert log_setup.verbose_requested(["prog", "--verbosity=1"])
  assert log_setup.verbose_requested(["prog", "-v", "1"])
  assert not log_setup.verbose_requested(["prog", "--config", "x.py"])


@pytest.mark.slow
def test_tensorflow_start_up_noise_is_hidden_by_default(tmp_path):
  env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
  result = subprocess.run([sys.executable, "-m", "mshyper.train", "--help"], cwd=ROOT,
                          env=dict(env, PYTHONPATH=ROOT), capture_output=True, text=True,
                          timeout=300)
  assert "Unable to register" not in result.stderr and "cpu_feature_guard" not in result.stderr
  for flag in ("--config", "--hid", "--workdir", "--warm_start", "--[no]debug", "--verbosity"):
    assert flag in result.stdout  # --help lists the flags that matter

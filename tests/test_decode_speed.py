"""The decode-speed benchmark's rate calibration: random weights, a real file near the target."""
import os

import pytest
import tensorflow as tf

from benchmarks import decode_speed
from common import config_utils, image_utils, run_dir
from mshyper.models import Model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_benchmark_image_is_a_768x512_photo():
  image, note = decode_speed.benchmark_image()
  assert image.shape == (512, 768, 3) and image.dtype == "uint8"
  assert image.std() > 20  # a photo, not padding
  assert ".png" in note


def test_a_module_faster_than_the_peak_fails_loudly():
  row = decode_speed.flop_bound("g_s", flops=2e9, seconds=0.04, peak_flops_per_s=1e11)
  assert row["flop_bound_s"] == pytest.approx(0.02) and row["vs_flop_bound"] == pytest.approx(2)
  assert row["fraction_of_peak"] == pytest.approx(0.5)
  with pytest.raises(decode_speed.FractionOfPeakError, match="124% of the measured matmul peak"):
    decode_speed.flop_bound("g_s", flops=2e9, seconds=0.02 / 1.24, peak_flops_per_s=1e11)


@pytest.mark.slow
@pytest.mark.parametrize("target_bpp", [0.3, 1.0])
def test_calibrated_file_codes_near_target_and_decodes(target_bpp):
  tf.keras.utils.set_random_seed(0)
  config = config_utils.load_config_module(
      os.path.join(ROOT, "mshyper", "configs", "quickstart.py")).get_config()
  model = run_dir.build_model(Model, config.model_config)
  image, _ = decode_speed.benchmark_image()
  analysis = model.analysis(image_utils.to_model_input(image)[None])
  coder, data, stats = decode_speed.calibrated_file(model, config, analysis, target_bpp,
                                                    log=lambda text: None)
  assert stats["bpp"] == pytest.approx(8 * len(data) / (512 * 768))
  assert stats["bpp"] == pytest.approx(target_bpp, rel=0.02)
  assert sum(stats["bpp_per_latent"].values()) < stats["bpp"]  # plus the header
  assert 0 < stats["y_zero_symbol_fraction"] < 1
  # Decoding checks the symbols' checksum, so the bias the file was written with is in place.
  assert coder.decode(data).shape == image.shape

"""The bundled pretrained models (pretrained/, `make pretrained`): complete and small, loaded
through the normal run-directory path, coding a real held-out photo to a file that decodes
bit-exact at the rate and PSNR documented in pretrained/results (made by `make pretrained`)."""
import glob
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from common import export_run, image_utils, metrics, results, run_dir
from common.data_lib import list_images
from mshyper.models import Model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRETRAINED = os.path.join(ROOT, "pretrained", "mshyper_small")
RUNS = sorted(glob.glob(os.path.join(PRETRAINED, "wid=*")))
DOCUMENTED = os.path.join(ROOT, "pretrained", "results", "embedded_eval", "mshyper_small")
MAX_BUNDLE_BYTES = 22 * 2**20
PHOTO = "coffee"


def documented_record(run, photo):
  records = results.read_per_image(os.path.join(DOCUMENTED, os.path.basename(run) + ".json"))
  return next(r for r in records if r["instance_id"] == photo)


def rd_lambda(run):
  with open(os.path.join(run, "config.json")) as f:
    return json.load(f)["model_config"]["rd_lambda"]


def test_bundle_is_complete_small_float16_and_in_rate_order():
  assert len(RUNS) >= 4
  size = sum(os.path.getsize(p) for p in glob.glob(os.path.join(PRETRAINED, "**"),
                                                   recursive=True) if os.path.isfile(p))
  assert size <= MAX_BUNDLE_BYTES
  lambdas, rates = [], []
  for run in RUNS:
    prefix = tf.train.latest_checkpoint(os.path.join(run, "checkpoints"))
    dtypes = tf.train.load_checkpoint(prefix).get_variable_to_dtype_map()
    assert tf.float16 in dtypes.values() and tf.float32 not in dtypes.values()
    assert not any("optimizer" in name.lower() for name in dtypes)
    lambdas.append(rd_lambda(run))
    rates.append(documented_record(run, PHOTO)["bpp_actual"])
  assert lambdas == sorted(lambdas) and rates == sorted(rates)


def reference_reconstruction(coder, image):
  """What evaluation reconstructs from hard-rounded latents (no file involved)."""
  _, reconstruction = coder.model.evaluate(image_utils.to_model_input(image)[None])
  return reconstruction[0]


@pytest.mark.slow
@pytest.mark.parametrize("run", RUNS, ids=os.path.basename)
def test_codes_a_held_out_photo_bit_exact_at_the_documented_rate_and_psnr(run):
  image = image_utils.read_image(next(p for p in list_images("embedded_eval")
                                      if os.path.basename(p) == PHOTO + ".png"))
  encoder = run_dir.load_codec(run, Model)
  for variable in encoder.model.trainable_variables:  # float16 storage, float32 model
    assert variable.dtype == tf.float32
    np.testing.assert_array_equal(variable.numpy(),
                                  variable.numpy().astype(np.float16).astype(np.float32))
  data = encoder.encode(image)
  # As `decompress` decodes: a decoder-only model from the float16 checkpoint, given the file.
  decoded = run_dir.load_codec_for_file(run, Model, data).decode(data)
  np.testing.assert_array_equal(decoded, reference_reconstruction(encoder, image))
  documented = documented_record(run, PHOTO)
  bpp = 8 * len(data) / (image.shape[0] * image.shape[1])
  psnr = metrics.psnr_rgb(image, decoded)
  print(f"{os.path.basename(run)}: {bpp:.4f} bpp, {psnr:.2f} dB (documented "
        f"{documented['bpp_actual']:.4f} bpp, {documented['psnr']:.2f} dB)")
  assert bpp == pytest.approx(documented["bpp_actual"], rel=0.01)
  assert psnr == pytest.approx(documented["psnr"], abs=0.05)


@pytest.mark.slow
def test_export_keeps_the_weights_in_either_storage_dtype(tmp_path):
  source = RUNS[0]
  exported = {dtype: export_run.export_run(source, str(tmp_path / dtype), 0, dtype)
              for dtype in ("float32", "float16")}
  data_bytes = {dtype: os.path.getsize(prefix + ".data-00000-of-00001")
                for dtype, prefix in exported.items()}
  assert data_bytes["float16"] < 0.55 * data_bytes["float32"]
  weights = [[v.numpy() for v in run_dir.load_codec(path, Model).model.trainable_variables]
             for path in (source, str(tmp_path / "float32"), str(tmp_path / "float16"))]
  for original, *copies in zip(*weights):
    for copy in copies:
      np.testing.assert_array_equal(copy, original)

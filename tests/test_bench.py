"""Every classic codec encodes and decodes a real photo; the bench CLI writes its result files."""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import configs
from common import bench
from common import image_utils
from common import metrics
from common import results


@pytest.fixture(scope="module")
def photo():
  """A 160x240 crop of scikit-image's coffee photo (lossless PNG in the wheel)."""
  skimage_dir = importlib.util.find_spec("skimage").submodule_search_locations[0]
  rgb = image_utils.read_image(os.path.join(skimage_dir, "data", "coffee.png"))
  return rgb[120:280, 180:420]


@pytest.mark.parametrize("key", sorted(bench.CODECS))
def test_codec_sweep_on_photo(photo, key):
  codec = bench.CODECS[key]
  low, high = codec.sweep[1], codec.sweep[-2]
  records = bench.bench_image(codec, photo, "coffee_crop", params=(low, high))
  assert [r[codec.param_name] for r in records] == [low, high]
  h, w, _ = photo.shape
  for r in records:
    assert r["num_bytes"] > 0
    assert r["bpp_actual"] == pytest.approx(8 * r["num_bytes"] / (h * w))
    assert 20 < r["psnr"] < 60
    assert 0 < r["msssim"] < 1
    assert r["msssim_db"] == pytest.approx(results.ms_ssim_db(r["msssim"]))
    assert r["enc_time_s"] > 0 and r["dec_time_s"] > 0
  assert records[1]["bpp_actual"] > records[0]["bpp_actual"]
  assert records[1]["psnr"] > records[0]["psnr"] + 1.0
  # The recorded quality is that of the real decoded file: encoders are deterministic,
  # so an independent round trip gives the same bytes and the same PSNR.
  data = codec.encode(photo, high)
  assert len(data) == records[1]["num_bytes"]
  decoded = codec.decode(data, (h, w))
  assert decoded.shape == photo.shape and decoded.dtype == np.uint8
  assert metrics.psnr_rgb(photo, decoded) == pytest.approx(records[1]["psnr"])


def test_ycbcr_round_trip(photo):
  planes = bench.rgb_to_ycbcr_planes(photo)
  assert planes.shape == (3,) + photo.shape[:2] and planes.dtype == np.uint8
  assert metrics.psnr_rgb(photo, bench.ycbcr_planes_to_rgb(planes)) > 50
  gray = np.full((2, 2, 3), 77, np.uint8)
  assert (bench.rgb_to_ycbcr_planes(gray)[1:] == 128).all()
  assert (bench.ycbcr_planes_to_rgb(bench.rgb_to_ycbcr_planes(gray)) == gray).all()


def test_cli_writes_curves(photo, tmp_path):
  image_utils.write_png(tmp_path / "images" / "left.png", photo[:, :120])
  image_utils.write_png(tmp_path / "images" / "right.png", photo[:, 120:])
  out = tmp_path / "out"
  subprocess.run(
      [sys.executable, "-m", "common.bench", "--dataset", str(tmp_path / "images" / "*.png"),
       "--codecs", "jpeg420,hevc444", "--out_dir", str(out)],
      cwd=configs.PROJECT_DIR, check=True, timeout=300)
  for key in ("jpeg420", "hevc444"):
    codec = bench.CODECS[key]
    with open(out / f"{key}.json") as f:
      curve = json.load(f)
    assert curve["name"] == codec.label
    assert curve["results"][codec.param_name] == list(codec.sweep)
    assert len(curve["results"]["bpp"]) == len(codec.sweep)
    assert curve["bpp_source"] == "actual"
    per_image = results.read_per_image(out / "per_image" / f"{key}.json")
    assert len(per_image) == 2 * len(codec.sweep)
    assert {r["instance_id"] for r in per_image} == {"left", "right"}
    # The aggregate is the per-image mean, and regrouping the per-image file reproduces it.
    first = [r for r in per_image if r[codec.param_name] == codec.sweep[0]]
    assert curve["results"]["psnr-rgb"][0] == pytest.approx(np.mean([r["psnr"] for r in first]))
    regrouped = results.load_curve(out / "per_image" / f"{key}.json", group_key=codec.param_name)
    assert regrouped["results"].keys() == curve["results"].keys()
    for name, values in curve["results"].items():
      assert regrouped["results"][name] == pytest.approx(values), name


def test_bad_arguments(tmp_path):
  with pytest.raises(ValueError, match="Unknown codec"):
    bench.parse_codecs("jpeg420,bpg")
  with pytest.raises(ValueError, match="No images match"):
    bench.find_images(str(tmp_path / "*.png"))
  with pytest.raises(ValueError, match="Unknown dataset name"):
    bench.find_images("no_such_dataset")

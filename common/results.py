"""Result files: per-image JSON lists and CompressAI-format R-D curves.

Two formats:
- per-image: a JSON list of dicts, one per (image, R-D point), with at least `instance_id`
  and the measurement fields in PER_IMAGE_FIELDS, plus any hyperparameters of the run.
- aggregate (CompressAI format, readable by `compressai.utils.plot`):
  {"name", "description", "results": {"bpp": [...], "psnr-rgb": [...], "ms-ssim-rgb": [...],
  "ms-ssim-db": [...], "encoding_time": [...], "decoding_time": [...]}}, one list entry per
  R-D point, each the mean over images of the per-image values.

Non-finite numbers (inf PSNR of a lossless result) are written as null so that the files
stay strict JSON; null means "not finite / not computable" and is skipped when plotting.
"""

import json
import math
import os
import tempfile

import numpy as np

from common import file_io

PER_IMAGE_FIELDS = ("instance_id", "bpp_estimated", "bpp_actual", "psnr", "msssim",
                    "msssim_db", "enc_time_s", "dec_time_s")
# Aggregate key -> per-image key it is the mean of (bpp is handled separately).
_AGGREGATED = (("psnr-rgb", "psnr"), ("ms-ssim-rgb", "msssim"), ("ms-ssim-db", "msssim_db"),
               ("encoding_time", "enc_time_s"), ("decoding_time", "dec_time_s"))


def ms_ssim_db(value):
  """MS-SSIM in dB, -10*log10(1 - v); inf for v == 1, None passes through (not computable)."""
  if value is None:
    return None
  if value >= 1.0:
    return math.inf
  return float(-10.0 * math.log10(1.0 - value))


def _strict(obj):
  """Replaces non-finite floats (also numpy scalars) by None, recursively."""
  if isinstance(obj, dict):
    return {k: _strict(v) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return [_strict(v) for v in obj]
  if isinstance(obj, np.generic):
    obj = obj.item()
  if isinstance(obj, float) and not math.isfinite(obj):
    return None
  return obj


def check_writable(folder):
  """Creates `folder` and checks that files can be written there, before long work."""
  try:
    os.makedirs(folder, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
      pass
  except OSError as e:
    raise OSError(f"Cannot write result files to {folder}: {e.strerror or e}.") from None


def write_json(path, obj):
  """Writes strict JSON atomically (creates parent folders)."""
  with file_io.atomic_path(path) as temporary:
    with open(temporary, "w") as f:
      json.dump(_strict(obj), f, indent=1, allow_nan=False)
      f.write("\n")


def read_json(path):
  try:
    with open(path) as f:
      return json.load(f)
  except FileNotFoundError:
    raise FileNotFoundError(f"Result file not found: {path}") from None
  except json.JSONDecodeError as e:
    raise ValueError(f"Result file {path} is not valid JSON: {e}") from None


def _check_records(records, source):
  if not isinstance(records, list) or not records:
    raise ValueError(f"{source}: expected a non-empty list of per-image records.")
  for i, record in enumerate(records):
    if not isinstance(record, dict) or "instance_id" not in record:
      raise ValueError(f"{source}: record {i} is not a dict with an 'instance_id'.")
    missing = [k for k in PER_IMAGE_FIELDS if k not in record]
    if missing:
      raise ValueError(f"{source}: record {i} ({record['instance_id']}) lacks {missing}.")


def write_per_image(path, records):
  """Writes a per-image result list (validated: every record has PER_IMAGE_FIELDS)."""
  _check_records(records, f"per-image records for {path}")
  write_json(path, records)


def read_per_image(path):
  records = read_json(path)
  _check_records(records, str(path))
  return records


def _mean(values):
  """Mean, or None if any value is missing or not finite (a mean would be misleading)."""
  if any(v is None or not math.isfinite(v) for v in values):
    return None
  return float(np.mean(values))


def aggregate(records_by_point, name, description, param_key=None):
  """CompressAI-format curve from per-image records grouped by R-D point.

  Args:
    records_by_point: sequence of non-empty record lists, one per R-D point.
    name, description: copied into the result.
    param_key: optional record field that is constant within a point (e.g. "quality");
      its values are added as results[param_key].

  "bpp" is the mean actual bpp (bytes of a real file) when every record has one, else the
  mean estimated bpp; top-level "bpp_source" says which. With actual rates, the means of the
  estimated rate (the authors' definition) and of the coded rate are added as
  results.bpp_estimated / results.bpp_coded where every record has them, so curves can be
  compared with published (estimated) ones (see `with_rate`). Points are sorted by bpp.
  """
  points = []
  for records in records_by_point:
    _check_records(records, f"{name}: R-D point")
    points.append(records)
  if not points:
    raise ValueError(f"{name}: no R-D points to aggregate.")
  use_actual = all(r["bpp_actual"] is not None for records in points for r in records)
  bpp_key = "bpp_actual" if use_actual else "bpp_estimated"
  if any(r[bpp_key] is None for records in points for r in records):
    raise ValueError(f"{name}: some records lack bpp_actual and some lack bpp_estimated, so "
                     "no rate is defined for every record.")
  points.sort(key=lambda records: np.mean([r[bpp_key] for r in records]))
  results = {"bpp": [float(np.mean([r[bpp_key] for r in records])) for records in points]}
  if use_actual:
    for key in ("bpp_estimated", "bpp_coded"):
      if all(r.get(key) is not None for records in points for r in records):
        results[key] = [float(np.mean([r[key] for r in records])) for records in points]
  for out_key, record_key in _AGGREGATED:
    results[out_key] = [_mean([r[record_key] for r in records]) for records in points]
  if param_key is not None:
    values = []
    for records in points:
      distinct = {json.dumps(r.get(param_key)) for r in records}
      if len(distinct) != 1:
        raise ValueError(f"{name}: '{param_key}' differs within one R-D point: {distinct}.")
      values.append(records[0].get(param_key))
    results[param_key] = values
  return {"name": name, "description": description,
          "bpp_source": "actual" if use_actual else "estimated", "results": results}


def _normalize_curve(curve, source):
  results = curve.get("results")
  if not isinstance(results, dict) or "bpp" not in results:
    raise ValueError(f"{source}: CompressAI-format curve needs results.bpp.")
  n = len(results["bpp"])
  for key, values in results.items():
    if not isinstance(values, list) or len(values) != n:
      raise ValueError(f"{source}: results.{key} must be a list of {n} values (one per bpp).")
  if "ms-ssim-rgb" in results and "ms-ssim-db" not in results:
    # CompressAI files carry MS-SSIM only as a value in [0, 1].
    results["ms-ssim-db"] = [ms_ssim_db(v) for v in results["ms-ssim-rgb"]]
  return {"name": curve.get("name") or os.path.splitext(os.path.basename(source))[0],
          "description": curve.get("description", ""),
          **{k: v for k, v in curve.items() if k not in ("name", "description", "results")},
          "results": results}


def load_curve(path, group_key=None):
  """Reads an R-D curve as a CompressAI-format dict from any of our result files.

  Accepts a CompressAI-format curve (ours or CompressAI's own results/*.json, which may lack
  ms-ssim-db; it is derived from ms-ssim-rgb) or a per-image list. A per-image list is one
  R-D point unless `group_key` names the record field that tells points apart (e.g.
  "quality" for a codec sweep, "rd_lambda" for a model sweep).
  """
  path = os.fspath(path)
  data = read_json(path)
  if isinstance(data, dict):
    return _normalize_curve(data, path)
  _check_records(data, path)
  stem = os.path.splitext(os.path.basename(path))[0]
  names = {r.get("name") for r in data}
  name = names.pop() if len(names) == 1 and None not in names else stem
  if group_key is None:
    groups = [data]
  else:
    if any(group_key not in r for r in data):
      raise ValueError(f"{path}: group key '{group_key}' is missing from some records.")
    by_value = {}
    for r in data:
      by_value.setdefault(json.dumps(r[group_key], sort_keys=True), []).append(r)
    groups = list(by_value.values())
  return aggregate(groups, name, f"aggregated from per-image results {path}",
                   param_key=group_key)


RATES = ("actual", "estimated")


def rate_of(curve):
  """Which rate a curve's results.bpp is: 'actual' (file sizes; also CompressAI's own result
  files, which have no bpp_source) or 'estimated' (e.g. the published anchors)."""
  return curve.get("bpp_source", "actual")


def has_rate(curve, rate):
  return rate_of(curve) == rate or f"bpp_{rate}" in curve["results"]


def with_rate(curve, rate):
  """The curve with results.bpp holding its `rate` ('actual' or 'estimated')."""
  if rate not in RATES:
    raise ValueError(f"Unknown rate {rate!r}; valid: {RATES}.")
  source = rate_of(curve)
  if source == rate:
    return curve
  if not has_rate(curve, rate):
    raise ValueError(f"Curve '{curve['name']}' has no {rate} rate (only {source}).")
  res = dict(curve["results"])
  res[f"bpp_{source}"], res["bpp"] = res["bpp"], res.pop(f"bpp_{rate}")
  return {**curve, "bpp_source": rate, "results": res}


def like_with_like(curves, rate="auto"):
  """Curves on one rate. 'auto': the estimated rate when some curve only has that (published
  anchors) and every curve has it, else each curve's own rate (file sizes for ours)."""
  if rate == "auto":
    estimated_only = any(rate_of(c) == "estimated" and not has_rate(c, "actual") for c in curves)
    if not (estimated_only and all(has_rate(c, "estimated") for c in curves)):
      return list(curves)
    rate = "estimated"
  return [with_rate(c, rate) for c in curves]

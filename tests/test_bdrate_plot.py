"""Result files round trip; BD-rate sanity; R-D plots are written."""

import glob
import json
import math
import os

import numpy as np
from PIL import Image
import pytest

import configs
from common import bdrate
from common import plot_rd
from common import results

ANCHORS = sorted(glob.glob(os.path.join(configs.PROJECT_DIR, "anchors", "*.json")))
TWO_LAYER = os.path.join(configs.PROJECT_DIR, "anchors", "paper_2layer_kodak.json")


def _record(instance_id, bpp, psnr, msssim, **extra):
  return {"instance_id": instance_id, "bpp_estimated": bpp * 1.01, "bpp_actual": bpp,
          "psnr": psnr, "msssim": msssim, "msssim_db": -10 * math.log10(1 - msssim),
          "enc_time_s": 0.5, "dec_time_s": 0.25, **extra}


def _scaled(curve, factor):
  return {**curve, "name": f"{curve['name']} x{factor}",
          "results": {**curve["results"], "bpp": [b * factor for b in curve["results"]["bpp"]]}}


def test_per_image_round_trip(tmp_path):
  records = [_record("a", 0.5, 30.0, 0.95, rd_lambda=0.01),
             _record("b", 0.7, math.inf, 0.97, rd_lambda=0.01)]
  path = tmp_path / "sub" / "per_image.json"
  results.write_per_image(path, records)
  assert not [p for p in os.listdir(path.parent) if p != "per_image.json"]  # no temp files
  loaded = results.read_per_image(path)
  assert loaded[0] == records[0]
  assert loaded[1]["psnr"] is None  # strict JSON: inf is stored as null
  with pytest.raises(ValueError, match="lacks"):
    results.write_per_image(path, [{"instance_id": "x", "psnr": 1.0}])


def test_aggregate_and_load_curve(tmp_path):
  low = [_record("a", 0.2, 28.0, 0.90, quality=10), _record("b", 0.4, 30.0, 0.94, quality=10)]
  high = [_record("a", 1.0, 36.0, 0.98, quality=50), _record("b", 1.2, 38.0, 0.99, quality=50)]
  curve = results.aggregate([high, low], "codec", "test curve", param_key="quality")
  res = curve["results"]
  assert curve["bpp_source"] == "actual"
  assert res["bpp"] == pytest.approx([0.3, 1.1])  # sorted by rate
  assert res["psnr-rgb"] == pytest.approx([29.0, 37.0])
  assert res["ms-ssim-rgb"] == pytest.approx([0.92, 0.985])
  assert res["ms-ssim-db"][0] == pytest.approx((10.0 + 10 * math.log10(1 / 0.06)) / 2)
  assert res["quality"] == [10, 50]
  assert res["decoding_time"] == pytest.approx([0.25, 0.25])
  path = tmp_path / "curve.json"
  results.write_json(path, curve)
  assert results.load_curve(path) == curve
  # A per-image list is one point unless a group key separates the points.
  results.write_per_image(tmp_path / "all.json", low + high)
  assert results.load_curve(tmp_path / "all.json")["results"]["bpp"] == pytest.approx([0.7])
  regrouped = results.load_curve(tmp_path / "all.json", group_key="quality")
  assert regrouped["results"]["psnr-rgb"] == pytest.approx(res["psnr-rgb"])
  with pytest.raises(ValueError, match="group key 'rd_lambda'"):
    results.load_curve(tmp_path / "all.json", group_key="rd_lambda")


def test_estimated_bpp_used_when_actual_missing():
  records = [_record("a", 0.5, 30.0, 0.95)]
  records[0]["bpp_actual"] = None
  curve = results.aggregate([records], "model", "estimated only")
  assert curve["bpp_source"] == "estimated"
  assert curve["results"]["bpp"] == pytest.approx([0.505])


def test_load_compressai_format_and_bad_files(tmp_path):
  compressai = {"name": "bpg", "description": "x",
                "results": {"bpp": [0.1, 0.2], "psnr-rgb": [28.0, 30.0],
                            "ms-ssim-rgb": [0.9, 0.99]}}
  (tmp_path / "c.json").write_text(json.dumps(compressai))
  curve = results.load_curve(tmp_path / "c.json")
  assert curve["results"]["ms-ssim-db"] == pytest.approx([10.0, 20.0])
  with pytest.raises(FileNotFoundError, match="missing.json"):
    results.load_curve(tmp_path / "missing.json")
  (tmp_path / "broken.json").write_text("{")
  with pytest.raises(ValueError, match="not valid JSON"):
    results.load_curve(tmp_path / "broken.json")
  (tmp_path / "ragged.json").write_text(json.dumps({"results": {"bpp": [1], "psnr-rgb": []}}))
  with pytest.raises(ValueError, match="psnr-rgb"):
    results.load_curve(tmp_path / "ragged.json")


def test_anchor_files():
  assert len(ANCHORS) == 3
  for path in ANCHORS:
    curve = results.load_curve(path)
    assert "published, estimated bpp, Kodak" in curve["description"]
    assert len(curve["results"]["bpp"]) == len(curve["results"]["psnr-rgb"]) == 7
    assert np.all(np.diff(curve["results"]["bpp"]) > 0)


@pytest.mark.parametrize("method", bdrate.METHODS)
def test_bd_rate_sanity(method):
  anchor = results.load_curve(TWO_LAYER)
  same = bdrate.bd(anchor, anchor, method=method)
  assert same["bd_rate_percent"] == pytest.approx(0.0, abs=1e-9)
  assert same["bd_metric_db"] == pytest.approx(0.0, abs=1e-9)
  cheaper = bdrate.bd(anchor, _scaled(anchor, 0.9), method=method)
  assert cheaper["bd_rate_percent"] == pytest.approx(-10.0, abs=1e-6)
  assert cheaper["bd_metric_db"] > 0.1
  assert bdrate.bd(_scaled(anchor, 0.9), anchor, method=method)["bd_rate_percent"] == (
      pytest.approx(100 / 0.9 - 100, abs=1e-6))


def test_bd_rate_known_curves():
  # The paper: 2-layer + SGA saves rate vs. 2-layer at equal PSNR.
  two_layer = results.load_curve(TWO_LAYER)
  sga = results.load_curve(TWO_LAYER.replace("2layer", "2layer_sga"))
  row = bdrate.bd(two_layer, sga)
  assert -20 < row["bd_rate_percent"] < -5
  assert row["bd_metric_db"] > 0.2


def test_bd_rate_errors_and_dominated_points():
  anchor = results.load_curve(TWO_LAYER)
  short = {"name": "short", "results": {k: v[:3] for k, v in anchor["results"].items()}}
  with pytest.raises(ValueError, match="at least 4"):
    bdrate.bd(anchor, short)
  far = {"name": "far", "results": {"bpp": [5, 6, 7, 8], "psnr-rgb": [50, 51, 52, 53]}}
  with pytest.raises(ValueError, match="do not overlap"):
    bdrate.bd(anchor, far)
  with pytest.raises(ValueError, match="no 'ms-ssim-db'"):
    bdrate.bd(anchor, anchor, metric="ms-ssim-db")
  # A point with more bits and lower PSNR than its neighbour is ignored.
  res = anchor["results"]
  extra = {"name": "extra", "results": {"bpp": res["bpp"] + [0.5], "psnr-rgb": res["psnr-rgb"] +
                                        [30.0]}}
  assert bdrate.bd(anchor, extra)["bd_rate_percent"] == pytest.approx(0.0, abs=1e-9)


def test_bdrate_cli(tmp_path, capsys):
  scaled = tmp_path / "scaled.json"
  results.write_json(scaled, _scaled(results.load_curve(TWO_LAYER), 0.9))
  out = tmp_path / "table.json"
  bdrate.main(["--anchor", TWO_LAYER, "--test", str(scaled), TWO_LAYER, "--method", "akima",
               "--out", str(out)])
  assert "-10.00%" in capsys.readouterr().out
  rows = json.loads(out.read_text())
  assert [r["method"] for r in rows] == ["akima", "akima"]
  assert rows[1]["bd_rate_percent"] == pytest.approx(0.0, abs=1e-9)
  one_point = tmp_path / "one.json"
  results.write_json(one_point, {"name": "one", "results": {"bpp": [0.5], "psnr-rgb": [30.0]}})
  with pytest.raises(SystemExit, match="1 of 2 comparisons failed(.|\n)*at least 4"):
    bdrate.main(["--anchor", TWO_LAYER, "--test", str(one_point), str(scaled)])
  assert "-10.00%" in capsys.readouterr().out  # the good row is still reported


def write_codec_curve(path):
  results.write_json(path, {"name": "codec", "description": "",
                            "results": {"bpp": [0.2, 0.5, 1.0], "psnr-rgb": [27.0, 31.0, 35.0],
                                        "ms-ssim-db": [10.0, 13.0, 16.0]}})
  return path


def test_plot_draws_one_panel_per_metric(tmp_path):
  codec = write_codec_curve(tmp_path / "codec.json")
  two_panels = tmp_path / "rd.png"
  plot_rd.main([str(codec), *ANCHORS, "--out", str(two_panels), "--title", "test"])
  one_panel = tmp_path / "psnr.png"
  plot_rd.main([str(codec), "--anchor", TWO_LAYER, "--out", str(one_panel),
                "--metric", "psnr-rgb"])
  with Image.open(two_panels) as wide, Image.open(one_panel) as narrow:
    assert wide.format == narrow.format == "PNG"
    assert wide.width > 1.8 * narrow.width  # PSNR and MS-SSIM panels side by side


def test_plot_draws_files_under_anchors_as_anchors(tmp_path):
  assert all(plot_rd._is_anchor_file(p) for p in ANCHORS)  # pylint: disable=protected-access
  codec = write_codec_curve(tmp_path / "codec.json")
  assert not plot_rd._is_anchor_file(str(codec))  # pylint: disable=protected-access


def test_curves_are_compared_on_like_rates(tmp_path, capsys):
  """Against the published (estimated-rate) anchors, our curves use their estimated rate by
  default; among curves with real files, the file sizes; the output says which."""
  anchor = results.load_curve(TWO_LAYER)
  assert results.rate_of(anchor) == "estimated"
  points = [[_record("a", b, q, 0.9)] for b, q in zip(anchor["results"]["bpp"],
                                                       anchor["results"]["psnr-rgb"])]
  ours = results.aggregate(points, "ours", "test")
  assert ours["results"]["bpp_estimated"] == pytest.approx(
      [1.01 * b for b in anchor["results"]["bpp"]])
  _, same = results.like_with_like([anchor, ours])
  assert results.rate_of(same) == "estimated" and same["results"]["bpp"] == pytest.approx(
      ours["results"]["bpp_estimated"])
  classic = {"name": "jpeg", "results": {"bpp": [0.1, 0.2], "psnr-rgb": [28.0, 30.0]}}
  assert results.like_with_like([ours, classic]) == [ours, classic]
  with pytest.raises(ValueError, match="no estimated rate"):
    results.like_with_like([anchor, classic], "estimated")
  path = tmp_path / "ours.json"
  results.write_json(path, ours)
  bdrate.main(["--anchor", TWO_LAYER, "--test", str(path)])
  out = capsys.readouterr().out
  assert "estimated bpp" in out and "estimated" in out.splitlines()[-1]
  assert "+1.00%" in out  # 1% more estimated bits at equal PSNR

"""`make demo` end to end with a few training steps: outputs, the printed table, and reuse."""
import json
import os
import re
import subprocess
import sys

import pytest

from common import codec, image_utils, metrics

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM_STEPS = 30


def run_demo(tmp_path):
  command = [sys.executable, "-m", "mshyper.demo", "--num_steps", str(NUM_STEPS),
             "--out", str(tmp_path / "out"), "--experiments_dir", str(tmp_path / "experiments")]
  env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
  result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  return result


@pytest.mark.slow
def test_demo_end_to_end_then_rerun_reuses_everything(tmp_path):
  first = run_demo(tmp_path)
  out = tmp_path / "out"
  for stage in range(1, 6):
    assert f"[demo {stage}/5" in first.stderr
  assert len(re.findall(rf"training {NUM_STEPS} steps", first.stderr)) == 4

  # The compressed photo is a real bitstream that decodes to the written PNG.
  data = (out / "coffee.ntc").read_bytes()
  assert data[:4] == codec.MAGIC
  decoded = image_utils.read_image(out / "coffee_decoded.png")
  original = image_utils.read_image(os.path.join(ROOT, "data", "embedded", "eval", "coffee.png"))
  assert decoded.shape == original.shape
  with open(out / "rd.png", "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"

  summary = json.loads((out / "summary.json").read_text())
  assert summary["num_steps"] == NUM_STEPS
  assert summary["codec_round_trip"]["file_bytes"] == len(data)
  assert summary["codec_round_trip"]["psnr"] == pytest.approx(metrics.psnr_rgb(original, decoded))
  assert len(summary["curves"]["ours"]["results"]["bpp"]) == 4
  assert set(summary["bd_vs_anchor"]) == {"webp", "ours"}
  assert len(list((out / "results" / "embedded_eval" / f"demo-{NUM_STEPS}steps").glob(
      "wid=*.json"))) == 4

  # One table on stdout: a row per R-D point of JPEG (8), WebP (8) and our sweep (4).
  table = first.stdout
  assert "BD-rate vs JPEG 4:2:0" in table
  assert len(re.findall(r"quality=\d+ ", table)) == 16
  assert len(re.findall(r"rd_lambda=[\d.]+ ", table)) == 4
  assert re.search(r"WebP .* [+-]\d+\.\d%", table)

  second = run_demo(tmp_path)
  assert not re.search(rf"training {NUM_STEPS} steps", second.stderr)
  assert len(re.findall(r"\[train \d/4\] .*: reusing", second.stderr)) == 4
  assert len(re.findall(r"\[eval \d/4\] reusing", second.stderr)) == 4
  assert "BD-rate vs JPEG 4:2:0" in second.stdout

"""`make demo` end to end on the embedded photos with a few fine-tune steps: outputs, the printed
table, rate order, and reuse."""
import glob
import json
import os
import re
import subprocess
import sys

import pytest

import configs
from common import codec, image_utils, metrics

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM_RUNS = len(glob.glob(os.path.join(ROOT, "pretrained", "mshyper_small", "wid=*")))
FINETUNE_STEPS = 5


def run_demo(tmp_path):
  command = [sys.executable, "-m", "mshyper.demo", "--dataset", "embedded_eval",
             "--train_dataset", "embedded_train", "--finetune_steps", str(FINETUNE_STEPS),
             "--out_dir", str(tmp_path / "out"), "--experiments_dir", str(tmp_path / "experiments")]
  env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
  result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900)
  assert result.returncode == 0, result.stderr[-3000:]
  return result


@pytest.mark.slow
def test_demo_end_to_end_then_rerun_reuses_everything(tmp_path):
  first = run_demo(tmp_path)
  out = tmp_path / "out"
  for stage in range(1, 6):
    assert f"[demo {stage}/5" in first.stderr
  assert len(re.findall(r"\[eval \d/\d\] .*wid=", first.stderr)) == NUM_RUNS
  assert f"num_steps={FINETUNE_STEPS}" in first.stderr

  # The compressed photo is a real bitstream that decodes to the written PNG.
  data = (out / "coffee.ntc").read_bytes()
  assert data[:4] == codec.MAGIC
  decoded = image_utils.read_image(out / "coffee_decoded.png")
  original = image_utils.read_image(
      os.path.join(configs.DATA_DIR, "embedded", "eval", "coffee.png"))
  assert decoded.shape == original.shape
  with open(out / "rd.png", "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  # Every pretrained model and the fine-tuned one coded every held-out photo to a file.
  assert len(list((out / "bitstreams").glob("*/*.ntc"))) == 2 * (NUM_RUNS + 1)

  summary = json.loads((out / "summary.json").read_text())
  assert summary["codec_round_trip"]["file_bytes"] == len(data)
  assert summary["codec_round_trip"]["psnr"] == pytest.approx(metrics.psnr_rgb(original, decoded))
  ours = summary["curves"]["ours"]["results"]
  assert len(ours["bpp"]) == NUM_RUNS
  assert ours["bpp"] == sorted(ours["bpp"]) and ours["rd_lambda"] == sorted(ours["rd_lambda"])
  assert set(summary["bd_vs_anchor"]) == {"webp", "hevc444fast", "ours"}
  assert "bd_rate_percent" in summary["bd_vs_anchor"]["ours"]["psnr-rgb"]
  assert summary["finetune"]["num_steps"] == FINETUNE_STEPS
  assert len(summary["curves"]["finetune"]["results"]["bpp"]) == 1

  # One table on stdout: a row per R-D point of JPEG (8), WebP (8), HEVC (7), the models.
  table = first.stdout
  assert "BD-rate vs JPEG 4:2:0" in table
  assert len(re.findall(r"quality=\d+ ", table)) == 16
  assert len(re.findall(r"qp=\d+ ", table)) == 7
  assert len(re.findall(r"rd_lambda=[\d.]+ ", table)) == NUM_RUNS
  assert re.search(r"ours, pretrained .* [+-]\d+\.\d%", table)
  assert f"demo fine-tune: lambda 0.04 -> 0.08, {FINETUNE_STEPS} steps:" in table

  second = run_demo(tmp_path)
  assert "[train] reusing" in second.stderr
  assert len(re.findall(r"\[eval \d/\d\] reusing", second.stderr)) == NUM_RUNS + 1
  assert len(re.findall(r"\[bench\] reusing", second.stderr)) == 3
  assert "BD-rate vs JPEG 4:2:0" in second.stdout

"""mshyper.pretrain, the bundled models' recipe as a command: its budget-curve rows and plot, and
its refusal of bad budgets. (Training a family is what `make pretrained` does; too slow here.)"""
import os
import shutil

import pytest

from common import results
from mshyper import pretrain

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUNDLED_AGGREGATE = os.path.join(ROOT, "pretrained", "results", "eval24", "mshyper_small",
                                 "aggregate.json")
TIMES = dict(base_steps=8000, finetune_steps=800, finetunes=4, base_seconds=600,
             finetune_seconds=300)


@pytest.fixture(name="models_dir")
def fixture_models_dir(tmp_path):
  models_dir = tmp_path / "budget8000"
  models_dir.mkdir()
  results.write_json(str(models_dir / pretrain.TIMES_FILE), TIMES)
  return str(models_dir)


def test_budget_row_counts_steps_and_time_and_is_zero_against_itself(models_dir):
  family = results.load_curve(BUNDLED_AGGREGATE)
  row = pretrain.budget_row(models_dir, BUNDLED_AGGREGATE, family)
  assert row["total_steps"] == 8000 + 4 * 800
  assert row["training_minutes"] == pytest.approx(15.0)
  assert row["bd_rate_percent_psnr-rgb"] == pytest.approx(0.0, abs=1e-6)
  assert row["bd_rate_percent_ms-ssim-db"] == pytest.approx(0.0, abs=1e-6)
  assert [p["bpp"] for p in row["rd_points"]] == sorted(p["bpp"] for p in row["rd_points"])


def test_budget_row_records_why_a_bd_rate_is_undefined(models_dir, tmp_path):
  family = results.load_curve(BUNDLED_AGGREGATE)
  two_points = dict(family, results={key: values[:2] for key, values in
                                     family["results"].items()})
  anchor_path = str(tmp_path / "two_points.json")
  results.write_json(anchor_path, two_points)
  row = pretrain.budget_row(models_dir, BUNDLED_AGGREGATE, results.load_curve(anchor_path))
  assert row["bd_rate_percent_psnr-rgb"] is None
  assert "at least 4" in row["bd_rate_undefined_psnr-rgb"]


def test_plot_writes_a_png_with_and_without_defined_points(models_dir, tmp_path):
  family = results.load_curve(BUNDLED_AGGREGATE)
  row = pretrain.budget_row(models_dir, BUNDLED_AGGREGATE, family)
  undefined = dict(row, **{"bd_rate_percent_psnr-rgb": None, "bd_rate_percent_ms-ssim-db": None})
  for rows, name in (([row], "defined.png"), ([undefined], "undefined.png")):
    pretrain.plot_curve(rows, str(tmp_path / name), "eval24")
    with open(tmp_path / name, "rb") as f:
      assert f.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("budgets, message", [("1000,abc", "comma-separated integers"),
                                              ("5", "at least 10")])
def test_bad_budgets_are_refused(budgets, message, capsys):
  with pytest.raises(SystemExit) as exit_info:
    pretrain.main(["--base_steps", budgets])
  assert exit_info.value.code == 2
  assert message in capsys.readouterr().err


def test_existing_models_are_not_retrained(models_dir, tmp_path, monkeypatch):
  trained = []
  monkeypatch.setattr(pretrain, "train_family", lambda *args: trained.append(args))
  monkeypatch.setattr(pretrain, "anchor_curve",
                      lambda dataset, out_dir: results.load_curve(BUNDLED_AGGREGATE))

  def evaluate(models_dir, datasets, results_dir):
    folder = os.path.join(results_dir, datasets[0], os.path.basename(models_dir))
    os.makedirs(folder)
    shutil.copyfile(BUNDLED_AGGREGATE, os.path.join(folder, "aggregate.json"))
    return [os.path.join(folder, "aggregate.json")]

  monkeypatch.setattr(pretrain, "evaluate_family", evaluate)
  out_dir = str(tmp_path / "curve")
  os.makedirs(os.path.join(out_dir, "models"))
  shutil.move(models_dir, os.path.join(out_dir, "models", "budget8000"))
  pretrain.budget_curve([8000], out_dir, "eval24")
  assert not trained
  summary = results.read_json(os.path.join(out_dir, "budget_curve.json"))
  assert [row["base_steps"] for row in summary["budgets"]] == [8000]
  assert os.path.exists(os.path.join(out_dir, "budget_curve.png"))

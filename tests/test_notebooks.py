"""The notebooks and their logic (common/notebook_utils.py).

The notebooks are committed without outputs, and both run headless (nbclient) without a cell
error: vis_syn_filters.ipynb on the tests' quickstart run (2-layer synthesis, conftest.py),
get_flops.ipynb on the paper configs, where every published number must be reproduced or
explained.
"""
import os
import time

import nbclient
import nbformat
import numpy as np
import pytest
import tensorflow as tf

import configs
from common import config_utils, notebook_utils, profile_utils, run_dir, transforms
from conftest import QUICKSTART_STEPS, ROOT
from mshyper.models import Model as HyperModel

NOTEBOOKS_DIR = os.path.join(ROOT, "notebooks")
NOTEBOOKS = ("get_flops.ipynb", "vis_syn_filters.ipynb")
QUICKSTART = os.path.join(ROOT, "mshyper", "configs", "quickstart.py")


def built(config, latent_channels):
  synthesis = transforms.build_transform(config)
  synthesis(tf.zeros((1, 2, 2, latent_channels)))
  return synthesis


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebooks_have_no_outputs(name):
  notebook = nbformat.read(os.path.join(NOTEBOOKS_DIR, name), as_version=4)
  nbformat.validate(notebook)
  code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
  assert code_cells
  for cell in code_cells:
    assert cell.outputs == [] and cell.execution_count is None, f"{name}: clear the outputs"


def test_filter_grid_layout_and_scaling():
  tiles = np.zeros((3, 2, 2))
  tiles[0, 0, 0], tiles[0, 1, 1] = 4., -2.
  tiles[1] = -1e-3
  grid = notebook_utils.filter_grid(tiles, columns=2)
  assert grid.shape == (5, 5)
  np.testing.assert_allclose(grid[:2, :2], [[1., 0.5], [0.5, 0.25]])
  np.testing.assert_allclose(grid[:2, 3:], 0.)  # Scaled per tile: a tiny one fills the range.
  np.testing.assert_allclose(grid[3:, :2], 0.5)  # All-zero tile: mid-gray.
  np.testing.assert_allclose(grid[2], 1.)  # White separators and empty slots.
  np.testing.assert_allclose(grid[3:, 3:], 1.)
  assert notebook_utils.filter_grid(np.ones((5, 3, 4, 3))).shape == (7, 14, 3)
  with pytest.raises(ValueError, match="filter_grid expects"):
    notebook_utils.filter_grid(np.ones((2, 3, 3, 2)))


def test_jpeg_like_filters_are_its_kernels_in_channel_order():
  synthesis = built(dict(cls="JPEGLikeSynthesis"), latent_channels=6)
  kernels = synthesis.conv.kernel.numpy().transpose(3, 0, 1, 2)
  # A transposed conv paints its (unflipped) kernel: the impulse responses are the kernels.
  np.testing.assert_allclose(notebook_utils.impulse_responses(synthesis, 6), kernels, atol=1e-6)
  order = [5, 0, 1, 2, 3, 4]
  (title, grid), = notebook_utils.synthesis_filter_views(synthesis, channel_order=order).items()
  assert "18x18 RGB patch" in title and grid.shape == (2 * 19 - 1, 3 * 19 - 1, 3)
  np.testing.assert_allclose(grid[:18, :18], notebook_utils.filter_grid(kernels[5:])[:18, :18])


@pytest.mark.parametrize("config, hidden", [
    (dict(cls="TwoLayerResSynthesis", channels=(12, 3)), 12),
    (dict(cls="TwoLayerSynthesis", channels=(24, 3)), 24)])
def test_two_layer_filter_views(config, hidden):
  synthesis = built(config, latent_channels=20)
  first_layer, effective = notebook_utils.synthesis_filter_views(
      synthesis, first_layer_channels=16).values()
  assert first_layer.shape == (16 * 14 - 1, hidden * 14 - 1)
  responses = notebook_utils.impulse_responses(synthesis, 20)
  # Supports: 13x13 stride 8 then 5x5 stride 2 -> (13 - 1) * 2 + 5 = 29 pixels.
  assert responses.shape == (20, 29, 29, 3)
  side = 29 + 1
  assert effective.shape == (4 * side - 1, 5 * side - 1, 3)


def test_other_synthesis_has_a_clear_message():
  synthesis = built(dict(cls="MBT2018Synthesis", channels_base=8), latent_channels=8)
  with pytest.raises(notebook_utils.UnsupportedSynthesisError, match="MBT2018Synthesis"):
    notebook_utils.synthesis_filter_views(synthesis)


def test_profile_model_per_module():
  config = config_utils.load_config_module(QUICKSTART).get_config()
  model = run_dir.build_model(HyperModel, config.model_config)
  stats = notebook_utils.profile_model(model, 128, 192)
  y = model.analysis(tf.zeros((1, 128, 192, 3)))
  z = model.hyper_analysis(y)
  assert stats["flops_per_pixel"]["h_s"] == profile_utils.flops_per_pixel(
      model.hyper_synthesis, z.shape, 128 * 192) > 0
  assert stats["flops_per_pixel"]["g_s"] == profile_utils.flops_per_pixel(
      model.synthesis, y.shape, 128 * 192) > 0
  assert stats["flops_per_pixel"]["decode"] == (stats["flops_per_pixel"]["g_s"] +
                                                stats["flops_per_pixel"]["h_s"])
  assert stats["params"]["h_a"] == profile_utils.count_params(model.hyper_analysis)
  with pytest.raises(ValueError, match="not a multiple of the model's downsampling factor 64"):
    notebook_utils.profile_model(model, 100, 192)


def test_comparison_statuses():
  table = [dict(model="Minnen 2018",
                flops_per_pixel=dict(g_a=187583.4, h_a=13451.6, g_s=187585., h_s=30355.,
                                     decode=217939.3),
                params=dict(g_a=1, h_a=6042560, g_s=3505347, h_s=9166241, decode=0)),
           dict(model="not published", flops_per_pixel={}, params={})]
  statuses = {(c["module"], c["quantity"]): c["status"]
              for c in notebook_utils.compare_with_published(table)}
  assert len(statuses) == 8  # 5 FLOP counts + 3 parameter counts published for Minnen 2018.
  assert statuses[("decode", "flops_per_pixel")] == "match"  # Within the rounding.
  assert statuses[("g_s", "params")] == "explained"  # The shared IGDN of the published model.
  assert statuses[("h_s", "params")] == "unexplained"


def test_notebook_workdir(tmp_path, monkeypatch):
  monkeypatch.setattr(configs, "EXPERIMENTS_DIR", str(tmp_path))
  monkeypatch.delenv(notebook_utils.WORKDIR_ENV, raising=False)
  with pytest.raises(FileNotFoundError, match=notebook_utils.WORKDIR_ENV):
    notebook_utils.notebook_workdir()
  for i, name in enumerate(("wid=0-new", "wid=1-old")):
    index = tmp_path / "local-x" / name / "checkpoints" / "checkpoint"
    index.parent.mkdir(parents=True)
    index.write_text("")
    os.utime(index, (time.time() - 100 * i,) * 2)
  assert notebook_utils.notebook_workdir() == str(tmp_path / "local-x" / "wid=0-new")
  monkeypatch.setenv(notebook_utils.WORKDIR_ENV, str(tmp_path / "missing"))
  with pytest.raises(FileNotFoundError, match="is not a directory"):
    notebook_utils.notebook_workdir()
  with pytest.raises(FileNotFoundError, match="run.json"):
    notebook_utils.load_trained_model(str(tmp_path))


def execute(name):
  """Runs a notebook as Jupyter would (kernel started in notebooks/); raises on a cell error."""
  notebook = nbformat.read(os.path.join(NOTEBOOKS_DIR, name), as_version=4)
  nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                          resources={"metadata": {"path": NOTEBOOKS_DIR}}).execute()
  return notebook


def images_shown(notebook):
  return sum("image/png" in output.get("data", {})
             for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs)


@pytest.mark.slow
def test_vis_syn_filters_notebook_runs_on_a_trained_checkpoint(trained_quickstart, monkeypatch):
  _, workdir = trained_quickstart("mshyper")
  monkeypatch.setenv(notebook_utils.WORKDIR_ENV, workdir)
  notebook = execute("vis_syn_filters.ipynb")
  text = "".join(output.get("text", "") for cell in notebook.cells
                 if cell.cell_type == "code" for output in cell.outputs)
  assert f"Run: {workdir}" in text and f"trained {QUICKSTART_STEPS['mshyper']} steps" in text
  assert images_shown(notebook) == 3  # Photo + reconstruction, first layer, effective filters.


@pytest.mark.slow
def test_get_flops_notebook_reproduces_the_published_numbers():
  notebook = nbformat.read(os.path.join(NOTEBOOKS_DIR, "get_flops.ipynb"), as_version=4)
  notebook.cells.append(nbformat.v4.new_code_cell(
      "from common.notebook_utils import EXPLAINED_DIFFERENCES\n"
      "assert all(c['status'] != 'unexplained' for c in comparison), comparison\n"
      "# Every documented difference is still one (else its note is stale).\n"
      "assert {(c['model'], c['module'], c['quantity']) for c in comparison\n"
      "        if c['status'] == 'explained'} == set(EXPLAINED_DIFFERENCES), comparison"))
  nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                          resources={"metadata": {"path": NOTEBOOKS_DIR}}).execute()
  assert images_shown(notebook) == 1

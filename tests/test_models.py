"""Models: every paper config trains, latent methods behave as specified, bad keys fail clearly."""
import glob
import os

import numpy as np
import pytest
import tensorflow as tf

from common import config_utils, datasets, quantization, run_dir
from common.image_utils import read_image, to_model_input
from factorized.models import Model as FactorizedModel
from mshyper.models import Model as HyperModel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Width overrides that keep every architecture intact but make it cheap.
SMALL = {
    "ElicAnalysis": {"channels": (16, 16, 16, 32)},
    "MBT2018Analysis": {"channels_base": 16, "output_channels": 32},
    "MBT2018Synthesis": {"channels_base": 16},
    "BLS2017Analysis": {"num_filters": 16}, "BLS2017Synthesis": {"num_filters": 16},
    "CNNAnalysis": {"channels_base": 16, "output_channels": 32},
}
PAPER_CONFIGS = [("factorized", "bls2017"), ("mshyper", "mbt2018"), ("mshyper", "jpegl"),
                 ("mshyper", "two_layer_syn"), ("mshyper", "two_layer_syn2"),
                 ("mshyper", "quickstart"), ("factorized", "quickstart")]


def photo_crops(size=64, count=2):
  """Real photo crops from the embedded training photos, as a float batch."""
  paths = sorted(glob.glob(datasets.dataset_glob("embedded_train")))[:count]
  return tf.stack([to_model_input(read_image(p)[100:100 + size, 100:100 + size]) for p in paths])


def load_config(package, name):
  module = config_utils.load_config_module(os.path.join(ROOT, package, "configs", name + ".py"))
  return module, module.get_config()


@pytest.mark.parametrize("package,name", PAPER_CONFIGS)
def test_config_trains_two_steps(package, name):
  module, config = load_config(package, name)
  transforms = config.model_config.transform_config
  for part in ("analysis", "synthesis"):
    config_utils.apply_overrides(
        config, {f"model_config.transform_config.{part}.{k}": v
                 for k, v in SMALL.get(transforms[part].cls, {}).items()})
  config_utils.apply_overrides(config, {"train_eval_config.num_steps": 100})
  assert config.model_config.scheduled_num_steps == 100  # FieldReference follows num_steps.
  assert len(module.get_hyper()) >= 3 and module.get_cfg_str(config)
  model = run_dir.build_model(
      run_dir.model_class_of_config(os.path.join(ROOT, package, "configs", name + ".py")),
      config.model_config)
  x = photo_crops()
  for _ in range(2):
    metrics = model.train_step(x)
  assert int(model.global_step) == 2
  assert np.isfinite(float(metrics["loss"])) and float(metrics["bpp"]) > 0
  # A decoder-only build knows the latents' geometry the full model checked against its
  # analysis, and has exactly the decoder's variables (the encoder's are never created).
  decoder = run_dir.build_model(type(model), config.model_config, decoder_only=True)
  assert decoder.latent_geometry == model.latent_geometry
  assert decoder.downsample_factor == model.downsample_factor
  assert ([v.shape for v in decoder.decoder_variables()] ==
          [v.shape for v in model.decoder_variables()])
  assert len(decoder.trainable_variables) == len(decoder.decoder_variables())


def test_paper_hyperparameters():
  _, config = load_config("mshyper", "two_layer_syn")
  assert config.train_data_config.batchsize == 8 and config.train_data_config.patchsize == 256
  assert config.model_config.optimizer_config.learning_rate == 1e-4
  assert config.model_config.optimizer_config.global_clipnorm == 1.0
  module, _ = load_config("mshyper", "jpegl")
  lambdas = sorted(h["model_config.rd_lambda"] for h in module.get_hyper())
  assert lambdas == [0.00125, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08]
  _, config = load_config("mshyper", "two_layer_syn2")
  assert config.model_config.latent_config.method == "mixedq"
  assert not config.model_config.offset_heuristic


def test_schedules():
  model = HyperModel(dict(analysis=dict(cls="CNNAnalysis", channels_base=8, output_channels=8),
                          synthesis=dict(cls="JPEGLikeSynthesis")),
                     scheduled_num_steps=1000, rd_lambda=0.005)
  lr = model.learning_rate
  assert float(lr(0)) == pytest.approx(1e-4 / 20)  # Linear warm-up over 2% = 20 steps.
  assert float(lr(19)) == pytest.approx(1e-4) and float(lr(799)) == pytest.approx(1e-4)
  assert float(lr(800)) == pytest.approx(1e-5)  # 10x drop after 80%.
  assert float(model.rd_lambda_now(training=True)) == pytest.approx(0.05)  # 10x early.
  model.optimizer.iterations.assign(200)
  assert float(model.rd_lambda_now(training=True)) == pytest.approx(0.005)


class _Prior:
  """A fixed-location Gaussian entropy model to compare latent methods."""

  def __init__(self):
    import tensorflow_compression as tfc
    self.model = tfc.LocationScaleIndexedEntropyModel(
        tfc.NoisyNormal, 64, lambda i: tf.exp(i / 10.), coding_rank=1, compression=False)


def test_mixedq_and_unoise_differ_as_specified():
  tf.random.set_seed(0)
  y = tf.random.normal((1000,)) * 3
  loc = tf.random.normal((1000,))
  coder = quantization.LatentCoder(_Prior().model, scale_indexes=tf.fill((1000,), 20.), loc=loc)
  y_unoise, bits_unoise = quantization.quantize_latent(coder, y, "unoise", training=True)
  y_mixed, bits_mixed = quantization.quantize_latent(coder, y, "mixedq", training=True)
  # unoise: the synthesis sees y + U(-0.5, 0.5), off the quantization grid.
  noise = (y_unoise - y).numpy()
  assert np.all(np.abs(noise) <= 0.5) and noise.std() > 0.25
  # mixedq: the synthesis sees round(y - mu) + mu, with a straight-through gradient ...
  np.testing.assert_allclose(y_mixed, np.round(y - loc) + loc, atol=1e-5)
  with tf.GradientTape() as tape:
    tape.watch(y)
    y_st, _ = quantization.quantize_latent(coder, y, "mixedq", training=True)
  np.testing.assert_allclose(tape.gradient(y_st, y), np.ones(1000))
  # ... while the rate of both is the noisy (differentiable) estimate: same distribution.
  assert abs(float(bits_mixed) - float(bits_unoise)) < 0.05 * float(bits_unoise)
  # At evaluation both hard-round.
  y_eval, _ = quantization.quantize_latent(coder, y, "unoise", training=False)
  np.testing.assert_allclose(y_eval, np.round(y - loc) + loc, atol=1e-5)


@pytest.mark.parametrize("graph", [False, True])
def test_hard_rate_of_noisy_normal_equals_tfc_bit_for_bit(graph):
  """LatentCoder.hard's two-log-CDF evaluation gives TFC's training=False values exactly: the
  paper model's scale table and rounding of the indexes, values from the mode to 60 scales out
  (far tails), with and without a location."""
  import tensorflow_compression as tfc
  from mshyper import models
  model = tfc.LocationScaleIndexedEntropyModel(tfc.NoisyNormal, models.NUM_SCALES,
                                               models.scale_fn, coding_rank=3,
                                               compression=False)
  shape = (2, 6, 7, 40)
  indexes = tf.random.stateless_uniform(shape, (1, 2), -3., 66.)  # clipped to [0, 63] by both
  scales = models.scale_fn(tf.clip_by_value(indexes, 0., 63.))
  loc = tf.random.stateless_normal(shape, (3, 4)) * 5.
  spread = tf.random.stateless_uniform(shape, (5, 6), -60., 60.)
  y = loc + spread * scales * tf.random.stateless_uniform(shape, (7, 8), 0., 1.) ** 3
  for location in (loc, None):
    for scale_indexes in (indexes, models.coding_indexes(indexes)):
      coder = quantization.LatentCoder(model, scale_indexes=scale_indexes, loc=location)
      assert coder._noisy_normal_location_scale()
      def tfc_hard(y, scale_indexes=scale_indexes, location=location):
        return model(y, scale_indexes, loc=location, training=False)
      # Compared in the same mode: TF's graph optimizations may reorder the sums.
      hard, tfc_hard = (tf.function(coder.hard), tf.function(tfc_hard)) if graph else (
          coder.hard, tfc_hard)
      y_hat, bits = hard(y)
      expected_y_hat, expected_bits = tfc_hard(y)
      np.testing.assert_array_equal(y_hat, expected_y_hat)
      np.testing.assert_array_equal(bits, expected_bits)
      assert np.all(np.isfinite(bits)) and float(tf.reduce_min(bits)) > 0


def test_soft_round_anneals_to_rounding_with_soft_rounded_rate():
  tf.random.set_seed(0)
  y = tf.random.normal((1000,)) * 3
  loc = tf.random.normal((1000,))
  coder = quantization.LatentCoder(_Prior().model, scale_indexes=tf.fill((1000,), 20.), loc=loc)
  rounded = np.round(y - loc) + loc
  sharp, bits_sharp = quantization.quantize_latent(coder, y, "soft_round", True, alpha=50.)
  distance = np.abs(sharp - rounded)
  assert distance.mean() < 0.05 and np.mean(distance > 0.1) < 0.05  # Near hard rounding.
  soft, bits_soft = quantization.quantize_latent(coder, y, "soft_round", True, alpha=1.)
  assert np.mean(np.abs(soft - rounded)) > 0.2  # Relaxed at low alpha.
  _, bits_noisy = coder.noisy(y)
  for bits in (bits_sharp, bits_soft):  # Wide scales: about the rate of y + u.
    assert 0.9 < float(bits) / float(bits_noisy) < 1.1
  with tf.GradientTape() as tape:
    tape.watch(y)
    out, bits = quantization.quantize_latent(coder, y, "soft_round", True, alpha=2.)
    objective = tf.reduce_sum(out) + bits
  assert np.all(np.isfinite(tape.gradient(objective, y)))


def test_soft_round_trains_both_models():
  for model_cls in (HyperModel, FactorizedModel):
    model = model_cls(dict(analysis=dict(cls="CNNAnalysis", channels_base=8, output_channels=8),
                           synthesis=dict(cls="JPEGLikeSynthesis")),
                      latent_config=dict(method="soft_round", soft_round_alpha=3.))
    assert not model.offset_heuristic
    metrics = model.train_step(photo_crops())
    assert np.isfinite(float(metrics["loss"]))


def test_mixedq_turns_off_offset_heuristic():
  transforms = dict(analysis=dict(cls="CNNAnalysis", channels_base=8, output_channels=8),
                    synthesis=dict(cls="JPEGLikeSynthesis"))
  assert not HyperModel(transforms, latent_config=dict(method="mixedq")).offset_heuristic
  assert HyperModel(transforms, latent_config=dict(method="unoise")).offset_heuristic


def test_sga_anneals_to_rounding():
  tf.random.set_seed(0)
  y = tf.random.normal((2000,)) * 2
  soft = quantization.sga_round(y, tau=0.5).numpy()
  assert np.all(soft >= np.floor(y) - 1e-5) and np.all(soft <= np.ceil(y) + 1e-5)
  assert np.mean(np.abs(soft - np.round(soft))) > 0.01  # Relaxed: off the grid at tau=0.5.
  hard = quantization.sga_round(y, tau=1e-4).numpy()
  assert np.mean(np.isclose(hard, np.round(y.numpy()), atol=1e-3)) > 0.95


def test_unknown_latent_method():
  with pytest.raises(ValueError, match="Unknown latent method 'fuzzy'"):
    HyperModel(dict(analysis=dict(cls="CNNAnalysis"), synthesis=dict(cls="JPEGLikeSynthesis")),
               latent_config=dict(method="fuzzy"))


def test_bad_config_keys_are_clear_errors():
  _, config = load_config("mshyper", "quickstart")
  with pytest.raises(KeyError, match=r"no key 'model_config.rd_lamda'.*rd_lambda"):
    config_utils.apply_overrides(config, {"model_config.rd_lamda": 0.1})
  with pytest.raises(KeyError, match="no key 'model_config.transform_config.analyze.cls'"):
    config_utils.apply_overrides(config, {"model_config.transform_config.analyze.cls": "X"})
  with config.unlocked():
    config.model_config.bogus = 1
  with pytest.raises(KeyError, match=r"\['bogus'\].*valid"):
    run_dir.build_model(HyperModel, config.model_config)
  with config.unlocked():
    del config.model_config.bogus
    config.model_config.decoder_only = True  # An argument of the model, not a config key.
  with pytest.raises(KeyError, match=r"\['decoder_only'\].*valid"):
    run_dir.build_model(HyperModel, config.model_config)
  with pytest.raises(ValueError, match="Unknown optimizer_config key"):
    HyperModel(dict(analysis=dict(cls="CNNAnalysis"), synthesis=dict(cls="JPEGLikeSynthesis")),
               optimizer_config=dict(learning_rat=1e-3))


def test_any_image_size():
  model = HyperModel(dict(analysis=dict(cls="CNNAnalysis", channels_base=8, output_channels=8),
                          synthesis=dict(cls="TwoLayerResSynthesis")))
  assert model.downsample_factor == 64
  for height, width in [(17, 9), (100, 75), (64, 64)]:
    metrics, reconstruction = model.evaluate(tf.zeros((1, height, width, 3)))
    assert reconstruction.shape == (1, height, width, 3) and reconstruction.dtype == np.uint8
    assert ("msssim" in metrics) == (min(height, width) >= 11)

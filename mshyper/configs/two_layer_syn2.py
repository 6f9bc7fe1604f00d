"""2-layer synthesis v2: CNN analysis, 2-layer synthesis (24 hidden, no residual), mixed
quantization, offset heuristic off."""
from common import config_utils, hyper
from common.config_defaults import hyperprior_config, make_config


def get_config():
  return hyperprior_config(make_config(
      analysis=dict(cls="CNNAnalysis", channels_base=256, output_channels=320),
      synthesis=dict(cls="TwoLayerSynthesis", channels=(24, 3), strides=(8, 2),
                     kernel_sizes=(13, 5), activation_type="igdn"),
      latent_method="mixedq", offset_heuristic=False))


def get_cfg_str(config):
  mc = config.model_config
  syn = mc.transform_config.synthesis
  return config_utils.cfg_str([
      ("rd_lambda", mc.rd_lambda), ("bottleneck", mc.transform_config.analysis.output_channels),
      ("hidden", syn.channels[0]), ("act", syn.activation_type), ("uq", mc.latent_config.method)])


# The authors' sweep: 4 lambdas x hidden width {24, 48}. Element 0 is (0.08, 24) as theirs.
TWO_LAYER_SYN2_LAMBDAS = (0.08, 0.02, 0.005, 0.00125)
HIDDEN_WIDTHS = (24, 48)


def get_hyper():
  return hyper.product(hyper.sweep("model_config.rd_lambda", TWO_LAYER_SYN2_LAMBDAS),
                       hyper.sweep("model_config.transform_config.synthesis.channels",
                                   [(width, 3) for width in HIDDEN_WIDTHS]))

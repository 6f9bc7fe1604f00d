"""The paper's proposed model: ELIC analysis + 2-layer residual synthesis (12 hidden channels)."""
from common import config_utils, hyper
from common.config_defaults import PAPER_LAMBDAS, hyperprior_config, make_config


def get_config():
  return hyperprior_config(make_config(
      analysis=dict(cls="ElicAnalysis", channels=(192, 192, 192, 320)),
      synthesis=dict(cls="TwoLayerResSynthesis", channels=(12, 3), strides=(8, 2),
                     kernel_sizes=(13, 5), activation_type="igdn", res_type="conv")))


def get_cfg_str(config):
  mc = config.model_config
  syn = mc.transform_config.synthesis
  return config_utils.cfg_str([
      ("rd_lambda", mc.rd_lambda), ("bottleneck", mc.transform_config.analysis.channels[-1]),
      ("hidden", syn.channels[0]), ("k1", syn.kernel_sizes[0]), ("k2", syn.kernel_sizes[1]),
      ("act", syn.activation_type), ("uq", mc.latent_config.method)])


def get_hyper():
  return hyper.sweep("model_config.rd_lambda", PAPER_LAMBDAS)

"""A small mean-scale hyperprior with the paper's 2-layer residual synthesis, sized to train in
minutes on 2 CPU cores on the embedded photos (same code path as the paper configs)."""
from common import config_utils, hyper
from common.config_defaults import make_config

QUICKSTART_LAMBDAS = (0.0025, 0.01, 0.04)


def get_config():
  return make_config(
      analysis=dict(cls="CNNAnalysis", channels_base=64, output_channels=96),
      synthesis=dict(cls="TwoLayerResSynthesis", channels=(12, 3), strides=(8, 2),
                     kernel_sizes=(13, 5), activation_type="igdn", res_type="conv"),
      num_steps=2000, rd_lambda=0.01, train_dataset="embedded_train",
      val_dataset="embedded_eval", batchsize=4, patchsize=128, log_every=100,
      checkpoint_every=500, eval_every=1000, learning_rate=3e-4)


def get_cfg_str(config):
  mc = config.model_config
  return config_utils.cfg_str([("rd_lambda", mc.rd_lambda),
                               ("bottleneck", mc.transform_config.analysis.output_channels),
                               ("hidden", mc.transform_config.synthesis.channels[0])])


def get_hyper():
  return hyper.sweep("model_config.rd_lambda", QUICKSTART_LAMBDAS)

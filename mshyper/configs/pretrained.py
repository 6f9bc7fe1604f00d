"""The bundled pretrained models (pretrained/, `make pretrained`): the quickstart family
(CNNAnalysis + the paper's 2-layer residual synthesis) trained on `make data`'s `train` split.

Recipe for a 2-core CPU budget (`make pretrained` runs it: mshyper/pretrain.py): one base run,
the config without --hid (the middle lambda, BASE_STEPS), then a short fine-tune warm-started
from it per other lambda (--hid N of get_hyper(), a tenth of BASE_STEPS each), so that most of
the budget goes into what all rate points share.
"""
from common import config_utils, hyper
from common.config_defaults import hyperprior_config, quickstart_config

BASE_LAMBDA = 0.01
FINETUNE_LAMBDAS = (0.0025, 0.005, 0.02, 0.04)
BASE_STEPS = 16000


def finetune_steps(base_steps):
  """The fine-tunes' length for a base run of base_steps: a tenth of it."""
  return base_steps // 10


FINETUNE_STEPS = finetune_steps(BASE_STEPS)
# The base run's 1e-3 made the fine-tunes first lose quality (fresh Adam state on a trained
# model); the paper's 1e-4 keeps what the base learned.
FINETUNE_LEARNING_RATE = 1e-4


def get_config():
  config = hyperprior_config(quickstart_config())
  config.train_data_config.dataset = "train"
  config.val_data_config.dataset = "embedded_eval"
  config.train_data_config.batchsize = 8
  config.train_eval_config.num_steps = BASE_STEPS
  config.train_eval_config.log_metrics_every_steps = 200
  config.train_eval_config.checkpoint_every_steps = 1000
  config.train_eval_config.eval_every_steps = 1000
  config.model_config.rd_lambda = BASE_LAMBDA
  config.model_config.optimizer_config.learning_rate = 1e-3
  return config


def get_cfg_str(config):
  mc = config.model_config
  return config_utils.cfg_str([("rd_lambda", mc.rd_lambda),
                               ("steps", config.train_eval_config.num_steps)])


def get_hyper():
  return hyper.product(hyper.sweep("train_eval_config.num_steps", [FINETUNE_STEPS]),
                       hyper.sweep("model_config.optimizer_config.learning_rate",
                                   [FINETUNE_LEARNING_RATE]),
                       hyper.sweep("model_config.rd_lambda", FINETUNE_LAMBDAS))

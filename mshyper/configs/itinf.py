"""Iterative inference (SGA) on the latents (y and z) of trained mean-scale hyperprior runs.

Sweep element N optimizes the latents of run wid=N of the training experiment dir given as
itinf_config.warm_start, e.g. (one R-D point per trained lambda):
  python -m mshyper.itinf --config mshyper/configs/itinf.py --hid 1 \
      --config.itinf_config.warm_start=experiments/local-quickstart
"""
from common import config_utils, hyper
from common.config_defaults import PAPER_LAMBDAS, make_itinf_config


def get_config():
  return make_itinf_config()


def get_cfg_str(config):
  return config_utils.cfg_str([("wwid", config.itinf_config.warm_start_wid),
                               ("method", config.latent_config.method),
                               ("steps", config.itinf_config.num_steps)])


def get_hyper():
  # One element per run of a paper lambda sweep; a smaller sweep uses the first elements.
  return hyper.sweep("itinf_config.warm_start_wid", list(range(len(PAPER_LAMBDAS))))

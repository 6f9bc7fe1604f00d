"""Iterative inference (SGA) on the latents (y) of trained factorized-prior runs.

Sweep element N optimizes the latents of run wid=N of the training experiment dir given as
itinf_config.warm_start, e.g. (one R-D point per trained lambda):
  python -m factorized.itinf --config factorized/configs/itinf.py --hid 1 \
      --config.itinf_config.warm_start=experiments/local-quickstart
"""
from common import config_defaults


def get_config():
  return config_defaults.make_itinf_config()


def get_cfg_str(config):
  return config_defaults.itinf_cfg_str(config)


def get_hyper():
  return config_defaults.itinf_hyper()

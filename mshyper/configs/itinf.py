"""Iterative inference (SGA) on the latents (y and z) of trained mean-scale hyperprior runs.

Sweep element N optimizes the latents of run wid=N of the training experiment dir given as
itinf_config.warm_start, e.g. (one R-D point per trained lambda):
  python -m mshyper.itinf --config mshyper/configs/itinf.py --hid 1 \
      --config.itinf_config.warm_start=experiments/mshyper-quickstart-<hash>
"""
# The itinf config is the same for every model family; this file names it for this package.
from common.config_defaults import itinf_cfg_str as get_cfg_str  # noqa: F401
from common.config_defaults import itinf_hyper as get_hyper  # noqa: F401
from common.config_defaults import make_itinf_config as get_config  # noqa: F401

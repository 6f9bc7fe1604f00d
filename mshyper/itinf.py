"""Iterative inference (SGA) on the latents (y, z) of a trained model:

  python -m mshyper.itinf --config mshyper/configs/itinf.py --hid N \
      --config.itinf_config.warm_start=EXPERIMENT_DIR
"""
from common import itinf_cli
from mshyper.models import Model

if __name__ == "__main__":
  itinf_cli.main(Model)

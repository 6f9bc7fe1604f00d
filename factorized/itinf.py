"""Iterative inference (SGA) on the latents (y) of a trained model:

  python -m factorized.itinf --config factorized/configs/itinf.py --hid N \
      --config.itinf_config.warm_start=EXPERIMENT_DIR
"""
from common import itinf_cli
from factorized.models import Model

if __name__ == "__main__":
  itinf_cli.main(Model)

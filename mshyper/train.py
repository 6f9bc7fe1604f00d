"""Train a mean-scale hyperprior model: python -m mshyper.train --config mshyper/configs/X.py"""
from common import train_cli
from mshyper.models import Model

if __name__ == "__main__":
  train_cli.main(Model)

"""Train a factorized-prior model: python -m factorized.train --config factorized/configs/X.py"""
from common import train_cli
from factorized.models import Model

if __name__ == "__main__":
  train_cli.main(Model)

"""Evaluate with real bitstreams: python -m factorized.eval --workdir W --dataset D"""
from common import eval_cli
from factorized.models import Model

if __name__ == "__main__":
  eval_cli.main(Model)

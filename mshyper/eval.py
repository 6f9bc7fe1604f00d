"""Evaluate with real bitstreams: python -m mshyper.eval --workdir W --dataset D"""
from common import eval_cli
from mshyper.models import Model

if __name__ == "__main__":
  eval_cli.main(Model)

"""GPU readiness in one command (`make gpu-check`, a few minutes on a GPU machine), one JSON:

- environment: TensorFlow's version, the CUDA/cuDNN it was built for, the GPUs it sees;
- the fast tests (`pytest -m "not slow and not slurm"`) run with the GPU visible;
- training steps/s of two_layer_syn and mbt2018 at batch 8 of 256x256 crops, plain and with
  XLA (benchmarks/train_speed.py, timed round-robin);
- a real photo compressed with the GPU and decompressed on the CPU only (another process with
  CUDA_VISIBLE_DEVICES=-1) and with the GPU: whether the CPU decode succeeds and equals the GPU
  decode bit for bit, else the error it reports (a checksum mismatch when the entropy coder's
  inputs differ between devices).

  python -m benchmarks.gpu_check [--out benchmarks/reference/gpu_check.json]

Exits 1 (after writing the JSON) when TensorFlow sees no GPU.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

import configs
from benchmarks import train_speed

PROJECT_DIR = configs.PROJECT_DIR
SPEED_CONFIGS = ("mshyper/configs/two_layer_syn.py", "mshyper/configs/mbt2018.py")
PHOTO_DATASET = "embedded_eval"


def environment():
  import tensorflow as tf
  build = tf.sysconfig.get_build_info()
  gpus = []
  for gpu in tf.config.list_physical_devices("GPU"):
    details = tf.config.experimental.get_device_details(gpu)
    gpus.append(dict(name=gpu.name, device_name=details.get("device_name"),
                     compute_capability=details.get("compute_capability")))
  return dict(tensorflow=tf.__version__, built_with_cuda=tf.test.is_built_with_cuda(),
              cuda_version=build.get("cuda_version"), cudnn_version=build.get("cudnn_version"),
              gpus=gpus)


def run(command, timeout_s, env=None):
  start = time.perf_counter()
  try:
    proc = subprocess.run(command, cwd=PROJECT_DIR, capture_output=True, text=True,
                          timeout=timeout_s, env=env)
  except subprocess.TimeoutExpired as e:
    return dict(returncode=None, seconds=timeout_s,
                error=f"timed out after {timeout_s} s", tail=str(e.stdout or "")[-1500:])
  return dict(returncode=proc.returncode, seconds=round(time.perf_counter() - start, 1),
              tail=(proc.stdout + proc.stderr)[-1500:])


def fast_tests(timeout_s):
  result = run([sys.executable, "-m", "pytest", "-q", "-m", "not slow and not slurm", "tests"],
               timeout_s)
  lines = [line for line in result["tail"].splitlines() if " passed" in line or " failed" in line]
  result["summary"] = lines[-1] if lines else None
  return result


def train_speeds(steps, warmup):
  speeds = {}
  for config in SPEED_CONFIGS:
    try:
      speeds[config] = train_speed.measure(config, batchsize=8, patchsize=256, steps=steps,
                                           warmup=warmup, variants=("plain", "xla"))
    except Exception as e:  # a failing variant is a finding to report, not a crash
      speeds[config] = dict(error=f"{type(e).__name__}: {str(e)[:1000]}")
  return speeds


def cross_device_codec(work, timeout_s):
  """Compress a photo on the GPU, decompress on the CPU and on the GPU, compare."""
  from common import data_lib, image_utils
  photo = data_lib.list_images(PHOTO_DATASET)[0]
  workdir = os.path.join(work, "run")
  python = sys.executable
  steps = {}
  steps["train"] = run([python, "-m", "mshyper.train", "--config",
                        "mshyper/configs/quickstart.py", "--workdir", workdir,
                        "--config.train_eval_config.num_steps=200",
                        "--config.val_data_config.max_images=1"], timeout_s)
  bitstream, gpu_png, cpu_png = (os.path.join(work, n) for n in ("photo.ntc", "gpu.png",
                                                                   "cpu.png"))
  cpu_only = dict(os.environ, CUDA_VISIBLE_DEVICES="-1")
  codec = [python, "-m", "mshyper.codec"]
  steps["compress_gpu"] = run([*codec, "compress", "--workdir", workdir, photo, bitstream],
                              timeout_s)
  steps["decompress_gpu"] = run([*codec, "decompress", "--workdir", workdir, bitstream,
                                 gpu_png], timeout_s)
  steps["decompress_cpu"] = run([*codec, "decompress", "--workdir", workdir, bitstream,
                                 cpu_png], timeout_s, env=cpu_only)
  result = dict(photo=photo, steps=steps)
  if all(os.path.exists(p) for p in (gpu_png, cpu_png)):
    gpu, cpu = image_utils.read_image(gpu_png), image_utils.read_image(cpu_png)
    result["cpu_decode_equals_gpu_decode"] = bool(np.array_equal(gpu, cpu))
  result["outcome"] = (
      "bit-exact" if result.get("cpu_decode_equals_gpu_decode") else
      "cpu decode differs" if "cpu_decode_equals_gpu_decode" in result else
      f"cpu decode failed: {steps['decompress_cpu']['tail'][-300:]}")
  return result


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--out", default=os.path.join(PROJECT_DIR, "benchmarks", "reference",
                                                    "gpu_check.json"))
  parser.add_argument("--tests_timeout", type=int, default=150)
  parser.add_argument("--steps", type=int, default=20, help="timed training steps per variant")
  parser.add_argument("--warmup", type=int, default=3)
  args = parser.parse_args()
  start = time.perf_counter()
  result = dict(environment=environment())
  if result["environment"]["gpus"]:
    result["fast_tests"] = fast_tests(args.tests_timeout)
    result["train_speed"] = train_speeds(args.steps, args.warmup)
    with tempfile.TemporaryDirectory() as work:
      result["cross_device_codec"] = cross_device_codec(work, 300)
  result["seconds"] = round(time.perf_counter() - start, 1)
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  with open(args.out, "w") as f:
    json.dump(result, f, indent=2)
  print(json.dumps(result, indent=2))
  if not result["environment"]["gpus"]:
    print("error: TensorFlow sees no GPU (see README, 'GPU readiness'); wrote " + args.out,
          file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
  main()

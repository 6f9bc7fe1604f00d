"""Each decoder's synthesis g_s step by step against its roofline bound, on 768x512-image latents.

  python -m benchmarks.synthesis_roofline [--threads 1] [--rounds 10] [--warmup 2] [--out FILE]

For the syntheses of benchmarks/decode_speed.py's models (random weights; times do not depend on
the values) it times every step of the inference form separately: per layer the kernel (RDFT
layers), the transposed conv with its bias in its fast form, the activation (IGDN), the residual
sum; then the codec's tail (crop, model output -> uint8, `.numpy()`). Each step is a tf.function
of the previous steps' outputs; the whole g_s (traced as common.codec traces it, plus the tail)
is timed as well, so the sum of the steps shows what splitting costs. A float32 matmul (the FLOP
peak, as decode_speed measures it: best of a few short calls per round) and a large elementwise
op (the memory bandwidth: bytes read + written per second) are timed in the same interleaved
rounds. Roofline bound of a step = max(FLOPs / peak, bytes / bandwidth): FLOPs as the TF
profiler counts them (a multiply-add is 2; the transposed conv's own FLOPs, not those of a
padded form), bytes = its float32 inputs (weights included) read and its output written once,
the least traffic any implementation has. Large convs can run slightly faster than the 1024^3
matmul (x bound < 1): the breakdown does not abort on that, decode_speed's self-check covers
whole modules. Prints a table and writes JSON
(default results/benchmarks/synthesis_roofline.json).
"""
import argparse
import os
import sys
import time

import numpy as np
import tensorflow as tf

import configs
from benchmarks import decode_speed, reporting
from common import config_utils, fast_conv, image_utils, transforms

# The decoders, image size and matmul peak of benchmarks/decode_speed.py.
HEIGHT, WIDTH, MODELS = decode_speed.HEIGHT, decode_speed.WIDTH, decode_speed.MODELS
MATMUL_SIZE, MATMUL_CALLS = decode_speed.MATMUL_SIZE, decode_speed.MATMUL_CALLS
BANDWIDTH_FLOATS = 1 << 24  # 64 MiB in and out: far beyond the caches
DEFAULT_OUT = os.path.join(configs.RESULTS_DIR, "benchmarks", "synthesis_roofline.json")


def _size(tensor):
  return int(np.prod(tensor.shape))


def _bytes(tensor):
  return _size(tensor) * tensor.dtype.size


class Steps:
  """The steps of one synthesis: name, traced function, input tensors, FLOPs, bytes."""

  def __init__(self):
    self.rows = []

  def add(self, name, function, inputs, flops, parameters=()):
    traced = tf.function(function, autograph=False)
    output = traced(*inputs)
    moved = sum(_bytes(t) for t in (*inputs, *parameters, output))
    self.rows.append(dict(name=name, function=traced, inputs=inputs, flops=float(flops),
                          bytes=float(moved)))
    return output

  def conv_layer(self, name, layer, x):
    """A fast_conv layer: (kernel,) transposed conv, bias, activation."""
    if isinstance(layer, fast_conv.SignalConv2D):
      size, stride = layer.kernel_support[0], layer.strides_up[0]
      parameter = layer.kernel_parameter
      count = 2 * size * (size // 2 + 1)
      kernel = self.add(f"{name} kernel (RDFT matmul)",
                        lambda: tf.transpose(fast_conv.rdft_kernel(parameter), (0, 1, 3, 2)), (),
                        2 * count * size * size * parameter.shape[2] * parameter.shape[3],
                        (parameter.real, parameter.imag))
    else:
      size, stride, kernel = layer.kernel_size[0], layer.strides[0], layer.kernel
    c_out, c_in = kernel.shape[2], kernel.shape[3]
    form, bias = layer.fast_form, layer.bias if layer.use_bias else None
    x = self.add(f"{name} conv {size}x{size}/{stride} {c_in}->{c_out}{' + bias' * layer.use_bias} "
                 f"({form.__name__.split('_')[0]})",
                 lambda x: form(x, kernel, stride, layer.pad_before, bias), (x,),
                 (2 * size * size * c_in + stride * stride * layer.use_bias) * c_out *
                 _size(x) // c_in, (kernel,) + ((bias,) if layer.use_bias else ()))
    activation = layer.activation
    if isinstance(activation, transforms.GDN1):
      channels = x.shape[-1]
      # 1x1 conv of |x| (2 C^2 per pixel), |x|, + beta, * x.
      x = self.add(f"{name} IGDN", activation, (x,),
                   _size(x) * (2 * channels + 3), (activation.gamma, activation.beta))
    elif activation not in (None, tf.keras.activations.linear):
      raise NotImplementedError(f"{name}: activation {activation} is not broken down here.")
    return x

  def synthesis(self, synthesis, y):
    """The layers of the paper's synthesis classes in their call order."""
    if isinstance(synthesis, transforms.JPEGLikeSynthesis):
      return self.conv_layer("conv", synthesis.conv, y)
    if isinstance(synthesis, transforms.TwoLayerSynthesis):
      return self.conv_layer("conv2", synthesis.conv2, self.conv_layer("conv1", synthesis.conv1, y))
    if isinstance(synthesis, transforms.TwoLayerResSynthesis):
      base = self.conv_layer("base_conv", synthesis.base_conv, y)
      res = self.conv_layer("res", synthesis.res, y)
      hidden = self.add("base + res", tf.add, (base, res), _size(base))
      return self.conv_layer("out_conv", synthesis.out_conv, hidden)
    if isinstance(synthesis, (transforms.MBT2018Synthesis, transforms.BLS2017Synthesis)):
      for index, layer in enumerate(synthesis.layers):
        y = self.conv_layer(f"layer{index}", layer, y)
      return y
    raise NotImplementedError(f"No breakdown for {type(synthesis).__name__}.")


def codec_tail(x):
  """What common.codec.Codec.synthesize_image does after g_s (untiled)."""
  return image_utils.from_model_output(image_utils.crop_to(x, HEIGHT, WIDTH)[0]).numpy()


def build(key):
  label, config_path = MODELS[key]
  tf.keras.utils.set_random_seed(0)
  config = config_utils.load_config_module(
      os.path.join(configs.PROJECT_DIR, config_path)).get_config()
  synthesis_config = config.model_config.transform_config.synthesis
  synthesis = transforms.build_transform(synthesis_config)
  channels = config.model_config.transform_config.analysis
  channels = channels.get("output_channels") or channels.channels[-1]
  y = tf.round(tf.random.stateless_normal((1, HEIGHT // 16, WIDTH // 16, channels), (1, 2)) * 2)
  synthesis(y)
  steps = Steps()
  x = steps.synthesis(synthesis, y)
  x = steps.add("crop", lambda x: image_utils.crop_to(x, HEIGHT, WIDTH), (x,), 0)
  x = steps.add("to uint8 (round, clip, cast)", lambda x: image_utils.from_model_output(x[0]),
                (x,), 3 * _size(x))
  steps.rows.append(dict(name=".numpy()", function=lambda x: x.numpy(), inputs=(x,), flops=0.,
                         bytes=2. * _bytes(x)))
  whole = tf.function(synthesis, input_signature=[tf.TensorSpec((None, None, None, channels))],
                      autograph=False)
  return dict(label=label, steps=steps.rows, whole=lambda: codec_tail(whole(y)))


def run(args):
  tf.config.threading.set_intra_op_parallelism_threads(args.threads)
  tf.config.threading.set_inter_op_parallelism_threads(args.threads)
  models = {key: build(key) for key in MODELS}
  a, b = decode_speed._matmul_operands()
  matmul = tf.function(lambda: tf.linalg.matmul(a, b))
  big = tf.random.normal((BANDWIDTH_FLOATS,), seed=3)
  stream = tf.function(lambda: big * 2.)

  def timed(function, *inputs):
    start = time.perf_counter()
    function(*inputs)  # eager calls of traced functions return when the CPU is done
    return time.perf_counter() - start

  items = [("matmul", None), ("stream", None)]
  for key, model in models.items():
    items += [(key, index) for index in range(len(model["steps"]))] + [(key, "whole")]
  seconds = {item: [] for item in items}
  for round_index in range(args.warmup + args.rounds):
    shift = round_index % len(items)
    for item in items[shift:] + items[:shift]:
      key, index = item
      if key == "matmul":
        value = min(timed(matmul) for _ in range(MATMUL_CALLS))
      elif key == "stream":
        value = timed(stream)
      elif index == "whole":
        value = timed(models[key]["whole"])
      else:
        step = models[key]["steps"][index]
        value = timed(step["function"], *step["inputs"])
      if round_index >= args.warmup:
        seconds[item].append(value)
  peak = 2 * MATMUL_SIZE ** 3 / min(seconds[("matmul", None)])
  bandwidth = 8 * BANDWIDTH_FLOATS / min(seconds[("stream", None)])
  lines = [f"g_s steps at {args.threads} thread(s), {WIDTH}x{HEIGHT}: best (median) ms of "
           f"{args.rounds} interleaved rounds; matmul peak {peak / 1e9:.1f} GFLOP/s, memory "
           f"bandwidth {bandwidth / 1e9:.1f} GB/s (same rounds)", ""]
  header = (f"{'step':58s} {'ms':>7s} {'(median)':>8s} {'GFLOP':>6s} {'MB':>6s} "
            f"{'bound ms':>8s} {'x bound':>7s}")
  report = dict(name="synthesis_roofline", threads=args.threads, rounds=args.rounds,
                warmup=args.warmup, matmul_peak_flops_per_s=peak,
                memory_bandwidth_bytes_per_s=bandwidth, models={})
  for key, model in models.items():
    lines += [model["label"], header, "-" * len(header)]
    rows, total, total_bound = [], 0., 0.
    for index, step in enumerate(model["steps"]):
      best, median = min(seconds[(key, index)]), float(np.median(seconds[(key, index)]))
      bound = max(step["flops"] / peak, step["bytes"] / bandwidth)
      rows.append(dict(step=step["name"], best_s=best, median_s=median, flops=step["flops"],
                       bytes=step["bytes"], bound_s=bound, vs_bound=best / bound if bound else
                       None))
      total += best
      total_bound += bound
      lines.append(f"{step['name']:58s} {1e3 * best:7.2f} {1e3 * median:8.2f} "
                   f"{step['flops'] / 1e9:6.2f} {step['bytes'] / 1e6:6.1f} {1e3 * bound:8.2f} "
                   f"{best / bound if bound else float('nan'):7.2f}")
    whole = min(seconds[(key, "whole")])
    flops = sum(step["flops"] for step in model["steps"])
    lines.append(f"{'sum of the steps':58s} {1e3 * total:7.2f} {'':8s} {flops / 1e9:6.2f} "
                 f"{'':6s} {1e3 * total_bound:8.2f} {total / total_bound:7.2f}")
    lines.append(f"{'whole g_s + tail (one trace, as the codec)':58s} {1e3 * whole:7.2f} "
                 f"{1e3 * float(np.median(seconds[(key, 'whole')])):8.2f} {'':6s} {'':6s} "
                 f"{1e3 * total_bound:8.2f} {whole / total_bound:7.2f}")
    lines.append(f"{'  its FLOP-bound time (FLOPs / peak)':58s} {'':7s} {'':8s} {'':6s} "
                 f"{'':6s} {1e3 * flops / peak:8.2f} {whole / (flops / peak):7.2f}")
    lines.append("")
    report["models"][key] = dict(label=model["label"], steps=rows, whole_s=whole,
                                 steps_sum_s=total, roofline_s=total_bound, flops=flops,
                                 flop_bound_s=flops / peak)
  report["table"] = lines
  reporting.publish(report, args.out, summary="\n".join(lines))


def main(argv=None):
  parser = argparse.ArgumentParser(prog="python -m benchmarks.synthesis_roofline",
                                   description=__doc__.split("\n\n")[0])
  parser.add_argument("--threads", type=int, default=1)
  reporting.add_round_arguments(parser)
  parser.add_argument("--out", default=DEFAULT_OUT)
  args = parser.parse_args(argv)
  reporting.check_round_arguments(parser, args)
  if args.threads < 1:
    parser.error("--threads must be >= 1")
  run(args)
  return 0


if __name__ == "__main__":
  sys.exit(main())

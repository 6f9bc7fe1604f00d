"""FLOP and parameter counting for transforms.

FLOPs come from the TF profiler run on a frozen concrete graph (variables folded into constants),
as in the published code, so a multiply-add counts 2 and bias-adds/elementwise ops count 1 per
element while ops without registered statistics (relu, abs, sigmoid) count 0.
"""
from typing import Callable, Sequence

import numpy as np
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import (
    convert_variables_to_constants_v2_as_graph)


def profiled_graph(layer, input_shape: Sequence[int]):
  """What FLOPs and parameters of `layer` are counted on: the layer itself, or, for transforms
  whose kernels are reparameterized (tfc.SignalConv2D's RDFT kernels: BLS2017, MBT2018), the
  equivalent graph of plain Keras convolutions the published counts were measured on."""
  equivalent = getattr(layer, "profiling_equivalent", None)
  return layer if equivalent is None else equivalent(input_shape)


def count_flops(fn: Callable[[tf.Tensor], tf.Tensor], input_shape: Sequence[int]) -> int:
  """Total profiler FLOPs of one call of `fn` on a float32 input of fully defined shape."""
  fn = profiled_graph(fn, input_shape)
  concrete = tf.function(fn).get_concrete_function(tf.TensorSpec(input_shape, tf.float32))
  frozen, _ = convert_variables_to_constants_v2_as_graph(concrete)
  options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
  options["output"] = "none"
  stats = tf.compat.v1.profiler.profile(graph=frozen.graph, run_meta=tf.compat.v1.RunMetadata(),
                                        cmd="scope", options=options)
  return int(stats.total_float_ops)


def count_params(layer: tf.Module) -> int:
  """Number of trainable scalars (the layer must have been built, e.g. called once)."""
  return int(sum(np.prod(v.shape) for v in layer.trainable_variables))


def flops_per_pixel(fn: Callable[[tf.Tensor], tf.Tensor], input_shape: Sequence[int],
                    num_pixels: int) -> float:
  """FLOPs of `fn` on `input_shape`, divided by the number of image pixels it stands for."""
  return count_flops(fn, input_shape) / num_pixels


def profile_transform(layer, input_shape: Sequence[int], num_pixels: int) -> dict:
  """FLOPs/pixel and parameter count of a transform (built here if needed)."""
  output = layer(tf.zeros(input_shape))
  return dict(flops_per_pixel=flops_per_pixel(layer, input_shape, num_pixels),
              params=count_params(profiled_graph(layer, input_shape)),
              output_shape=tuple(output.shape))

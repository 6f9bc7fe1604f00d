"""FLOP and parameter counting for transforms.

FLOPs come from the TF profiler run on a frozen concrete graph (variables folded into constants),
as in the published code, so a multiply-add counts 2 and bias-adds/elementwise ops count 1 per
element while ops without registered statistics (relu, abs, sigmoid) count 0. Layers are traced
with training=True, the reference form of each computation: transposed convs that infer in a
faster form (common/fast_conv.py) count as the transposed convs they equal.
"""
from typing import Sequence

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


def count_flops(layer: tf.keras.layers.Layer, input_shape: Sequence[int]) -> int:
  """Total profiler FLOPs of one call of a Keras layer on a float32 input of fully defined shape.

  Counted in training mode: layers with a fast inference form (common/fast_conv.py) compute the
  same function there in the plain form the published counts were measured on.
  """
  layer = profiled_graph(layer, input_shape)
  concrete = tf.function(lambda x: layer(x, training=True)).get_concrete_function(
      tf.TensorSpec(input_shape, tf.float32))
  frozen, _ = convert_variables_to_constants_v2_as_graph(concrete)
  options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
  options["output"] = "none"
  stats = tf.compat.v1.profiler.profile(graph=frozen.graph, run_meta=tf.compat.v1.RunMetadata(),
                                        cmd="scope", options=options)
  return int(stats.total_float_ops)


def count_params(layer: tf.Module) -> int:
  """Number of trainable scalars (the layer must have been built, e.g. called once)."""
  return int(sum(np.prod(v.shape) for v in layer.trainable_variables))


def flops_per_pixel(layer: tf.keras.layers.Layer, input_shape: Sequence[int],
                    num_pixels: int) -> float:
  """FLOPs of `layer` on `input_shape`, divided by the number of image pixels it stands for."""
  return count_flops(layer, input_shape) / num_pixels


def profile_transform(layer, input_shape: Sequence[int], num_pixels: int) -> dict:
  """FLOPs/pixel and parameter count of a transform (built here if needed)."""
  output = layer(tf.zeros(input_shape))
  return dict(flops_per_pixel=flops_per_pixel(layer, input_shape, num_pixels),
              params=count_params(profiled_graph(layer, input_shape)),
              output_shape=tuple(output.shape))

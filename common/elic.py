"""ELIC analysis/synthesis transforms (He et al. 2022) with Cheng et al. 2020 building blocks.

ELIC: https://arxiv.org/abs/2203.10886; residual bottleneck block and simplified attention:
Cheng et al. 2020, https://arxiv.org/abs/2001.01568.
"""
import tensorflow as tf


def _conv(filters, kernel_size, strides=1, activation=None, transpose=False):
  layer = tf.keras.layers.Conv2DTranspose if transpose else tf.keras.layers.Conv2D
  return layer(filters, kernel_size, strides=strides, padding="same", use_bias=True,
               activation=activation)


class ResidualBlock(tf.keras.layers.Layer):
  """x + [1x1 (C/2) relu, 3x3 (C/2) relu, 1x1 (C)](x); C is taken from the input."""

  def build(self, input_shape):
    channels = input_shape[-1]
    self.block = tf.keras.Sequential([
        _conv(channels // 2, 1, activation=tf.nn.relu),
        _conv(channels // 2, 3, activation=tf.nn.relu),
        _conv(channels, 1)])
    super().build(input_shape)

  def call(self, inputs):
    return inputs + self.block(inputs)


class SimpleAttention(tf.keras.layers.Layer):
  """x + trunk(x) * sigmoid(branch(x)); trunk = 3 residual blocks, branch = 3 blocks + 1x1 conv."""

  def build(self, input_shape):
    self.trunk = tf.keras.Sequential([ResidualBlock() for _ in range(3)])
    self.branch = tf.keras.Sequential(
        [ResidualBlock() for _ in range(3)] + [_conv(input_shape[-1], 1,
                                                     activation=tf.nn.sigmoid)])
    super().build(input_shape)

  def call(self, inputs):
    return inputs + self.trunk(inputs) * self.branch(inputs)


def _check_lengths(name, channels, kernel_sizes, strides):
  if not len(channels) == len(kernel_sizes) == len(strides) == 4:
    raise ValueError(f"{name} needs 4 channels/kernel_sizes/strides, got {channels}, "
                     f"{kernel_sizes}, {strides}.")


class ElicAnalysis(tf.keras.Sequential):
  """conv s2, 3 res, conv s2, 3 res, attention, conv s2, 3 res, conv s2, attention."""

  def __init__(self, channels=(192, 192, 192, 320), kernel_sizes=(5, 5, 5, 5),
               strides=(2, 2, 2, 2), num_residual_blocks=3):
    super().__init__(name="ElicAnalysis")
    _check_lengths("ElicAnalysis", channels, kernel_sizes, strides)
    self.output_channels = channels[-1]
    convs = [_conv(c, k, s) for c, k, s in zip(channels, kernel_sizes, strides)]

    def res_blocks():
      return [ResidualBlock() for _ in range(num_residual_blocks)]

    for layer in [convs[0], *res_blocks(), convs[1], *res_blocks(), SimpleAttention(),
                  convs[2], *res_blocks(), convs[3], SimpleAttention()]:
      self.add(layer)


class ElicSynthesis(tf.keras.Sequential):
  """Mirror of ElicAnalysis with transposed convs; the last layer outputs channels[-1] (RGB)."""

  def __init__(self, channels=(192, 192, 192, 3), kernel_sizes=(5, 5, 5, 5),
               strides=(2, 2, 2, 2), num_residual_blocks=3):
    super().__init__(name="ElicSynthesis")
    _check_lengths("ElicSynthesis", channels, kernel_sizes, strides)
    convs = [_conv(c, k, s, transpose=True) for c, k, s in zip(channels, kernel_sizes, strides)]

    def res_blocks():
      return [ResidualBlock() for _ in range(num_residual_blocks)]

    for layer in [SimpleAttention(), convs[0], *res_blocks(), convs[1], SimpleAttention(),
                  *res_blocks(), convs[2], *res_blocks(), convs[3]]:
      self.add(layer)

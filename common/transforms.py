"""Analysis/synthesis transforms of the paper, registered by class name.

Every transform is a Keras layer/model mapping NHWC float tensors to NHWC float tensors, and is
built from a config dict `{"cls": ClassName, **kwargs}` with `build_transform`. Analysis
transforms state their `output_channels` (the latent's channels), so a decoder-only model knows
its latent shapes without building the analysis (tests/test_transforms.py). All GDNs are GDN1.
The BLS2017 and MBT2018 transforms use tfc.SignalConv2D as the authors' code does; every other
convolution is a plain Keras conv with "same" padding, as in the graphs on which the published
FLOP and parameter counts were measured (see tests/test_profile.py; SignalConv2D transforms are
counted on their plain-conv equivalent).
"""
import inspect
from typing import Any, Mapping

import tensorflow as tf
import tensorflow_compression as tfc

from common import elic, fast_conv


class GDN1(tfc.GDN):
  """GDN with alpha=1, epsilon=1 ("simplified GDN", Johnston et al. 2018): x / (beta + gamma |x|).

  tfc.GDN evaluates its alpha/epsilon branches through parameter tensors, which the TF profiler
  counts as extra ops; this call only builds the GDN1 path so FLOP counts are what is computed.
  """

  def __init__(self, inverse=False, **kwargs):
    super().__init__(inverse=inverse, alpha_parameter=1, epsilon_parameter=1, **kwargs)

  def call(self, inputs):
    inputs = tf.convert_to_tensor(inputs, dtype=self.dtype)
    if inputs.shape.rank != 4:
      raise ValueError(f"GDN1 expects NHWC inputs, got shape {inputs.shape}.")
    if self.rectify:
      inputs = tf.nn.relu(inputs)
    gamma = tf.reshape(self.gamma, [1, 1] + self.gamma.shape.as_list())
    norm_pool = tf.nn.convolution(tf.abs(inputs), gamma, padding="VALID")
    norm_pool = tf.nn.bias_add(norm_pool, self.beta)
    return inputs * norm_pool if self.inverse else inputs / norm_pool


def IGDN1(**kwargs):
  """Inverse GDN1 (x * (beta + gamma |x|)), used in synthesis transforms."""
  return GDN1(inverse=True, **kwargs)


_ACTIVATION_ALIASES = {"lrelu": "leaky_relu"}


def get_activation(name):
  """Maps an activation name to a callable/layer; GDN variants get fresh (trainable) layers."""
  if name is None:
    return None
  key = _ACTIVATION_ALIASES.get(name.lower(), name.lower())
  if key in ("gdn", "gdn1"):
    return GDN1()
  if key in ("igdn", "igdn1"):
    return IGDN1()
  if key == "prelu":
    return tf.keras.layers.PReLU(shared_axes=[1, 2])
  if key in ("relu", "leaky_relu", "gelu", "sigmoid", "tanh", "elu", "swish"):
    return getattr(tf.nn, key)
  raise ValueError(f"Unknown activation {name!r}; valid: gdn, igdn, prelu, relu, leaky_relu "
                   "(lrelu), gelu, sigmoid, tanh, elu, swish, None.")


def _conv(filters, kernel_size, strides, activation=None):
  return tf.keras.layers.Conv2D(filters, kernel_size, strides=strides, padding="same",
                                use_bias=True, activation=activation)


def _conv_t(filters, kernel_size, strides, activation=None):
  return tf.keras.layers.Conv2DTranspose(filters, kernel_size, strides=strides, padding="same",
                                         use_bias=True, activation=activation)


def _fast_conv_t(filters, kernel_size, strides, activation=None):
  """_conv_t computed as matmul + overlap-add or sub-pixel conv outside training (fast_conv)."""
  return fast_conv.Conv2DTranspose(filters, kernel_size, strides, use_bias=True,
                                   activation=activation)


def _signal_conv(filters, kernel_size, down=1, up=1, activation=None, use_bias=True):
  """tfc.SignalConv2D as the authors' BLS2017/MBT2018 transforms use it (TFC's own bls2017 and
  bmshj2018 models): RDFT kernel parameterization, "same_zeros" padding, TFC's default
  initializers; analysis layers correlate and downsample, synthesis layers convolve and upsample
  (computed the fast way outside training: fast_conv.SignalConv2D).
  """
  return fast_conv.SignalConv2D(filters, (kernel_size, kernel_size), corr=down > 1,
                                strides_down=down, strides_up=up, padding="same_zeros",
                                use_bias=use_bias, activation=activation)


class _PlainConvEquivalent:
  """FLOPs and parameters of SignalConv2D transforms are counted on a plain-Keras-conv graph.

  SignalConv2D stores each kernel as its RDFT (real + imaginary parts) and computes the spatial
  kernel on every call; the published counts were measured on Keras convolutions with the same
  kernel shapes, strides and activations. `profiling_equivalent` builds that graph (see
  common/profile_utils.py); it computes the same kind of function, not the same values.
  """
  _EQUIVALENT = None  # The plain-conv class taking the same constructor arguments.

  def profiling_equivalent(self, input_shape):
    layer = self._EQUIVALENT(**self._config)
    layer(tf.zeros(input_shape))
    return layer


class _KerasBLS2017Analysis(tf.keras.Sequential):
  """BLS2017Analysis with plain Keras convs (the graph its complexity is counted on)."""

  def __init__(self, num_filters=256):
    super().__init__(name="BLS2017Analysis")
    self.add(_conv(num_filters, 9, 4, activation=GDN1()))
    self.add(_conv(num_filters, 5, 2, activation=GDN1()))
    self.add(tf.keras.layers.Conv2D(num_filters, 5, strides=2, padding="same", use_bias=False))


class _KerasBLS2017Synthesis(tf.keras.Sequential):
  """BLS2017Synthesis with plain Keras transposed convs."""

  def __init__(self, num_filters=256, output_channels=3):
    super().__init__(name="BLS2017Synthesis")
    self.add(_conv_t(num_filters, 5, 2, activation=IGDN1()))
    self.add(_conv_t(num_filters, 5, 2, activation=IGDN1()))
    self.add(_conv_t(output_channels, 9, 4))


class _KerasMBT2018Analysis(tf.keras.Sequential):
  """MBT2018Analysis with plain Keras convs."""

  def __init__(self, channels_base=192, n_layers=4, output_channels=None):
    super().__init__(name="MBT2018Analysis")
    for _ in range(n_layers - 1):
      self.add(_conv(channels_base, 5, 2, activation=GDN1()))
    self.add(_conv(output_channels or channels_base, 5, 2))


class _KerasMBT2018Synthesis(tf.keras.Sequential):
  """MBT2018Synthesis with plain Keras transposed convs."""

  def __init__(self, channels_base=192, n_layers=4, output_channels=3):
    super().__init__(name="MBT2018Synthesis")
    for _ in range(n_layers - 1):
      self.add(_conv_t(channels_base, 5, 2, activation=IGDN1()))
    self.add(_conv_t(output_channels, 5, 2))


class BLS2017Analysis(_PlainConvEquivalent, tf.keras.Sequential):
  """Ballé et al. 2017 analysis: 9x9 down 4 + GDN, 5x5 down 2 + GDN, 5x5 down 2 (no bias)."""
  _EQUIVALENT = _KerasBLS2017Analysis

  def __init__(self, num_filters=256):
    super().__init__(name="BLS2017Analysis")
    self._config = dict(num_filters=num_filters)
    self.output_channels = num_filters
    self.add(_signal_conv(num_filters, 9, down=4, activation=GDN1()))
    self.add(_signal_conv(num_filters, 5, down=2, activation=GDN1()))
    self.add(_signal_conv(num_filters, 5, down=2, use_bias=False))


class BLS2017Synthesis(_PlainConvEquivalent, tf.keras.Sequential):
  """Mirror of BLS2017Analysis with IGDN; the last 9x9 up-4 layer outputs 3 channels."""
  _EQUIVALENT = _KerasBLS2017Synthesis

  def __init__(self, num_filters=256, output_channels=3):
    super().__init__(name="BLS2017Synthesis")
    self._config = dict(num_filters=num_filters, output_channels=output_channels)
    self.add(_signal_conv(num_filters, 5, up=2, activation=IGDN1()))
    self.add(_signal_conv(num_filters, 5, up=2, activation=IGDN1()))
    self.add(_signal_conv(output_channels, 9, up=4))


class MBT2018Analysis(_PlainConvEquivalent, tf.keras.Sequential):
  """Minnen et al. 2018 analysis: n_layers 5x5 stride-2 convs with GDN in between.

  A bottleneck wider than channels_base (output_channels, e.g. 320) adds capacity cheaply.
  """
  _EQUIVALENT = _KerasMBT2018Analysis

  def __init__(self, channels_base=192, n_layers=4, output_channels=None):
    super().__init__(name="MBT2018Analysis")
    self._config = dict(channels_base=channels_base, n_layers=n_layers,
                        output_channels=output_channels)
    self.output_channels = output_channels or channels_base
    for _ in range(n_layers - 1):
      self.add(_signal_conv(channels_base, 5, down=2, activation=GDN1()))
    self.add(_signal_conv(output_channels or channels_base, 5, down=2))


class MBT2018Synthesis(_PlainConvEquivalent, tf.keras.Sequential):
  """Mirror of MBT2018Analysis with inverse GDN; the last layer outputs 3 channels."""
  _EQUIVALENT = _KerasMBT2018Synthesis

  def __init__(self, channels_base=192, n_layers=4, output_channels=3):
    super().__init__(name="MBT2018Synthesis")
    self._config = dict(channels_base=channels_base, n_layers=n_layers,
                        output_channels=output_channels)
    for _ in range(n_layers - 1):
      self.add(_signal_conv(channels_base, 5, up=2, activation=IGDN1()))
    self.add(_signal_conv(output_channels, 5, up=2))


class CNNAnalysis(tf.keras.Sequential):
  """Four 5x5 stride-2 convs (plain Keras) with a pointwise activation in between."""

  def __init__(self, channels_base=256, output_channels=None, activation_type="leaky_relu"):
    super().__init__(name="CNNAnalysis")
    output_channels = output_channels or channels_base
    self.output_channels = output_channels
    for _ in range(3):
      self.add(_conv(channels_base, 5, 2, activation=get_activation(activation_type)))
    self.add(_conv(output_channels, 5, 2))


class CNNSynthesis(tf.keras.Sequential):
  """Four 5x5 stride-2 transposed convs with a pointwise activation in between."""

  def __init__(self, channels_base=256, output_channels=3, activation_type="leaky_relu"):
    super().__init__(name="CNNSynthesis")
    for _ in range(3):
      self.add(_conv_t(channels_base, 5, 2, activation=get_activation(activation_type)))
    self.add(_conv_t(output_channels, 5, 2))


class HyperAnalysis(tf.keras.Sequential):
  """h_a: conv3x3 s1 relu, conv5x5 s2 relu, conv5x5 s2 (all bottleneck_size channels)."""

  def __init__(self, bottleneck_size=320, activation_type="relu"):
    super().__init__(name="HyperAnalysis")
    self.output_channels = bottleneck_size
    self.add(_conv(bottleneck_size, 3, 1, activation=get_activation(activation_type)))
    self.add(_conv(bottleneck_size, 5, 2, activation=get_activation(activation_type)))
    self.add(_conv(bottleneck_size, 5, 2))


class HyperSynthesis(tf.keras.Sequential):
  """h_s: convT5x5 s2 relu (C), convT5x5 s2 relu (1.5C), convT3x3 s1 (2C = mean, log-scale)."""

  def __init__(self, bottleneck_size=320, activation_type="relu"):
    super().__init__(name="HyperSynthesis")
    self.add(_conv_t(bottleneck_size, 5, 2, activation=get_activation(activation_type)))
    self.add(_conv_t(int(bottleneck_size * 1.5), 5, 2,
                     activation=get_activation(activation_type)))
    self.add(_conv_t(bottleneck_size * 2, 3, 1))


class HyperAnalysisSmall(tf.keras.Sequential):
  """The authors' small h_a (one stride-2 layer instead of two): conv3x3 s1 relu, conv5x5 s2
  without bias (all bottleneck_size channels), as TFC's hyperprior ends its h_a."""

  def __init__(self, bottleneck_size=320, activation_type="relu"):
    super().__init__(name="HyperAnalysisSmall")
    self.output_channels = bottleneck_size
    self.add(_conv(bottleneck_size, 3, 1, activation=get_activation(activation_type)))
    self.add(tf.keras.layers.Conv2D(bottleneck_size, 5, strides=2, padding="same",
                                    use_bias=False))


class HyperSynthesisSmall(tf.keras.Sequential):
  """The authors' small h_s matching HyperAnalysisSmall: convT5x5 s2 relu (1.5C), convT3x3 s1
  (2C = mean and scale input)."""

  def __init__(self, bottleneck_size=320, activation_type="relu"):
    super().__init__(name="HyperSynthesisSmall")
    self.add(_conv_t(int(bottleneck_size * 1.5), 5, 2,
                     activation=get_activation(activation_type)))
    self.add(_conv_t(bottleneck_size * 2, 3, 1))


class JPEGLikeSynthesis(tf.keras.Model):
  """ONE transposed conv: each latent vector paints an overlapping kernel_size^2 RGB patch."""

  def __init__(self, output_channels=3, kernel_size=18, strides=16):
    super().__init__(name="JPEGLikeSynthesis")
    self.conv = _fast_conv_t(output_channels, kernel_size, strides)

  def call(self, inputs, training=None):
    return self.conv(inputs)


class TwoLayerSynthesis(tf.keras.Model):
  """Two transposed convs (k13 s8 to `channels[0]`, then k5 s2 to RGB), an activation between."""

  def __init__(self, channels=(24, 3), strides=(8, 2), kernel_sizes=(13, 5),
               activation_type="igdn"):
    super().__init__(name="TwoLayerSynthesis")
    self.conv1 = _fast_conv_t(channels[0], kernel_sizes[0], strides[0],
                              activation=get_activation(activation_type))
    self.conv2 = _fast_conv_t(channels[1], kernel_sizes[1], strides[1])

  def call(self, inputs, training=None):
    return self.conv2(self.conv1(inputs))


class TwoLayerResSynthesis(tf.keras.Model):
  """The paper's proposed 2-layer synthesis: TwoLayerSynthesis plus a linear residual path.

  The residual path upsamples the latent to the hidden layer's resolution, either with a parallel
  transposed conv without activation (res_type="conv", the paper's setting) or with
  depth-to-space + 1x1 convs (res_type="d2s"), and is added before the second layer.
  """

  def __init__(self, channels=(12, 3), strides=(8, 2), kernel_sizes=(13, 5),
               activation_type="igdn", res_type="conv"):
    super().__init__(name="TwoLayerResSynthesis")
    self.base_conv = _fast_conv_t(channels[0], kernel_sizes[0], strides[0],
                                  activation=get_activation(activation_type))
    if res_type == "conv":
      self.res = _fast_conv_t(channels[0], kernel_sizes[0], strides[0])
    elif res_type == "d2s":
      if strides[0] != 8:
        raise ValueError(f"res_type='d2s' upsamples by 8 (three depth-to-space x2); got "
                         f"strides[0]={strides[0]}.")
      def d2s():  # A new layer each time: Sequential drops repeated layer instances.
        return tf.keras.layers.Lambda(lambda t: tf.nn.depth_to_space(t, 2))
      self.res = tf.keras.Sequential([
          d2s(), _conv(192, 1, 1, activation=tf.nn.leaky_relu),
          d2s(), _conv(channels[0] * 4, 1, 1, activation=tf.nn.leaky_relu),
          d2s()])
    else:
      raise ValueError(f"Unknown res_type {res_type!r}; valid: 'conv', 'd2s'.")
    self.out_conv = _fast_conv_t(channels[1], kernel_sizes[1], strides[1])

  def call(self, inputs, training=None):
    return self.out_conv(self.base_conv(inputs) + self.res(inputs))


class JPEGLikeHyperSynthesis(tf.keras.Model):
  """h_s as ONE transposed conv (stride 4) to 2C channels (mean, log-scale), to save FLOPs."""

  def __init__(self, bottleneck_size=320, kernel_size=6):
    super().__init__(name="JPEGLikeHyperSynthesis")
    self.conv = _conv_t(bottleneck_size * 2, kernel_size, 4)

  def call(self, inputs, training=None):
    return self.conv(inputs)


TRANSFORMS = {cls.__name__: cls for cls in (
    BLS2017Analysis, BLS2017Synthesis, MBT2018Analysis, MBT2018Synthesis,
    CNNAnalysis, CNNSynthesis, HyperAnalysis, HyperSynthesis,
    HyperAnalysisSmall, HyperSynthesisSmall,
    elic.ElicAnalysis, elic.ElicSynthesis,
    JPEGLikeSynthesis, TwoLayerSynthesis, TwoLayerResSynthesis, JPEGLikeHyperSynthesis)}


def build_transform(config: Mapping[str, Any]):
  """Builds a registered transform from `{"cls": Name, **kwargs}` (dict or ConfigDict)."""
  config = dict(config)
  if "cls" not in config:
    raise ValueError(f"Transform config {config} has no 'cls' key; valid classes: "
                     f"{sorted(TRANSFORMS)}.")
  name = config.pop("cls")
  if name not in TRANSFORMS:
    raise ValueError(f"Unknown transform class {name!r}; valid classes: {sorted(TRANSFORMS)}.")
  cls = TRANSFORMS[name]
  valid = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "kwargs")]
  unknown = sorted(set(config) - set(valid))
  if unknown:
    raise ValueError(f"Unknown argument(s) {unknown} for transform {name}; valid: {valid}.")
  for key, value in config.items():  # ConfigDict turns tuples into lists; keep them hashable.
    if isinstance(value, list):
      config[key] = tuple(value)
  return cls(**config)

"""Transposed convolutions of the synthesis transforms computed the fast way at inference.

TF's Conv2DTranspose with "SAME" padding (Conv2DBackpropInput) is slow for the shallow syntheses'
layers: with few output channels and a large stride it spends most of its time scattering kernel
patches (JPEG-like k18 s16, 320 -> 3: 29 ms at 1 thread where its FLOPs take 4.2 ms). The same
op with EXPLICIT padding runs another kernel (oneDNN's deconvolution) that is 1.3-5x faster on
these layers (5.7 ms there), but slower on small strides with few input channels (k5 s2, 12 -> 3:
7.3 ms vs 5.9), where the sub-pixel form wins (3.0 ms): a stride-1 conv on the input grid to
s * s * C_out channels, then depth_to_space. Small strides to many channels (MBT2018's k5 s2,
192 -> 192) run as one stride-1 conv per output phase (phase form, 7-14% faster than the explicit
op). All equal the plain op up to float rounding, with the same kernel and bias variables, so
checkpoints do not change.

tfc.SignalConv2D (the BLS2017 / MBT2018 syntheses) stores each kernel as its RDFT and computes the
spatial kernel with a batched inverse FFT on every call: 55-91 ms per 5x5 layer of 192-320
channels at 1 thread, a third of Minnen 2018's synthesis. The inverse RDFT is a linear map of the
(real, imaginary) coefficients, so at inference it is computed here as one matmul with its basis
(< 3 ms).

Geometry: a transposed conv with stride s puts tap t of input position i at output
o = i * s + t - p, p = the padding before; "SAME" has p = max(k - s, 0) // 2, SignalConv2D's
"same_zeros" upsampling p = k // 2. Writing t - p = d * s + r (0 <= r < s), the tap lands in row r
of output block i + d.
"""
import numpy as np
import tensorflow as tf
import tensorflow_compression as tfc


def same_padding_before(kernel_size, stride):
  """Leading padding of a "SAME" transposed conv: tap t of input i lands at i * s + t - this."""
  return max(kernel_size - stride, 0) // 2


def _bias_taps(bias, kernel_size, stride, pad_before):
  """Kernel (k, k, C_out, 1) for an input channel of ones that adds `bias` to every output: the
  taps t with 0 <= t - pad_before < stride (one stride period) carry it, and each output receives
  exactly one of them."""
  period = np.zeros((kernel_size, kernel_size, 1, 1), np.float32)
  period[pad_before:pad_before + stride, pad_before:pad_before + stride] = 1
  return tf.constant(period, bias.dtype) * tf.reshape(bias, (1, 1, -1, 1))


@tf.autograph.experimental.do_not_convert  # plain Python on static shapes
def explicit_conv2d_transpose(inputs, kernel, stride, pad_before, bias=None):
  """Transposed conv (+ bias) to N x H*s x W*s x C_out whose tap t of input i lands at output
  i * s + t - pad_before, run with EXPLICIT padding (see the module docstring).

  kernel: (k, k, C_out, C_in), the layout of tf.keras.layers.Conv2DTranspose. The padding after is
  what makes the output H * s long; TF's transposed conv accepts an output up to s - 1 longer than
  the padding implies, which covers kernels shorter than the stride. Where the output has more
  values than the input (s^2 C_out > C_in, e.g. the JPEG-like layer: 6.6 -> 5.7 ms at 1 thread)
  the conv adds the bias itself, through an extra input channel of ones (_bias_taps), instead of
  a pass over the output.
  """
  size, _, c_out, c_in = kernel.shape
  if bias is not None and stride * stride * c_out > c_in and pad_before + stride <= size:
    inputs = tf.concat([inputs, tf.ones_like(inputs[..., :1])], axis=-1)
    kernel = tf.concat([kernel, _bias_taps(bias, size, stride, pad_before)], axis=-1)
    bias = None
  batch, height, width = tf.shape(inputs)[0], tf.shape(inputs)[1], tf.shape(inputs)[2]
  pad = (pad_before, max(size - stride - pad_before, 0))
  outputs = tf.nn.conv2d_transpose(
      inputs, kernel, tf.stack([batch, height * stride, width * stride, c_out]), stride,
      [[0, 0], pad, pad, [0, 0]])
  return outputs if bias is None else tf.nn.bias_add(outputs, bias)


def _block_offsets(kernel_size, stride, pad_before):
  """(smallest, largest) block offset d that a tap reaches (see the module docstring)."""
  return (-pad_before) // stride, (kernel_size - 1 - pad_before) // stride


def subpixel_flop_ratio(kernel_size, stride, pad_before):
  """FLOPs of the sub-pixel form over the transposed conv's: its kernel is padded to D*s taps."""
  low, high = _block_offsets(kernel_size, stride, pad_before)
  return ((high - low + 1) * stride / kernel_size) ** 2


@tf.autograph.experimental.do_not_convert  # plain Python on static shapes
def subpixel_kernel(kernel, stride, pad_before):
  """The transposed conv's kernel as a stride-1 conv kernel on the input grid (sub-pixel form).

  Returns (kernel of shape (D, D, C_in, s * s * C_out), padding before, padding after): output
  channel (r_h, r_w, c) of input position i is output pixel (i * s + r_h, i * s + r_w, c) after
  depth_to_space; taps outside the original kernel are zero.
  """
  size, _, c_out, c_in = kernel.shape
  low, high = _block_offsets(size, stride, pad_before)
  blocks = high - low + 1
  # Window position j reads input i + j - high, i.e. block offset d = high - j: tap d * s + r + p.
  taps = np.array([(high - j) * stride + r + pad_before for j in range(blocks)
                   for r in range(stride)])
  taps = np.where((taps >= 0) & (taps < size), taps, size)  # index `size` = a zero tap
  padded = tf.pad(kernel, [[0, 1], [0, 1], [0, 0], [0, 0]])
  spread = tf.gather(tf.gather(padded, taps, axis=0), taps, axis=1)
  spread = tf.reshape(spread, (blocks, stride, blocks, stride, c_out, c_in))
  spread = tf.transpose(spread, (0, 2, 5, 1, 3, 4))
  return tf.reshape(spread, (blocks, blocks, c_in, stride * stride * c_out)), high, -low


@tf.autograph.experimental.do_not_convert  # plain Python on static shapes
def subpixel_conv2d_transpose(inputs, kernel, stride, pad_before, bias=None):
  """explicit_conv2d_transpose(...) as a stride-1 conv + depth_to_space (sub-pixel conv). The
  bias, repeated for the s^2 output phases, is added before depth_to_space, where TF fuses it
  into the conv."""
  spread, before, after = subpixel_kernel(kernel, stride, pad_before)
  outputs = tf.nn.conv2d(inputs, spread, 1, [[0, 0], [before, after], [before, after], [0, 0]])
  if bias is not None:
    outputs = tf.nn.bias_add(outputs, tf.tile(bias, [stride * stride]))
  return tf.nn.depth_to_space(outputs, stride) if stride > 1 else outputs


@tf.autograph.experimental.do_not_convert  # plain Python on static shapes
def phase_conv2d_transpose(inputs, kernel, stride, pad_before, bias=None):
  """explicit_conv2d_transpose(...) as s^2 stride-1 convs, one per output phase, interleaved by
  depth_to_space: phase (r_h, r_w) (output pixels i * s + r) takes the taps t = d * s + r + p,
  so the convs have the transposed conv's FLOPs (k5 s2: phase kernels 3x3, 3x2, 2x3, 2x2). Block
  offsets the kernel does not reach get zero taps (kernels shorter than the stride). Biases are
  added per phase, where TF fuses them into the convs."""
  size, _, c_out, _ = kernel.shape
  padded = tf.pad(tf.transpose(kernel, (0, 1, 3, 2)), [[0, 1], [0, 1], [0, 0], [0, 0]])

  def window(r):
    """(taps of phase r in window order, padding before, padding after) along one axis."""
    offsets = [(t - r - pad_before) // stride for t in range(size)
               if (t - r - pad_before) % stride == 0]
    low, high = min(offsets + [0]), max(offsets + [0])
    # Window position j reads input m + j - high: block offset d = high - j, tap d * s + r + p.
    taps = [(high - j) * stride + r + pad_before for j in range(high - low + 1)]
    return [t if 0 <= t < size else size for t in taps], high, -low

  phases = []
  for r_h in range(stride):
    rows, top, bottom = window(r_h)
    for r_w in range(stride):
      cols, left, right = window(r_w)
      sub = tf.gather(tf.gather(padded, rows, axis=0), cols, axis=1)
      phase = tf.nn.conv2d(inputs, sub, 1, [[0, 0], [top, bottom], [left, right], [0, 0]])
      phases.append(phase if bias is None else tf.nn.bias_add(phase, bias))
  outputs = tf.concat(phases, axis=-1) if len(phases) > 1 else phases[0]
  return tf.nn.depth_to_space(outputs, stride) if stride > 1 else outputs


# The sub-pixel form is used where it pads few taps (k5 s2: 1.44x the FLOPs; k13 s8: 3.4x and
# k18 s16: 7.1x) and the layer has few input channels. Measured at 1 thread, k5 s2 to 3 channels
# on a 256x384 input, sub-pixel vs explicit: 3.0 vs 7.3 ms from 12 channels, 8.2 vs 9.8 from 48,
# 13.0 vs 13.7 from 96, 27 vs 20 from 192.
MAX_SUBPIXEL_FLOP_RATIO = 2.0
MAX_SUBPIXEL_INPUT_CHANNELS = 96
# The phase form is used for small strides (few phases) to many channels: MBT2018's k5 s2 192 ->
# 192 layers, 1 thread: 193 vs 207 ms (128x192 input), 50 vs 54 ms (64x96); 2 threads: 102 vs
# 119, 27 vs 31 ms. To 3 channels its convs are slow (82 vs 20 ms).
MAX_PHASE_STRIDE = 2
MIN_PHASE_OUTPUT_CHANNELS = 64


def fast_form(kernel_size, stride, pad_before, input_channels, output_channels):
  """The form a transposed conv of this geometry infers in: subpixel_conv2d_transpose,
  phase_conv2d_transpose or explicit_conv2d_transpose (see MAX_SUBPIXEL_*, *_PHASE_*)."""
  if (subpixel_flop_ratio(kernel_size, stride, pad_before) <= MAX_SUBPIXEL_FLOP_RATIO and
      input_channels <= MAX_SUBPIXEL_INPUT_CHANNELS):
    return subpixel_conv2d_transpose
  if 1 < stride <= MAX_PHASE_STRIDE and output_channels >= MIN_PHASE_OUTPUT_CHANNELS:
    return phase_conv2d_transpose
  return explicit_conv2d_transpose


class Conv2DTranspose(tf.keras.layers.Conv2DTranspose):
  """Keras Conv2DTranspose ("SAME", equal strides) computed the fast way outside training.

  With training=True the plain transposed conv runs, the form FLOPs are counted on; the synthesis
  is a small part of a training step (benchmarks/synthesis_forms.py times both forms' gradients:
  the fast forms' are faster for the JPEG-like layer, not for the 2-layer model). Same variables,
  variable names and FLOPs as the Keras layer (the class keeps its name so that Keras' automatic
  layer names do not change), so checkpoints are interchangeable; the output equals the plain
  layer's up to float rounding. The form: see fast_form.
  """

  def __init__(self, filters, kernel_size, strides, **kwargs):
    super().__init__(filters, kernel_size, strides=strides, padding="same", **kwargs)
    if self.strides[0] != self.strides[1] or self.kernel_size[0] != self.kernel_size[1]:
      raise ValueError(f"Needs square kernels and equal strides; got kernel {self.kernel_size}, "
                       f"strides {self.strides}.")
    self.pad_before = same_padding_before(self.kernel_size[0], self.strides[0])
    self.fast_form = None  # chosen in build(), which knows the input channels

  def build(self, input_shape):
    super().build(input_shape)
    self.fast_form = fast_form(self.kernel_size[0], self.strides[0], self.pad_before,
                               int(input_shape[-1]), self.filters)

  def call(self, inputs, training=None):
    if training:
      return super().call(inputs)
    outputs = self.fast_form(inputs, self.kernel, self.strides[0], self.pad_before,
                             self.bias if self.use_bias else None)
    return self.activation(outputs) if self.activation is not None else outputs


@tf.autograph.experimental.do_not_convert  # plain Python on static shapes
def rdft_kernel(parameter):
  """The spatial kernel (k_h, k_w, C_in, C_out) of a 2D tfc.RDFTParameter, equal to parameter()
  up to float rounding: its inverse RDFT as one matmul of the (real, imaginary) coefficients with
  the inverse RDFT of each unit coefficient (a constant that TF folds when tracing)."""
  k_h, k_w, c_in, c_out = parameter.shape
  count = k_h * (k_w // 2 + 1)  # coefficients per kernel, real and imaginary parts each
  unit = tf.reshape(tf.eye(count, dtype=parameter.real.dtype), (count, k_h, k_w // 2 + 1))
  zero = tf.zeros_like(unit)
  # RDFTParameter scales the coefficients by sqrt(k_h * k_w) before the inverse RDFT.
  units = tf.complex(tf.concat([unit, zero], 0), tf.concat([zero, unit], 0)) * (k_h * k_w) ** .5
  basis = tf.reshape(tf.signal.irfft2d(units, fft_length=(k_h, k_w)), (2 * count, k_h * k_w))
  coefficients = tf.concat([tf.reshape(parameter.real, (c_in * c_out, count)),
                            tf.reshape(parameter.imag, (c_in * c_out, count))], axis=1)
  kernel = tf.linalg.matmul(basis, coefficients, transpose_a=True, transpose_b=True)
  return tf.reshape(kernel, (k_h, k_w, c_in, c_out))


@tf.autograph.experimental.do_not_convert  # plain Python on static shapes
def correlate_down_explicit(inputs, kernel, stride, pad_before, bias=None):
  """What tfc.SignalConv2D computes for a correlation followed by downsampling with "same_zeros"
  padding (its _correlate_down_explicit): one strided conv, zero padding pad_before before and
  the rest of the kernel after. kernel: (k, k, C_in, C_out)."""
  size = kernel.shape[0]
  pad = (pad_before, size - 1 - pad_before)
  outputs = tf.nn.conv2d(inputs, kernel, stride, [[0, 0], pad, pad, [0, 0]])
  return outputs if bias is None else tf.nn.bias_add(outputs, bias)


class SignalConv2D(tfc.SignalConv2D):
  """tfc.SignalConv2D computed the fast way outside training, for the layers of the BLS2017 /
  MBT2018 transforms (RDFT kernel, "same_zeros" padding, explicit padding mode).

  The spatial kernel comes from rdft_kernel (one matmul instead of a batched inverse FFT) in both
  directions. Synthesis (upsampling) layers run the transposed conv in the form fast_form picks
  (MBT2018: the phase form to 192 channels, the explicit-padding op, as TFC runs it, to 3);
  analysis (downsampling correlation) layers run TFC's own strided conv
  (correlate_down_explicit). Other configurations, and training=True (the gradients then flow
  through TFC's computation, unchanged), run tfc.SignalConv2D. Same variables and variable names
  (the class keeps its name, so Keras' automatic layer names do not change); outputs equal up to
  float rounding.
  """

  def build(self, input_shape):
    super().build(input_shape)
    size = self.kernel_support[0]
    self.fast_form = None
    if not (isinstance(self.kernel_parameter, tfc.RDFTParameter) and
            not self.channel_separable and self.data_format == "channels_last" and
            self.padding == "same_zeros" and self.use_explicit and
            self.kernel_support == (size, size) and
            self.dtype == self.compute_dtype == "float32"):
      return
    up, down = self.strides_up, self.strides_down
    if (not self.corr and self.extra_pad_end and down == (1, 1) and up[0] == up[1] > 1):
      # Explicit padding (k // 2, (k - 1) // 2) to an output H * s long: tap t of input i lands
      # at i * s + t - k // 2.
      self.pad_before = size // 2
      self.fast_form = fast_form(size, up[0], self.pad_before, int(input_shape[-1]),
                                 self.filters)
    elif self.corr and up == (1, 1) and down[0] == down[1]:
      self.pad_before = size // 2  # TFC's "same" padding of a correlation: (k // 2, (k - 1) // 2)
      self.fast_form = correlate_down_explicit

  def call(self, inputs, training=None):
    if training or self.fast_form is None:
      return super().call(inputs)
    kernel = rdft_kernel(self.kernel_parameter)
    if self.corr:
      stride = self.strides_down[0]
    else:
      kernel, stride = tf.transpose(kernel, (0, 1, 3, 2)), self.strides_up[0]
    outputs = self.fast_form(inputs, kernel, stride, self.pad_before,
                             self.bias if self.use_bias else None)
    return self.activation(outputs) if self.activation is not None else outputs

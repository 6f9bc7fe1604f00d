"""Transposed convolutions with few output channels, computed as a matmul plus overlap-add.

TF's Conv2DTranspose (Conv2DBackpropInput) spends most of its time scattering kernel patches when
a layer has few output channels and a large stride, e.g. the JPEG-like synthesis (k18 s16, 320 ->
3): its matmul is a seventh of its time. Here each input vector is multiplied once by the kernel
reshaped to (C_in, k * k * C_out), giving one k x k patch per input position, and the patches
are overlap-added with slices, shifts and reshapes (depth-to-space along each axis). The result
equals tf.nn.conv2d_transpose with "SAME" padding up to float rounding, with the same kernel and
bias variables, so checkpoints do not change.

Patch geometry: a transposed conv with stride s and "SAME" padding puts tap t of input position
i at output o = i * s + t - p, p = max(k - s, 0) // 2. Writing t - p = d * s + r (0 <= r < s), the
tap lands in row r of output block i + d; the overlap-add sums, for every r, the patches of the
input positions i - d over the block offsets d that reach r.
"""
import numpy as np
import tensorflow as tf


def same_padding_before(kernel_size, stride):
  """Leading padding of a "SAME" transposed conv: tap t of input i lands at i * s + t - this."""
  return max(kernel_size - stride, 0) // 2


def _shift(x, offset, axis):
  """x shifted by `offset` positions along `axis` (x[i - offset] at i), zero-filled, same size."""
  if offset == 0:
    return x
  size = tf.shape(x)[axis]
  paddings = [[0, 0]] * x.shape.rank
  if offset > 0:
    paddings[axis] = [offset, 0]
    begin, length = 0, size
  else:
    paddings[axis] = [0, -offset]
    begin, length = -offset, size
  padded = tf.pad(x, paddings)
  begins = [0] * x.shape.rank
  begins[axis] = begin
  sizes = [-1] * x.shape.rank
  sizes[axis] = length
  return tf.slice(padded, begins, sizes)


def _take(x, axis, start, length):
  return x[(slice(None),) * axis + (slice(start, start + length),)]


@tf.autograph.experimental.do_not_convert  # plain Python control flow on static shapes
def _overlap_add(patches, kernel_size, stride, block_axis, tap_axis):
  """Sums the taps of `patches` into stride-long output blocks along one spatial dimension.

  patches has the input positions on `block_axis` and the kernel taps on `tap_axis` (> block_axis);
  returns the same tensor with the tap axis replaced by `stride` rows of the output block. Runs
  of rows reached by the same block offsets are summed as whole slices, then concatenated.
  """
  pad = same_padding_before(kernel_size, stride)
  # reach[r] = [(d, t)]: row r of block i receives tap t of input position i - d.
  reach = [[] for _ in range(stride)]
  for t in range(kernel_size):
    d, r = divmod(t - pad, stride)
    reach[r].append((d, t))
  pieces, r = [], 0
  while r < stride:
    offsets = [d for d, _ in reach[r]]
    end = r + 1
    while end < stride and [d for d, _ in reach[end]] == offsets:
      end += 1
    terms = [_shift(_take(patches, tap_axis, t, end - r), d, block_axis) for d, t in reach[r]]
    if not terms:  # a kernel shorter than the stride leaves these rows empty
      terms = [tf.repeat(tf.zeros_like(_take(patches, tap_axis, 0, 1)), end - r, axis=tap_axis)]
    pieces.append(tf.add_n(terms) if len(terms) > 1 else terms[0])
    r = end
  return tf.concat(pieces, axis=tap_axis) if len(pieces) > 1 else pieces[0]


def _block_offsets(kernel_size, stride):
  """(smallest, largest) block offset d that a tap reaches (see the module docstring)."""
  pad = same_padding_before(kernel_size, stride)
  return (-pad) // stride, (kernel_size - 1 - pad) // stride


def subpixel_flop_ratio(kernel_size, stride):
  """FLOPs of the sub-pixel form over the transposed conv's: its kernel is padded to D*s taps."""
  low, high = _block_offsets(kernel_size, stride)
  return ((high - low + 1) * stride / kernel_size) ** 2


@tf.autograph.experimental.do_not_convert  # plain Python control flow on static shapes
def patch_conv2d_transpose(inputs, kernel, stride):
  """tf.nn.conv2d_transpose(inputs, kernel, N x H*s x W*s x C_out, s, "SAME") as matmul +
  overlap-add.

  kernel: (k_h, k_w, C_out, C_in), the layout of tf.keras.layers.Conv2DTranspose.
  """
  k_h, k_w, c_out, c_in = kernel.shape
  batch, height, width = tf.shape(inputs)[0], tf.shape(inputs)[1], tf.shape(inputs)[2]
  matrix = tf.reshape(tf.transpose(kernel, (3, 0, 1, 2)), (c_in, k_h * k_w * c_out))
  patches = tf.reshape(tf.linalg.matmul(tf.reshape(inputs, (-1, c_in)), matrix),
                       (batch, height, width, k_h, k_w, c_out))
  # Rows: (N, H, W, k_h, k_w, C) -> (N, H, W, s, k_w, C); then (N, H, s, W, k_w, C) for columns.
  rows = _overlap_add(patches, k_h, stride, block_axis=1, tap_axis=3)
  rows = tf.transpose(rows, (0, 1, 3, 2, 4, 5))
  blocks = _overlap_add(rows, k_w, stride, block_axis=3, tap_axis=4)
  return tf.reshape(blocks, (batch, height * stride, width * stride, c_out))


@tf.autograph.experimental.do_not_convert  # plain Python control flow on static shapes
def subpixel_kernel(kernel, stride):
  """The transposed conv's kernel as a stride-1 conv kernel on the input grid (sub-pixel form).

  Returns (kernel of shape (D, D, C_in, s * s * C_out), padding before, padding after): output
  channel (r_h, r_w, c) of input position i is output pixel (i * s + r_h, i * s + r_w, c) after
  depth_to_space; taps outside the original kernel are zero.
  """
  size, _, c_out, c_in = kernel.shape
  pad = same_padding_before(size, stride)
  low, high = _block_offsets(size, stride)
  blocks = high - low + 1
  # Window position j reads input i + j - high, i.e. block offset d = high - j: tap d * s + r + p.
  taps = np.array([(high - j) * stride + r + pad for j in range(blocks) for r in range(stride)])
  taps = np.where((taps >= 0) & (taps < size), taps, size)  # index `size` = a zero tap
  padded = tf.pad(kernel, [[0, 1], [0, 1], [0, 0], [0, 0]])
  spread = tf.gather(tf.gather(padded, taps, axis=0), taps, axis=1)
  spread = tf.reshape(spread, (blocks, stride, blocks, stride, c_out, c_in))
  spread = tf.transpose(spread, (0, 2, 5, 1, 3, 4))
  return tf.reshape(spread, (blocks, blocks, c_in, stride * stride * c_out)), high, -low


@tf.autograph.experimental.do_not_convert  # plain Python control flow on static shapes
def subpixel_conv2d_transpose(inputs, kernel, stride):
  """tf.nn.conv2d_transpose(..., "SAME") as a stride-1 conv + depth_to_space (sub-pixel conv)."""
  spread, before, after = subpixel_kernel(kernel, stride)
  outputs = tf.nn.conv2d(inputs, spread, 1, [[0, 0], [before, after], [before, after], [0, 0]])
  return tf.nn.depth_to_space(outputs, stride) if stride > 1 else outputs


# Largest FLOP ratio at which the sub-pixel form is used instead of matmul + overlap-add: a
# stride-1 conv is fast in TF, so it wins while few taps are padded (k5 s2: 1.44x the FLOPs);
# large strides pad most taps (k13 s8: 3.4x, k18 s16: 7.1x) and take the patch form.
MAX_SUBPIXEL_FLOP_RATIO = 2.0


class Conv2DTranspose(tf.keras.layers.Conv2DTranspose):
  """Keras Conv2DTranspose ("SAME", equal strides) computed the fast way outside training.

  With training=True the plain transposed conv runs: its gradients are faster than those of either
  fast form (benchmarks/decode_speed.py measures both). Same variables, variable names and FLOPs as
  the Keras layer (the class keeps its name so that Keras' automatic layer names do not change), so
  checkpoints are interchangeable; the output equals the plain layer's up to float rounding. The
  form is the sub-pixel conv when it costs at most MAX_SUBPIXEL_FLOP_RATIO times the FLOPs, else
  matmul + overlap-add.
  """

  def __init__(self, filters, kernel_size, strides, **kwargs):
    super().__init__(filters, kernel_size, strides=strides, padding="same", **kwargs)
    if self.strides[0] != self.strides[1] or self.kernel_size[0] != self.kernel_size[1]:
      raise ValueError(f"Needs square kernels and equal strides; got kernel {self.kernel_size}, "
                       f"strides {self.strides}.")
    if self.subpixel_flop_ratio() <= MAX_SUBPIXEL_FLOP_RATIO:
      self.fast_form = subpixel_conv2d_transpose
    else:
      self.fast_form = patch_conv2d_transpose

  def subpixel_flop_ratio(self):
    return subpixel_flop_ratio(self.kernel_size[0], self.strides[0])

  def call(self, inputs, training=None):
    if training:
      return super().call(inputs)
    outputs = self.fast_form(inputs, self.kernel, self.strides[0])
    if self.use_bias:
      outputs = tf.nn.bias_add(outputs, self.bias)
    return self.activation(outputs) if self.activation is not None else outputs

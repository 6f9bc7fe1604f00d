"""Fast transposed convs (explicit padding, sub-pixel conv) and the fast SignalConv2D equal the
plain computations."""
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_compression as tfc

from common import fast_conv, transforms

# (kernel, stride, C_in, C_out, H, W): the paper's synthesis layers (at a reduced size), kernels
# shorter than, equal to and odd against the stride, stride 1, a 1x1 input.
GEOMETRIES = [(18, 16, 320, 3, 4, 6), (13, 8, 320, 12, 4, 5), (5, 2, 12, 3, 9, 7),
              (4, 8, 3, 2, 3, 4), (8, 8, 5, 3, 2, 3), (3, 1, 6, 5, 7, 9), (6, 4, 7, 2, 3, 3),
              (5, 2, 16, 4, 1, 1)]


def _reference(x, kernel, stride, pad_before):
  """The transposed conv without padding (output (H - 1) * s + k), shifted by pad_before and
  cut (or zero-extended) to H * s: tap t of input i at i * s + t - pad_before."""
  n, h, w, _ = x.shape
  size = kernel.shape[0]
  full = tf.nn.conv2d_transpose(x, kernel, (n, (h - 1) * stride + size, (w - 1) * stride + size,
                                            kernel.shape[2]), stride, "VALID")
  extra = max(h * stride + pad_before - full.shape[1], 0), max(w * stride + pad_before -
                                                              full.shape[2], 0)
  full = tf.pad(full, [[0, 0], [0, extra[0]], [0, extra[1]], [0, 0]])
  return full[:, pad_before:pad_before + h * stride, pad_before:pad_before + w * stride]


@pytest.mark.parametrize("form", [fast_conv.explicit_conv2d_transpose,
                                  fast_conv.subpixel_conv2d_transpose,
                                  fast_conv.phase_conv2d_transpose])
@pytest.mark.parametrize("size,stride,c_in,c_out,height,width", GEOMETRIES)
@pytest.mark.parametrize("padding", ["same", "signal"])
def test_fast_forms_equal_transposed_conv(form, size, stride, c_in, c_out, height, width,
                                          padding):
  # "SAME" padding (Keras) and SignalConv2D's "same_zeros" upsampling (k // 2 before).
  pad_before = fast_conv.same_padding_before(size, stride) if padding == "same" else size // 2
  x = tf.random.stateless_uniform((2, height, width, c_in), (1, 2), -2., 2.)
  kernel = tf.random.stateless_normal((size, size, c_out, c_in), (3, 4)) / np.sqrt(size * c_in)
  bias = tf.random.stateless_normal((c_out,), (5, 6))
  expected = _reference(x, kernel, stride, pad_before)
  if padding == "same":
    np.testing.assert_allclose(
        expected, tf.nn.conv2d_transpose(x, kernel, expected.shape, stride, "SAME"), atol=1e-5)
  np.testing.assert_allclose(form(x, kernel, stride, pad_before), expected, atol=1e-5)
  # With a bias: the explicit form adds it through a channel of ones where s^2 C_out > C_in.
  np.testing.assert_allclose(form(x, kernel, stride, pad_before, bias), expected + bias,
                             atol=1e-5)


def _reads_a_variable(op, seen=None):
  seen = set() if seen is None else seen
  if op.type == "ReadVariableOp":
    return True
  seen.add(op.name)
  return any(_reads_a_variable(t.op, seen) for t in op.inputs if t.op.name not in seen)


def _uses_plain_form(synthesis, training, channels=320):
  """Whether the traced synthesis runs TF's "SAME" transposed conv or TFC's kernel FFT (an
  inverse FFT of variables; rdft_kernel's inverse FFT of constants does not count)."""
  graph = tf.function(lambda y: synthesis(y, training=training)).get_concrete_function(
      tf.TensorSpec((1, 2, 2, channels))).graph
  return any((op.type == "Conv2DBackpropInput" and op.get_attr("padding") == b"SAME") or
             (op.type == "IRFFT2D" and _reads_a_variable(op)) for op in graph.get_operations())


@pytest.mark.parametrize("config", [
    dict(cls="JPEGLikeSynthesis"), dict(cls="TwoLayerResSynthesis", channels=(12, 3)),
    dict(cls="TwoLayerSynthesis", channels=(24, 3))])
def test_synthesis_infers_in_fast_form_equal_to_plain(config):
  synthesis = transforms.build_transform(config)
  y = tf.random.stateless_normal((1, 5, 7, 320), (5, 6)) * 3.
  plain = synthesis(y, training=True)
  fast = synthesis(y)
  assert fast.shape == plain.shape == (1, 80, 112, 3)
  assert float(tf.reduce_max(tf.abs(plain))) > 0.1  # a real signal, not zeros
  np.testing.assert_allclose(fast, plain, atol=1e-5)
  # training=True reaches the nested layers: the plain transposed convs run there, and only there.
  for training, plain_ops in ((True, True), (False, False), (None, False)):
    assert _uses_plain_form(synthesis, training) == plain_ops
  layers = [layer for layer in synthesis.submodules
            if isinstance(layer, tf.keras.layers.Conv2DTranspose)]
  assert layers and all(isinstance(layer, fast_conv.Conv2DTranspose) for layer in layers)
  # The 320-channel large-stride layers take the explicit form; a k5 s2 12/24 -> 3 layer the
  # sub-pixel one.
  forms = {(layer.kernel_size[0], layer.strides[0]): layer.fast_form for layer in layers}
  explicit, subpixel = fast_conv.explicit_conv2d_transpose, fast_conv.subpixel_conv2d_transpose
  assert forms.get((18, 16), explicit) is explicit and forms.get((13, 8), explicit) is explicit
  assert forms.get((5, 2), subpixel) is subpixel


@pytest.mark.parametrize("config,channels", [
    (dict(cls="MBT2018Synthesis", channels_base=16), 24),
    (dict(cls="BLS2017Synthesis", num_filters=16), 16),
    (dict(cls="MBT2018Synthesis", channels_base=192), 320)])  # the paper's
def test_signal_conv_synthesis_infers_fast_equal_to_tfc(config, channels):
  synthesis = transforms.build_transform(config)
  y = tf.random.stateless_normal((2, 3, 5, channels), (7, 8)) * 3.
  plain = synthesis(y, training=True)
  fast = synthesis(y)
  assert float(tf.reduce_max(tf.abs(plain))) > 0.1
  np.testing.assert_allclose(fast, plain, atol=1e-5)
  assert all(isinstance(layer, fast_conv.SignalConv2D) for layer in synthesis.layers)
  forms = [layer.fast_form for layer in synthesis.layers]
  if config.get("channels_base") == 192:  # to 192 channels the phase form, to 3 the explicit
    assert forms == [fast_conv.phase_conv2d_transpose] * 3 + [
        fast_conv.explicit_conv2d_transpose]
  else:  # 16-24 channels: sub-pixel
    assert forms == [fast_conv.subpixel_conv2d_transpose] * len(forms)
  for layer in synthesis.layers:
    np.testing.assert_allclose(fast_conv.rdft_kernel(layer.kernel_parameter), layer.kernel,
                               atol=1e-6)
  for training, plain_ops in ((True, True), (False, False), (None, False)):
    assert _uses_plain_form(synthesis, training, channels) == plain_ops


@pytest.mark.parametrize("config,channels", [
    (dict(cls="MBT2018Analysis", channels_base=16, output_channels=24), 24),
    (dict(cls="BLS2017Analysis", num_filters=16), 16),
    (dict(cls="MBT2018Analysis", channels_base=192, output_channels=320), 320)])  # the paper's
def test_signal_conv_analysis_infers_fast_equal_to_tfc(config, channels):
  analysis = transforms.build_transform(config)
  x = tf.random.stateless_uniform((2, 48, 80, 3), (9, 10), -1., 1.)
  plain = analysis(x, training=True)
  fast = analysis(x)
  assert fast.shape == plain.shape == (2, 3, 5, channels)
  assert float(tf.reduce_max(tf.abs(plain))) > 0.01
  np.testing.assert_allclose(fast, plain, atol=1e-5 * float(tf.reduce_max(tf.abs(plain))))
  assert all(layer.fast_form is fast_conv.correlate_down_explicit for layer in analysis.layers)
  for training, kernel_fft in ((True, True), (False, False), (None, False)):
    graph = tf.function(lambda x: analysis(x, training=training)).get_concrete_function(
        tf.TensorSpec((1, 32, 32, 3))).graph
    assert any(op.type == "IRFFT2D" and _reads_a_variable(op)
               for op in graph.get_operations()) == kernel_fft


def test_same_variables_as_keras_layer(tmp_path):
  fast = fast_conv.Conv2DTranspose(3, 18, 16)
  plain = tf.keras.layers.Conv2DTranspose(3, 18, strides=16, padding="same")
  for layer in (fast, plain):
    layer.build((None, None, None, 320))
  assert fast.name.startswith("conv2d_transpose")  # Keras' automatic name is unchanged
  assert [(v.name.split("/")[-1], v.shape) for v in fast.weights] == \
      [(v.name.split("/")[-1], v.shape) for v in plain.weights]
  checkpoint = tf.train.Checkpoint(layer=plain)
  prefix = checkpoint.write(str(tmp_path / "plain"))
  tf.train.Checkpoint(layer=fast).read(prefix).assert_consumed()
  np.testing.assert_array_equal(fast.kernel, plain.kernel)


def test_same_variables_as_tfc_signal_conv(tmp_path):
  args = dict(filters=8, kernel_support=(5, 5), corr=False, strides_up=2, padding="same_zeros")
  fast, plain = fast_conv.SignalConv2D(**args), tfc.SignalConv2D(**args)
  for layer in (fast, plain):
    layer.build((None, None, None, 12))
  assert fast.name.startswith("signal_conv2d")
  assert [(v.name.split("/")[-1], v.shape) for v in fast.weights] == \
      [(v.name.split("/")[-1], v.shape) for v in plain.weights]
  prefix = tf.train.Checkpoint(layer=plain).write(str(tmp_path / "plain"))
  tf.train.Checkpoint(layer=fast).read(prefix).assert_consumed()
  np.testing.assert_array_equal(fast.kernel, plain.kernel)

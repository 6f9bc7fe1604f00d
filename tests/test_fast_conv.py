"""Fast transposed convs (matmul + overlap-add, sub-pixel conv) equal TF's transposed conv."""
import numpy as np
import pytest
import tensorflow as tf

from common import fast_conv, transforms

# (kernel, stride, C_in, C_out, H, W): the paper's synthesis layers (at a reduced size), kernels
# shorter than, equal to and odd against the stride, stride 1.
GEOMETRIES = [(18, 16, 320, 3, 4, 6), (13, 8, 320, 12, 4, 5), (5, 2, 12, 3, 9, 7),
              (4, 8, 3, 2, 3, 4), (8, 8, 5, 3, 2, 3), (3, 1, 6, 5, 7, 9), (6, 4, 7, 2, 3, 3)]


def _reference(x, kernel, stride):
  n, h, w, _ = x.shape
  return tf.nn.conv2d_transpose(x, kernel, (n, h * stride, w * stride, kernel.shape[2]), stride,
                                "SAME")


@pytest.mark.parametrize("form", [fast_conv.patch_conv2d_transpose,
                                  fast_conv.subpixel_conv2d_transpose])
@pytest.mark.parametrize("size,stride,c_in,c_out,height,width", GEOMETRIES)
def test_fast_forms_equal_transposed_conv(form, size, stride, c_in, c_out, height, width):
  x = tf.random.stateless_uniform((2, height, width, c_in), (1, 2), -2., 2.)
  kernel = tf.random.stateless_normal((size, size, c_out, c_in), (3, 4)) / np.sqrt(size * c_in)
  expected = _reference(x, kernel, stride)
  np.testing.assert_allclose(form(x, kernel, stride), expected, atol=1e-5)


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
    graph = tf.function(lambda y: synthesis(y, training=training)).get_concrete_function(
        tf.TensorSpec((1, 2, 2, 320))).graph
    ops = {op.type for op in graph.get_operations()}
    assert ("Conv2DBackpropInput" in ops) == plain_ops
  layers = [layer for layer in synthesis.submodules
            if isinstance(layer, tf.keras.layers.Conv2DTranspose)]
  assert layers and all(isinstance(layer, fast_conv.Conv2DTranspose) for layer in layers)
  # The 320-channel large-stride layers take the patch form; a k5 s2 layer the sub-pixel one.
  forms = {(layer.kernel_size[0], layer.strides[0]): layer.fast_form for layer in layers}
  assert forms.get((18, 16), fast_conv.patch_conv2d_transpose) is fast_conv.patch_conv2d_transpose
  assert forms.get((13, 8), fast_conv.patch_conv2d_transpose) is fast_conv.patch_conv2d_transpose
  assert forms.get((5, 2), fast_conv.subpixel_conv2d_transpose) is \
      fast_conv.subpixel_conv2d_transpose


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

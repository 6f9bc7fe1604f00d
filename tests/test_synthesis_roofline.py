"""The roofline benchmark's steps compute what the synthesis computes, and count its FLOPs."""
import numpy as np
import pytest
import tensorflow as tf

from benchmarks import synthesis_roofline
from common import profile_utils, transforms


@pytest.mark.parametrize("config,channels", [
    (dict(cls="JPEGLikeSynthesis"), 320),
    (dict(cls="TwoLayerResSynthesis", channels=(12, 3)), 320),
    (dict(cls="TwoLayerSynthesis", channels=(24, 3)), 320),
    (dict(cls="MBT2018Synthesis", channels_base=16), 24)])
def test_steps_equal_the_synthesis_and_its_profiled_flops(config, channels):
  synthesis = transforms.build_transform(config)
  y = tf.random.stateless_normal((1, 3, 4, channels), (1, 2)) * 3.
  expected = synthesis(y)
  steps = synthesis_roofline.Steps()
  np.testing.assert_allclose(steps.synthesis(synthesis, y), expected, atol=1e-5)
  # The conv and IGDN steps' FLOPs are the profiler's for the plain form; the kernel steps of
  # RDFT layers are extra work the profiled plain-conv graph does not have.
  counted = sum(row["flops"] for row in steps.rows if "kernel" not in row["name"])
  assert counted == pytest.approx(profile_utils.count_flops(synthesis, y.shape), rel=0.01)

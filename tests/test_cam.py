"""CAM math on hand-made activations and gradients (no model needed)."""

from __future__ import annotations

import numpy as np
import pytest

from export.cam import (
    METHODS,
    compute_cam,
    gradcam,
    gradcam_plus_plus,
    hirescam,
    normalise,
    upsample,
)


def _blob(h=8, w=8, at=(2, 5)):
    a = np.zeros((1, h, w, 2), np.float32)
    a[0, at[0], at[1], 0] = 3.0  # channel 0 fires at one place
    a[0, :, :, 1] = 1.0  # channel 1 fires everywhere
    return a


def test_gradcam_follows_positive_gradient_channel():
    a = _blob()
    g = np.zeros_like(a)
    g[..., 0] = 1.0  # the score rises with channel 0 only
    cam = gradcam(a, g)[0]
    assert np.unravel_index(cam.argmax(), cam.shape) == (2, 5)
    g[..., 0] = -1.0  # a channel that lowers the score is not evidence
    assert gradcam(a, g).max() == 0.0


def test_methods_agree_on_a_single_source_and_are_normalised():
    a = _blob()
    g = np.zeros_like(a)
    g[..., 0] = 0.5
    for name in METHODS:
        cam = compute_cam(name, a, g)[0]
        assert cam.shape == (8, 8) and cam.max() == pytest.approx(1.0) and cam.min() == 0.0
        assert np.unravel_index(cam.argmax(), cam.shape) == (2, 5), name


def test_hirescam_is_elementwise_and_gradcampp_weights_positive_gradients():
    a = np.ones((1, 4, 4, 1), np.float32)
    g = np.zeros_like(a)
    g[0, 1, 1, 0] = 2.0
    h = hirescam(a, g)[0]
    assert h[1, 1] == 2.0 and h.sum() == 2.0  # only where the gradient is
    assert gradcam(a, g)[0].std() == 0.0  # Grad-CAM spreads the averaged weight
    assert gradcam_plus_plus(a, g).max() > 0


def test_flat_maps_normalise_to_zero_not_nan():
    assert np.array_equal(normalise(np.ones((2, 3, 3))), np.zeros((2, 3, 3)))
    assert not np.isnan(
        compute_cam("gradcam", np.zeros((1, 2, 2, 3)), np.zeros((1, 2, 2, 3)))
    ).any()


def test_one_method_list_for_the_math_the_panel_and_the_flags():
    from export.cam import _FUNCTIONS, DEFAULT_METHOD

    assert list(METHODS) == list(_FUNCTIONS) and DEFAULT_METHOD in METHODS
    assert all(isinstance(label, str) and label for label in METHODS.values())


def test_shape_checks_and_unknown_method():
    with pytest.raises(ValueError, match="NHWC"):
        gradcam(np.zeros((1, 2, 2, 3)), np.zeros((1, 2, 2, 4)))
    with pytest.raises(ValueError, match="unknown CAM method"):
        compute_cam("magic", np.zeros((1, 2, 2, 1)), np.zeros((1, 2, 2, 1)))


def test_upsample_keeps_the_peak_location():
    cam = np.zeros((8, 8), np.float32)
    cam[2, 6] = 1.0
    big = upsample(cam, 64, 64)
    r, c = np.unravel_index(big.argmax(), big.shape)
    assert abs(r - 2.5 * 8) <= 4 and abs(c - 6.5 * 8) <= 4


def test_onto_image_undoes_letterboxing():
    from export.cam import onto_image
    from export.image_input import InputSpec

    spec = InputSpec(height=64, width=64, resize="pad")
    # a 2:1 wide image occupies rows 16..48 of the padded input; the CAM peak sits in its right half
    cam = np.zeros((8, 8), np.float32)
    cam[4, 6] = 1.0
    out = onto_image(cam, (100, 200), spec)
    assert out.shape == (100, 200)
    r, c = np.unravel_index(out.argmax(), out.shape)
    assert 40 <= r <= 85 and c > 140
    stretch = onto_image(cam, (100, 200), InputSpec(height=64, width=64), max_side=50)
    assert stretch.shape == (25, 50)

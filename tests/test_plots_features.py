"""The front-end figures of notebook 02 draw and compute what they claim: attention as a deviation from uniform on
a scale centred on zero, attention summaries that match their uniform and one-hot extremes, and a normal-vs-normal
band that holds about 90 % of chance differences and leaves out a real shift."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from asdlib.teaching.plots import features as pf  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_attention_deviation_is_white_for_uniform_attention():
    f = 16
    ax = pf.attention_deviation(np.full((f, f), 1 / f), limit=0.01)
    image = ax.images[0]
    assert np.allclose(image.get_array(), 0.0)
    assert image.norm.vmin == pytest.approx(-0.01) and image.norm.vmax == pytest.approx(0.01)
    assert image.norm.vcenter == 0.0


def test_attention_summary_extremes():
    f = 32
    uniform = pf.attention_summary(np.full((2, 3, f, f), 1 / f), top=4, near=1)
    assert uniform["effective keys"] == pytest.approx(f)
    assert uniform["top-4 share"] == pytest.approx(4 / f)
    assert uniform["near-diagonal share"] == pytest.approx(uniform["near-diagonal share if uniform"])
    assert uniform["largest weight × uniform"] == pytest.approx(1.0)
    hub = np.zeros((f, f))
    hub[:, 5] = 1.0  # every query attends to key 5 only
    one = pf.attention_summary(hub, top=4)
    assert one["effective keys"] == pytest.approx(1.0)
    assert one["top-4 share"] == pytest.approx(1.0)
    assert list(pf.most_attended_keys(hub, top=1)) == [5]
    assert pf.attention_summary(np.eye(f), near=0)["near-diagonal share"] == pytest.approx(1.0)


def test_difference_band_holds_chance_and_flags_a_shift():
    rng = np.random.default_rng(0)
    f = 200
    normal, reference = rng.normal(size=(30, f)), rng.normal(size=(120, f))
    same = rng.normal(size=(30, f))
    curve, band = pf.difference_with_band(same, normal, reference, draws=400)
    assert curve.shape == (f,) and band.shape == (2, f)
    outside = ((curve < band[0]) | (curve > band[1])).mean()
    assert 0.03 < outside < 0.2  # a 5–95 % band: about 10 % by chance
    shifted = same + np.where(np.arange(f) < 20, 2.0, 0.0)
    curve, band = pf.difference_with_band(shifted, normal, reference, draws=400)
    assert ((curve[:20] < band[0, :20]) | (curve[:20] > band[1, :20])).all()
    ax = pf.difference_band(curve, band)
    assert any("outside the band" in t.get_text() for t in ax.get_legend().get_texts())

"""The embedding comparator of notebook 04, on the shipped ArcFace and Noisy-ArcMix runs' real test embeddings."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

from asdlib.teaching import pretrained
from asdlib.teaching.comparator import STATIC_NOTE, comparator_figure, embedding_comparator, id_embeddings
from asdlib.teaching.embeddings import shared_layout, shipped_embeddings
from asdlib.teaching.paths import data_root

RUNS = {"ArcFace": "tastgram_mfn-arcface-s0", "Noisy-ArcMix": "tastgram_mfn-noisy_arcmix-s0"}


@pytest.fixture(scope="module")
def runs():
    """The two shipped runs' test embeddings, with paths into the default procedural dataset (to hear a clip)."""
    data = data_root("default")
    if not any(data.glob("*/test/*.wav")):
        pytest.skip(f"{data} holds no clips: the default procedural dataset is needed (python -m asdlib synth "
                    f"--size default --out {data})")
    mismatch = pretrained.dataset_mismatch(pretrained.get(RUNS["ArcFace"]), data)
    if mismatch:
        pytest.skip(mismatch)
    return {label: shipped_embeddings(pretrained.get(name).path, data=data) for label, name in RUNS.items()}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_id_embeddings_line_up_one_ids_clips_in_every_run(runs):
    subset = id_embeddings(runs, "fan", 0)
    tables = [e.table for e in subset.values()]
    assert tables[0].path.tolist() == tables[1].path.tolist()  # the same clip in the same row of every run
    assert set(tables[0].machine_type) == {"fan"} and set(tables[0].machine_id) == {0}
    assert tables[0].label.value_counts().to_dict() == {"anomaly": 50, "normal": 50}
    assert tables[0].label.iloc[0] == "anomaly" and all(len(e.embedding) == len(e.cosine) == 100
                                                         for e in subset.values())
    assert all(Path(p).is_file() for p in tables[0].path)


def test_figure_has_a_histogram_and_a_map_per_loss_and_marks_the_clip(runs):
    subset = id_embeddings(runs, "fan", 0)
    layouts = shared_layout(subset, method="tsne", progress=False)
    k = 7
    clip = subset["ArcFace"].table.path[k]
    fig = comparator_figure(subset, clip, layouts=layouts)
    top, bottom = np.array(fig.axes).reshape(2, 2)
    assert [ax.get_title() for ax in top] == list(RUNS) and "anomaly_id_00_00000007.wav" in fig.get_suptitle()
    for hist, where, (name, emb) in zip(top, bottom, subset.items()):
        legend = [t.get_text() for t in hist.get_legend().get_texts()]
        assert hist.patches and [t.split(" ")[0] for t in legend] == ["normal", "anomaly", "this"]
        assert hist.lines[-1].get_xdata()[0] == pytest.approx(emb.angle[k])  # the dashed line at the clip's angle
        normal = emb.angle[emb.table.label.to_numpy() == "normal"]
        assert legend[-1].endswith(f"above {100 * np.mean(normal < emb.angle[k]):.0f} % of normal clips")
        star = where.collections[-1]
        assert star.get_sizes()[0] > 10 * where.collections[0].get_sizes()[0]  # far larger than the other dots
        np.testing.assert_allclose(star.get_offsets()[0], layouts[name][k])
    assert top[0].get_shared_y_axes().joined(top[0], top[1])


def test_without_a_frontend_the_first_selection_is_one_static_figure(runs, capsys, monkeypatch):
    monkeypatch.delenv("ASD_WIDGETS", raising=False)  # pytest runs no Jupyter kernel
    shown = embedding_comparator(runs, machine_type="valve", method="tsne")
    assert isinstance(shown, Figure) and len(shown.axes) == 4
    assert shown.get_suptitle() == "valve id_00: the anomaly clip anomaly_id_00_00000000.wav"
    assert STATIC_NOTE in capsys.readouterr().out


def test_the_widget_follows_the_machine_id(runs):
    import ipywidgets as w

    widget = embedding_comparator(runs, machine_type="fan", method="tsne", interactive=True)
    assert isinstance(widget, w.VBox) and isinstance(widget.children[1], w.Output)
    type_box, id_box, clip_box = widget.children[0].children
    assert all(isinstance(b, w.Dropdown) for b in (type_box, id_box, clip_box))
    assert type_box.value == "fan" and id_box.value == id_box.options[0]
    other = id_box.options[1]
    id_box.value = other
    paths = [path for _, path in clip_box.options]
    assert len(paths) == 100 and all(Path(p).parts[-3] == "fan" and f"_id_{other:02d}_" in p for p in paths)
    assert clip_box.value == paths[0] and clip_box.options[0][0].startswith("anomaly: ")
    type_box.value = "ToyConveyor"
    assert id_box.value == id_box.options[0] and all(Path(p).parts[-3] == "ToyConveyor" for _, p in clip_box.options)

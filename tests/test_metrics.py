"""DCASE2020 metrics: the STgram-MFN README reproduced from its per-ID numbers, pAUC by hand, tables, files."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from asdlib.evaluation.metrics import (
    auc_pauc,
    format_result_csv,
    per_id_table,
    pooled_table,
    published_results,
    read_score_files,
    summary_table,
    to_markdown,
    type_average,
    write_score_files,
)

STGRAM_README = {  # machine: AUC, pAUC, mAUC in % (STgram-MFN README, "Result on development dataset")
    "fan": (94.04, 88.97, 81.39), "pump": (91.94, 81.75, 83.48), "slider": (99.55, 97.61, 98.22),
    "valve": (99.64, 98.44, 98.83), "ToyCar": (94.44, 87.68, 83.07), "ToyConveyor": (74.57, 63.60, 64.16),
    "Average": (92.36, 86.34, 84.86),
}
STGRAM_RESULT_CSV_AVERAGES = {  # the "Average" / "Total Average" lines of the README result.csv block
    "ToyCar": (0.944372647, 0.876803394), "ToyConveyor": (0.745711375, 0.636003645),
    "fan": (0.940350067, 0.889732432), "pump": (0.919388168, 0.817483458), "slider": (0.995468165, 0.976148236),
    "valve": (0.996395833, 0.984429825), "Total Average": (0.923614376, 0.863433498),
}


@pytest.fixture(scope="module")
def published():
    return published_results()


# ------------------------------------------------------------------------------ the README, reproduced
def test_summary_reproduces_stgram_readme(published):
    per_id = published["STgram-MFN per ID"]
    assert len(per_id) == 23
    table = summary_table(per_id)
    assert table["machine_type"].tolist() == list(STGRAM_README)
    got = {r.machine_type: tuple(round(100 * v, 2) for v in (r.auc, r.pauc, r.mauc)) for r in table.itertuples()}
    assert got == STGRAM_README
    ours = published["STgram-MFN"].set_index("machine_type")
    assert (100 * ours[["auc", "pauc", "mauc"]]).round(2).apply(tuple, axis=1).to_dict() == STGRAM_README


def test_harmonic_means(published):
    # the DCASE2020 evaluator averages arithmetically; the harmonic mean of the type AUCs = 91.47 (91.48 from the README's rounded rows)
    types = summary_table(published["STgram-MFN per ID"])
    assert round(100 * type_average(types, mean="harmonic")["auc"], 2) == 91.47
    assert round(100 * type_average(published["STgram-MFN"], mean="harmonic")["auc"], 2) == 91.48
    harmonic = type_average(published["TASTgram-MFN + Noisy-ArcMix"], mean="harmonic")
    assert [round(100 * harmonic[c], 2) for c in ("auc", "pauc", "mauc")] == [93.94, 87.73, 88.36]
    # harmonic at both levels (per type over IDs, then over types) is lower still
    two_level = summary_table(published["STgram-MFN per ID"], mean="harmonic").iloc[-1]
    assert two_level["machine_type"] == "Average" and 0.90 < two_level["auc"] < 0.9147
    with pytest.raises(ValueError, match="unknown mean 'geometric'"):
        summary_table(published["STgram-MFN per ID"], mean="geometric")


def test_published_averages(published):
    tast = type_average(published["TASTgram-MFN + Noisy-ArcMix"])
    row = published["TASTgram-MFN + Noisy-ArcMix"].iloc[-1]
    for c in ("auc", "pauc", "mauc"):
        assert abs(tast[c] - row[c]) < 0.00005 + 1e-12
    # the STSASgram README's Average AUC (94.74) disagrees with its own rows (94.62)
    assert round(100 * type_average(published["STSASgram-MFN + Noisy-ArcMix"])["auc"], 2) == 94.62
    assert all("published on DCASE2020" in t.attrs["caption"] for t in published.values())


def test_result_csv_layout(published):
    text = format_result_csv(published["STgram-MFN per ID"])
    lines = text.splitlines()
    assert lines[:3] == ["ToyCar", "id,AUC,pAUC", "01,0.830719697,0.652198679"]
    assert [ln for ln in lines if "," not in ln] == ["ToyCar", "ToyConveyor", "fan", "pump", "slider", "valve"]
    averages = [ln.split(",") for ln in lines if ln.startswith(("Average", "Total Average"))]
    expected = list(STGRAM_RESULT_CSV_AVERAGES.values())
    assert len(averages) == len(expected) == 7
    for (_, auc, pauc), (e_auc, e_pauc) in zip(averages, expected):
        assert abs(float(auc) - e_auc) < 1e-9 and abs(float(pauc) - e_pauc) < 1e-9
    assert lines[-1].startswith("Total Average,")


def test_to_markdown(published):
    text = to_markdown(summary_table(published["STgram-MFN per ID"]))
    lines = text.splitlines()
    assert lines[0] == "| machine | AUC | pAUC | mAUC |"
    assert "| Fan | 94.04 | 88.97 | 81.39 |" in lines
    assert "| ToyConveyor | 74.57 | 63.60 | 64.16 |" in lines
    assert lines[-1] == "| **Average** | **92.36** | **86.34** | **84.86** |"
    assert len(lines) == 2 + 7
    per_id = to_markdown(published["STgram-MFN per ID"], percent=False).splitlines()
    assert per_id[0] == "| machine | ID | AUC | pAUC |" and per_id[2] == "| ToyCar | 01 | 0.8307 | 0.6522 |"


# ------------------------------------------------------------------------------ pAUC by hand
def _hand_auc_pauc(y: np.ndarray, s: np.ndarray, p: float = 0.1) -> tuple[float, float]:
    """ROC by sorting (distinct scores), trapezoids up to FPR p with the interpolated point, then McClish."""
    y = y[np.argsort(-s)]
    tpr = np.concatenate([[0.0], np.cumsum(y) / y.sum()])
    fpr = np.concatenate([[0.0], np.cumsum(1 - y) / (1 - y).sum()])
    auc = np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2)
    stop = np.searchsorted(fpr, p, side="right")  # first point past p
    tpr_p = tpr[stop - 1] + (tpr[stop] - tpr[stop - 1]) * (p - fpr[stop - 1]) / (fpr[stop] - fpr[stop - 1])
    x, t = np.append(fpr[:stop], p), np.append(tpr[:stop], tpr_p)
    area = np.sum(np.diff(x) * (t[1:] + t[:-1]) / 2)
    return auc, 0.5 * (1 + (area - p**2 / 2) / (p - p**2 / 2))


def test_pauc_by_hand():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(25, int), np.ones(15, int)]  # FPR steps of 0.04: 0.1 needs interpolation
    s = rng.normal(size=40) + 1.2 * y
    auc, pauc = auc_pauc(y, s)
    hand_auc, hand_pauc = _hand_auc_pauc(y, s)
    assert auc == pytest.approx(hand_auc, abs=1e-12) and pauc == pytest.approx(hand_pauc, abs=1e-12)
    assert 0.5 < pauc < auc < 1.0
    assert auc_pauc(np.where(y == 1, "anomaly", "normal"), s) == (auc, pauc)
    assert auc_pauc(y, 2 * y + 0.0) == (1.0, 1.0)


def test_single_class_error_names_the_group():
    with pytest.raises(ValueError, match="fan id_02.*4 normal and 0 anomalous"):
        auc_pauc(["normal"] * 4, [0.1, 0.2, 0.3, 0.4], name="fan id_02")
    frame = pd.DataFrame({"machine_type": "pump", "machine_id": 4, "label": 1, "score": [0.1, 0.2]})
    with pytest.raises(ValueError, match="pump id_04"):
        per_id_table(frame)
    with pytest.raises(ValueError, match="'normal'/'anomaly'"):
        auc_pauc(["normal", "abnormal"], [0.1, 0.2])


# ------------------------------------------------------------------------------ tables from scores
def _synthetic_scores(seed: int = 0) -> pd.DataFrame:
    """Two types × two IDs; each ID's scores are shifted, so pooling the IDs changes the AUC."""
    rng = np.random.default_rng(seed)
    rows = []
    for machine_type, ids in (("fan", ("id_02", "id_00")), ("ToyCar", (1, 3))):
        for shift, machine_id in enumerate(ids):
            for k, label in enumerate(["normal"] * 12 + ["anomaly"] * 8):
                score = rng.normal() + 2.0 * (label == "anomaly") + 3.0 * shift
                rows.append((machine_type, machine_id, f"{label}_id_{k:02d}_{k:08d}.wav", label, score))
    return pd.DataFrame(rows, columns=["machine_type", "machine_id", "file", "label", "score"])


def test_per_id_table_and_pooled():
    scores = _synthetic_scores()
    table = per_id_table(scores)
    assert table.columns.tolist() == ["machine_type", "machine_id", "auc", "pauc"]
    assert list(zip(table["machine_type"], table["machine_id"])) == [("ToyCar", 1), ("ToyCar", 3),
                                                                     ("fan", 0), ("fan", 2)]
    sub = scores[(scores["machine_type"] == "fan") & (scores["machine_id"] == "id_02")]
    assert tuple(table.iloc[3][["auc", "pauc"]]) == auc_pauc(sub["label"], sub["score"])
    summary = summary_table(table)
    assert summary["machine_type"].tolist() == ["fan", "ToyCar", "Average"]
    assert summary.iloc[0]["mauc"] == min(table.iloc[2]["auc"], table.iloc[3]["auc"])
    pooled = pooled_table(scores)
    assert pooled.columns.tolist() == ["machine_type", "auc", "pauc"]
    assert pooled["machine_type"].tolist() == ["fan", "ToyCar", "Average"]
    assert (pooled["auc"].iloc[:2].to_numpy() < summary["auc"].iloc[:2].to_numpy()).all()
    assert "| **Average** |" in to_markdown(pooled)


# ------------------------------------------------------------------------------ score files
def test_score_files_round_trip_and_overwrite(tmp_path):
    scores = _synthetic_scores()
    scores["path"] = "/data/dev/" + scores["file"]  # paths are written as bare file names
    paths = write_score_files(scores, tmp_path / "team")
    assert [p.name for p in paths] == ["anomaly_score_ToyCar_id_01.csv", "anomaly_score_ToyCar_id_03.csv",
                                       "anomaly_score_fan_id_00.csv", "anomaly_score_fan_id_02.csv"]
    first = paths[0].read_text().splitlines()
    assert len(first) == 20 and first[0].startswith("anomaly_id_12_00000012.wav,")
    back = read_score_files(tmp_path / "team")
    assert back.columns.tolist() == ["machine_type", "machine_id", "file", "score"]
    merged = back.merge(scores.assign(machine_id=scores["machine_id"].map(lambda v: int(str(v)[-2:]))),
                        on=["machine_type", "machine_id", "file"])
    assert len(merged) == len(scores) == 80
    np.testing.assert_array_equal(merged["score_x"], merged["score_y"])  # repr() round-trips floats exactly
    assert write_score_files(scores, tmp_path / "team") == paths  # same content: fine
    changed = scores.assign(score=scores["score"] + 1)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_score_files(changed, tmp_path / "team")
    assert read_score_files(tmp_path / "team")["score"].tolist() == back["score"].tolist()
    write_score_files(changed, tmp_path / "team", overwrite=True)
    assert read_score_files(tmp_path / "team")["score"].tolist() == (back["score"] + 1).tolist()
    with pytest.raises(FileNotFoundError):
        read_score_files(tmp_path / "empty")


def test_on_types_recomputes_the_average_over_the_kept_types():
    from asdlib.evaluation.metrics import on_types, published_results

    table = published_results()["STgram-MFN"]
    three = on_types(table, ["fan", "valve", "ToyConveyor"])
    assert three.machine_type.tolist() == ["fan", "valve", "ToyConveyor", "Average"]
    assert three.set_index("machine_type").at["Average", "auc"] == pytest.approx((0.9404 + 0.9964 + 0.7457) / 3)

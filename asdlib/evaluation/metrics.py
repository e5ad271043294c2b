"""DCASE2020 Task 2 evaluation: AUC / pAUC per machine ID, per-type tables, score files, published results.

The official rule (the DCASE2020 Task 2 evaluator, ``evaluator.py`` of y-kawagu/dcase2020_task2_evaluator):
per machine ID, AUC and pAUC = sklearn ``roc_auc_score`` with
``max_fpr=0.1`` (McClish-standardised partial AUC); per machine type the arithmetic mean over its IDs; the
"Average" row is the arithmetic mean over the six types. mAUC (both READMEs) is the *minimum* per-ID AUC of a
type. Noisy-ArcMix's ``eval.py`` instead pools all IDs of a type into one ROC (:func:`pooled_table`).
Tables hold fractions in [0, 1]; :func:`to_markdown` prints percentages.
"""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from asdlib.data.dcase import MACHINE_TYPES

AVERAGE = "Average"
MEANS = ("arithmetic", "harmonic")
_LABELS = {"normal": 0, "anomaly": 1}
_SCORE_FILE = re.compile(r"^anomaly_score_(?P<type>.+)_id_(?P<id>\d+)\.csv$")


# ------------------------------------------------------------------------------------ one group
def _binary_labels(y_true) -> np.ndarray:
    """``"normal"``/``"anomaly"`` or 0/1 -> int array with 1 = anomaly."""
    y = np.asarray(y_true)
    if y.dtype.kind in "OUS":
        bad = sorted({str(v) for v in y} - set(_LABELS))
        if bad:
            raise ValueError(f"labels must be 'normal'/'anomaly' or 0/1, got {bad[:3]}")
        return np.array([_LABELS[str(v)] for v in y], dtype=int)
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"labels must be 'normal'/'anomaly' or 0/1, got values {np.unique(y)[:5]}")
    return y.astype(int)


def auc_pauc(y_true, y_score, *, max_fpr: float = 0.1, name: str = "") -> tuple[float, float]:
    """AUC and McClish-standardised pAUC (FPR ≤ ``max_fpr``) as sklearn computes them; 1 = anomaly.

    ``(N,), (N,) -> (auc, pauc)``; ``name`` (e.g. ``"fan id_00"``) goes into the error for a one-class group.
    """
    y = _binary_labels(y_true)
    n_anomaly = int(y.sum())
    if n_anomaly in (0, y.size):
        where = f" for {name}" if name else ""
        raise ValueError(f"AUC is undefined{where}: {y.size - n_anomaly} normal and {n_anomaly} anomalous clips; "
                         "both classes are needed (is this an unlabelled evaluation split?)")
    score = np.asarray(y_score, dtype=float)
    return float(roc_auc_score(y, score)), float(roc_auc_score(y, score, max_fpr=max_fpr))


def _machine_id(value) -> int:
    """``2`` / ``"02"`` / ``"id_02"`` -> 2."""
    return int(str(value).removeprefix("id_"))


def _require(frame: pd.DataFrame, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(f"missing column(s) {missing}; expected {list(columns)}, got {list(frame.columns)}")


# ------------------------------------------------------------------------------------ tables
def per_id_table(scores: pd.DataFrame, *, max_fpr: float = 0.1) -> pd.DataFrame:
    """One row per (machine_type, machine_id): columns machine_type, machine_id, auc, pauc.

    ``scores`` has columns machine_type, machine_id, label (``"normal"``/``"anomaly"`` or 0/1), score. Rows come
    in the seeds' sorted path order (ToyCar, ToyConveyor, fan, pump, slider, valve; IDs ascending).
    """
    _require(scores, ("machine_type", "machine_id", "label", "score"))
    frame = scores.assign(machine_id=scores["machine_id"].map(_machine_id))
    rows = []
    for (machine_type, machine_id), group in frame.groupby(["machine_type", "machine_id"], sort=True):
        auc, pauc = auc_pauc(group["label"], group["score"], max_fpr=max_fpr,
                             name=f"{machine_type} id_{machine_id:02d}")
        rows.append((machine_type, machine_id, auc, pauc))
    return pd.DataFrame(rows, columns=["machine_type", "machine_id", "auc", "pauc"])


def _mean(values, mean: str) -> float:
    x = np.asarray(values, dtype=float)
    if mean == "arithmetic":
        return float(x.mean())
    if mean == "harmonic":
        return 0.0 if (x == 0).any() else float(x.size / (1.0 / x).sum())
    raise ValueError(f"unknown mean {mean!r}; expected one of {', '.join(MEANS)}")


def _type_order(types) -> list[str]:
    """The README order (fan, pump, slider, valve, ToyCar, ToyConveyor); unknown names after, sorted."""
    present = set(types)
    return [t for t in MACHINE_TYPES if t in present] + sorted(present - set(MACHINE_TYPES))


def type_average(table: pd.DataFrame, *, mean: str = "arithmetic") -> dict[str, float]:
    """The "Average" row of a per-type table: ``mean`` over the type rows of each of auc, pauc, mauc.

    Works on published tables too: ``type_average(published_results()["STgram-MFN"], mean="harmonic")``.
    """
    types = table[table["machine_type"] != AVERAGE]
    return {c: _mean(types[c], mean) for c in ("auc", "pauc", "mauc") if c in types.columns}


def on_types(table: pd.DataFrame, types, *, mean: str = "arithmetic") -> pd.DataFrame:
    """A per-type table restricted to ``types``, its "Average" row recomputed over them, so that a published
    six-type table can stand beside a run on fewer types: ``(T + 1 rows) -> (len(types) + 1 rows)``."""
    kept = table[table["machine_type"].isin(list(types))].reset_index(drop=True)
    return pd.concat([kept, pd.DataFrame([{"machine_type": AVERAGE, **type_average(kept, mean=mean)}])],
                     ignore_index=True)


def summary_table(per_id: pd.DataFrame, *, mean: str = "arithmetic") -> pd.DataFrame:
    """Per-type table (machine_type, auc, pauc, mauc) plus an "Average" row, from :func:`per_id_table`.

    auc/pauc: ``mean`` over the type's IDs; mauc: the minimum per-ID AUC; Average: ``mean`` over the types.
    ``"arithmetic"`` is the DCASE2020 rule and the seeds' READMEs; ``"harmonic"`` (the DCASE2021+ habit) uses the
    harmonic mean at both levels.
    """
    _require(per_id, ("machine_type", "auc", "pauc"))
    rows = []
    for machine_type in _type_order(per_id["machine_type"]):
        group = per_id[per_id["machine_type"] == machine_type]
        rows.append({"machine_type": machine_type, "auc": _mean(group["auc"], mean),
                     "pauc": _mean(group["pauc"], mean), "mauc": float(group["auc"].min())})
    table = pd.DataFrame(rows, columns=["machine_type", "auc", "pauc", "mauc"])
    average = pd.DataFrame([{"machine_type": AVERAGE, **type_average(table, mean=mean)}])
    return pd.concat([table, average], ignore_index=True)


def pooled_table(scores: pd.DataFrame, *, max_fpr: float = 0.1) -> pd.DataFrame:
    """Noisy-ArcMix ``eval.py``: one AUC/pAUC per type over all its IDs pooled; arithmetic "Average" row.

    Same input as :func:`per_id_table`; columns machine_type, auc, pauc (the pooled ROC has no mAUC).
    """
    _require(scores, ("machine_type", "label", "score"))
    rows = []
    for machine_type in _type_order(scores["machine_type"]):
        group = scores[scores["machine_type"] == machine_type]
        auc, pauc = auc_pauc(group["label"], group["score"], max_fpr=max_fpr, name=machine_type)
        rows.append({"machine_type": machine_type, "auc": auc, "pauc": pauc})
    table = pd.DataFrame(rows, columns=["machine_type", "auc", "pauc"])
    return pd.concat([table, pd.DataFrame([{"machine_type": AVERAGE, **type_average(table)}])], ignore_index=True)


# ------------------------------------------------------------------------------------ seeds
METRICS = ("auc", "pauc", "mauc")  # also the metrics of asdlib.evaluation.bootstrap


def seed_table(summaries: dict[str, list[pd.DataFrame]]) -> pd.DataFrame:
    """Mean ± sd over seeds of the "Average" row: ``{name: [summary_table per seed]} -> one row per name``
    with columns ``seeds``, ``auc``, ``auc_sd``, ``pauc``, ``pauc_sd``, ``mauc``, ``mauc_sd`` (sd NaN for one seed:
    a single run says nothing about the seed-to-seed spread, which is not the same as no spread)."""
    rows = []
    for name, tables in summaries.items():
        averages = pd.DataFrame([t.set_index("machine_type").loc[AVERAGE, list(METRICS)] for t in tables])
        row = {"run": name, "seeds": len(tables)}
        for metric in METRICS:
            row[metric] = float(averages[metric].mean())
            row[f"{metric}_sd"] = float(averages[metric].std(ddof=1)) if len(tables) > 1 else float("nan")
        rows.append(row)
    return pd.DataFrame(rows).set_index("run")


# ------------------------------------------------------------------------------------ text output
_HEADERS = {"machine_type": "machine", "machine_id": "ID", "auc": "AUC", "pauc": "pAUC", "mauc": "mAUC"}


def _cell(column: str, value, percent: bool) -> str:
    if column == "machine_type":
        return str(value)[:1].upper() + str(value)[1:]  # the READMEs write "Fan", "ToyCar"
    if column == "machine_id":
        return f"{_machine_id(value):02d}"
    return f"{100 * value:.2f}" if percent else f"{value:.4f}"


def to_markdown(table: pd.DataFrame, *, percent: bool = True) -> str:
    """A Markdown table in the seeds' README format (percentages with 2 decimals, bold "Average" row).

    Takes a per-type table (:func:`summary_table`, :func:`pooled_table`, published) or a per-ID table.
    """
    columns = [c for c in _HEADERS if c in table.columns]
    lines = ["| " + " | ".join(_HEADERS[c] for c in columns) + " |",
             "|" + "|".join(" --- " if c in ("machine_type", "machine_id") else " :---: " for c in columns) + "|"]
    for row in table[columns].itertuples(index=False):
        cells = [_cell(c, v, percent) for c, v in zip(columns, row)]
        if row[0] == AVERAGE:
            cells = [f"**{c}**" for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def format_result_csv(per_id: pd.DataFrame) -> str:
    """STgram-MFN's ``result.csv``: per type (sorted path order) a ``<machine>`` line, ``id,AUC,pAUC``, one row per
    ID (``00``), ``Average``; at the end ``Total Average`` (arithmetic means, fractions at full precision)."""
    averages = summary_table(per_id).set_index("machine_type")
    per_id = per_id.assign(machine_id=per_id["machine_id"].map(_machine_id)).sort_values("machine_id")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for machine_type, group in per_id.groupby("machine_type", sort=True):
        writer.writerow([machine_type])
        writer.writerow(["id", "AUC", "pAUC"])
        writer.writerows([f"{i:02d}", a, p] for i, a, p in zip(group["machine_id"], group["auc"], group["pauc"]))
        writer.writerow([AVERAGE, averages.at[machine_type, "auc"], averages.at[machine_type, "pauc"]])
    writer.writerow(["Total Average", averages.at[AVERAGE, "auc"], averages.at[AVERAGE, "pauc"]])
    return out.getvalue()


# ------------------------------------------------------------------------------------ score files
def score_file_name(machine_type: str, machine_id: int | str) -> str:
    """``("fan", 1) -> "anomaly_score_fan_id_01.csv"`` (the DCASE2020 submission name)."""
    return f"anomaly_score_{machine_type}_id_{_machine_id(machine_id):02d}.csv"


def write_score_files(scores: pd.DataFrame, out_dir: str | Path, *, overwrite: bool = False,
                      file_col: str = "path") -> list[Path]:
    """Write one ``anomaly_score_<machine_type>_id_XX.csv`` per ID: rows ``<file name>,<score>``, no header.

    ``scores`` has columns machine_type, machine_id, ``file_col`` (a path or file name; only the name is written)
    and score; rows are sorted by file name. Existing files with different content are refused unless ``overwrite=True``.
    """
    _require(scores, ("machine_type", "machine_id", file_col, "score"))
    out_dir = Path(out_dir)
    scores = scores.assign(machine_id=scores["machine_id"].map(_machine_id))
    texts: dict[Path, str] = {}
    for (machine_type, machine_id), group in scores.groupby(["machine_type", "machine_id"], sort=True):
        rows = sorted((Path(str(f)).name, float(s)) for f, s in zip(group[file_col], group["score"]))
        texts[out_dir / score_file_name(machine_type, machine_id)] = "".join(f"{f},{s!r}\n" for f, s in rows)
    clashes = [p.name for p, text in texts.items() if p.exists() and p.read_text() != text]
    if clashes and not overwrite:
        raise FileExistsError(f"{len(clashes)} score file(s) in {out_dir} differ from the new scores "
                              f"({', '.join(clashes[:3])}…); pass overwrite=True to replace them")
    out_dir.mkdir(parents=True, exist_ok=True)
    for path, text in texts.items():
        path.write_text(text)
    return sorted(texts)


def read_score_files(directory: str | Path) -> pd.DataFrame:
    """Read every ``anomaly_score_*_id_XX.csv`` of ``directory``: columns machine_type, machine_id, file, score."""
    frames = []
    for path in sorted(Path(directory).glob("anomaly_score_*_id_*.csv")):
        match = _SCORE_FILE.match(path.name)
        with path.open(newline="") as fh:
            rows = [r for r in csv.reader(fh) if r]
        frames.append(pd.DataFrame({"machine_type": match["type"], "machine_id": int(match["id"]),
                                    "file": [r[0] for r in rows], "score": [float(r[1]) for r in rows]}))
    if not frames:
        raise FileNotFoundError(f"no anomaly_score_<machine_type>_id_XX.csv files in {directory}")
    return pd.concat(frames, ignore_index=True)


# ------------------------------------------------------------------------------------ published numbers
_PUBLISHED_TYPES = {  # name: (source, rows of AUC, pAUC, mAUC in % in README order, then the Average row)
    "STgram-MFN": (
        "liuyoude/STgram-MFN README (May 2022); checkpoint chosen on the development test set",
        ((94.04, 88.97, 81.39), (91.94, 81.75, 83.48), (99.55, 97.61, 98.22), (99.64, 98.44, 98.83),
         (94.44, 87.68, 83.07), (74.57, 63.60, 64.16), (92.36, 86.34, 84.86))),
    "TASTgram-MFN + Noisy-ArcMix": (
        "soonhyeon/Noisy-ArcMix README (since Aug 2023)",
        ((98.32, 95.34, 92.67), (95.44, 85.99, 91.17), (99.53, 97.50, 97.96), (99.95, 99.74, 99.89),
         (96.76, 90.11, 88.81), (77.90, 67.15, 68.18), (94.65, 89.31, 89.78))),
    "STSASgram-MFN + Noisy-ArcMix": (
        "soonhyeon/Noisy-ArcMix README at 2e209a8 (Aug 2023); its Average AUC 94.74 disagrees with its rows (94.62)",
        ((97.08, 94.13, 91.20), (94.71, 86.67, 88.15), (99.45, 97.12, 97.85), (99.93, 99.66, 99.85),
         (96.37, 89.72, 88.54), (80.16, 66.71, 70.84), (94.74, 89.00, 89.41))),
}
_STGRAM_PER_ID = {  # STgram-MFN README result.csv block: (ID, AUC, pAUC)
    "ToyCar": ((1, 0.830719697, 0.652198679), (2, 0.951617251, 0.874308413), (3, 0.995218329, 0.981046957),
               (4, 0.99993531, 0.999659526)),
    "ToyConveyor": ((1, 0.869696875, 0.766776316), (2, 0.641580986, 0.547164566), (3, 0.725856264, 0.594070052)),
    "fan": ((0, 0.950638821, 0.894607526), (2, 0.996852368, 0.983433514), (4, 0.813936782, 0.681034483),
            (6, 0.999972299, 0.999854206)),
    "pump": ((0, 0.892342657, 0.744939271), (2, 0.83481982, 0.693219535), (4, 0.9999, 0.999473684),
             (6, 0.950490196, 0.832301342)),
    "slider": ((0, 1.0, 1.0), (2, 0.982209738, 0.906367041), (4, 0.99988764, 0.999408634),
               (6, 0.999775281, 0.998817268)),
    "valve": ((0, 1.0, 1.0), (2, 0.988333333, 0.952192982), (4, 1.0, 1.0), (6, 0.99725, 0.985526316)),
}


# The baseline's reference run on the DCASE2020 development set: its README's result.csv, (ID, AUC, pAUC).
_AE_BASELINE_PER_ID = {
    "ToyCar": ((1, 0.828474, 0.678514), (2, 0.866307, 0.762236), (3, 0.639396, 0.546659), (4, 0.869477, 0.701461)),
    "ToyConveyor": ((1, 0.793497, 0.650428), (2, 0.64243, 0.564437), (3, 0.744579, 0.60488)),
    "fan": ((0, 0.539607, 0.492435), (2, 0.721866, 0.554171), (4, 0.622098, 0.527072), (6, 0.72277, 0.529961)),
    "pump": ((0, 0.670769, 0.57269), (2, 0.609369, 0.58037), (4, 0.8886, 0.676842), (6, 0.734902, 0.570175)),
    "slider": ((0, 0.963315, 0.818451), (2, 0.78809, 0.628819), (4, 0.946011, 0.739503), (6, 0.702247, 0.490242)),
    "valve": ((0, 0.687311, 0.51349), (2, 0.674083, 0.512281), (4, 0.744, 0.515351), (6, 0.552833, 0.482895)),
}



def published_results() -> dict[str, pd.DataFrame]:
    """The published DCASE2020 development-set tables (fractions), each with ``attrs["caption"]``.

    Keys: ``"STgram-MFN"``, ``"STgram-MFN per ID"``, ``"TASTgram-MFN + Noisy-ArcMix"``,
    ``"STSASgram-MFN + Noisy-ArcMix"``, ``"DCASE2020 AE baseline"`` and ``"DCASE2020 AE baseline per ID"``. Per-type
    tables have :func:`summary_table`'s columns, the per-ID tables :func:`per_id_table`'s. The numbers are copied
    from the STgram-MFN and Noisy-ArcMix READMEs and the DCASE2020 baseline's README (``result.csv``).
    """
    tables = {}
    for name, (source, rows) in _PUBLISHED_TYPES.items():
        table = pd.DataFrame([(t, *(v / 100 for v in row)) for t, row in zip((*MACHINE_TYPES, AVERAGE), rows)],
                             columns=["machine_type", "auc", "pauc", "mauc"])
        table.attrs["caption"] = f"{name}, published on DCASE2020 (development set): {source}"
        tables[name] = table
    per_id = pd.DataFrame([(t, i, a, p) for t, rows in _STGRAM_PER_ID.items() for i, a, p in rows],
                          columns=["machine_type", "machine_id", "auc", "pauc"])
    per_id.attrs["caption"] = ("STgram-MFN per machine ID, published on DCASE2020 (development set): "
                               "liuyoude/STgram-MFN README result.csv block")
    tables["STgram-MFN per ID"] = per_id
    ae = pd.DataFrame([(t, i, a, p) for t, rows in _AE_BASELINE_PER_ID.items() for i, a, p in rows],
                      columns=["machine_type", "machine_id", "auc", "pauc"])
    ae.attrs["caption"] = ("DCASE2020 Task 2 autoencoder baseline per machine ID, published on DCASE2020 "
                           "(development set): dcase2020_task2_baseline README, result.csv")
    tables["DCASE2020 AE baseline per ID"] = ae
    tables["DCASE2020 AE baseline"] = summary_table(ae)
    tables["DCASE2020 AE baseline"].attrs["caption"] = ae.attrs["caption"].replace(" per machine ID", "")
    return tables

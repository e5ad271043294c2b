"""The replication study's reading (asdlib.teaching.study, plots.comparison, bench/replication_study.py) on
constructed score tables and histories with a known answer, through the real bootstrap and a real registry
folder (not the shipped study runs, whose numbers change as runs are added)."""
from __future__ import annotations

import json
import sys
import zlib
from dataclasses import replace
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")

from asdlib.data.synth import GENERATOR_VERSION  # noqa: E402
from asdlib.teaching import pretrained  # noqa: E402
from asdlib.teaching.plots.comparison import (plot_angle_gap_history, plot_differences,  # noqa: E402
                                             plot_factor_effects, plot_long_runs)
from asdlib.teaching.pretrained import ReferenceRun  # noqa: E402
from asdlib.teaching.study import (REFERENCE, changes_from_reference, factor_groups, factor_profiles,  # noqa: E402
                                   parse_run_name, profile_differences, run_profile, study_comparison,
                                   study_verdict)

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
import replication_study  # noqa: E402  (bench/ is not a package)

THREE = {"fan": (0, 2), "valve": (4,), "ToyConveyor": (1,)}
# per factor and loss: the anomalies' score shift of each seed (normal clips ~ N(0, 1))
SHIFTS = {REFERENCE: {"arcface": (1.0, 1.1, 0.9), "noisy_arcmix": (0.9, 1.0, 0.8)},
          "batch64": {"arcface": (0.5,), "noisy_arcmix": (3.0,)},  # Noisy-ArcMix separates far better
          "adamw": {"arcface": (1.0, 1.1), "noisy_arcmix": (0.9, 1.0)},  # as the reference
          "six_types": {"arcface": (1.0,), "noisy_arcmix": (0.9,)}}


def clips(shift: float, seed: int, types: dict = THREE, n: int = 25) -> pd.DataFrame:
    """A test set (``n`` normal and ``n`` anomalous clips per ID) scored with anomalies shifted by ``shift``."""
    rng, rows = np.random.default_rng(seed), []
    for machine_type, ids in types.items():
        for machine_id in ids:
            for label, mean in (("normal", 0.0), ("anomaly", shift)):
                rows += [{"file": f"{machine_type}/test/{label}_id_{machine_id:02d}_{k:08d}.wav",
                          "machine_type": machine_type, "machine_id": machine_id, "label": label,
                          "score": rng.normal(mean, 1.0)} for k in range(n)]
    return pd.DataFrame(rows)


def run_name(factor: str, loss: str, seed: int) -> str:
    return f"tastgram_mfn-{loss}-s{seed}" if factor == REFERENCE else f"tastgram_mfn-{loss}-{factor}-s{seed}"


def make_run(name: str, root: Path = Path("/nowhere"), files: dict | None = None, **info) -> ReferenceRun:
    model, loss, factor, seed = parse_run_name(name)
    return ReferenceRun(name=name, model=model, loss=loss, seed=seed, epochs=15, selected_epoch=15, auc=0.8,
                        pauc=0.7, mauc=0.7, path=root / name, dataset={}, files=files or {}, info=info,
                        study=factor != REFERENCE)


def scores_of() -> dict[str, pd.DataFrame]:
    """Every constructed run's score table by name (the six_types runs on six types)."""
    out = {}
    for factor, losses in SHIFTS.items():
        types = {**THREE, "pump": (0,), "slider": (0,), "ToyCar": (1,)} if factor == "six_types" else THREE
        for loss, shifts in losses.items():
            for seed, shift in enumerate(shifts):
                # the same test clips for every run of a factor; each run its own scores
                out[run_name(factor, loss, seed)] = clips(shift, zlib.crc32(run_name(factor, loss, seed).encode()), types)
    return out


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    scores = scores_of()
    runs = [make_run(name) for name in reversed(list(scores))]  # any order in, seeds sorted out
    return study_comparison(factor_groups(runs), lambda run: scores[run.name], n_boot=300, seed=0)


# ------------------------------------------------------------------------------------ names and groups
@pytest.mark.parametrize("name, expected", [
    ("tastgram_mfn-arcface-s0", ("tastgram_mfn", "arcface", REFERENCE, 0)),
    ("tastgram_mfn-noisy_arcmix-batch64-s0", ("tastgram_mfn", "noisy_arcmix", "batch64", 0)),
    ("tastgram_mfn-arcface-long60-s1", ("tastgram_mfn", "arcface", "long60", 1)),
    ("tastgram_mfn-noisy_arcmix-no_precise_bn-s12", ("tastgram_mfn", "noisy_arcmix", "no_precise_bn", 12))])
def test_parse_run_name(name, expected):
    assert parse_run_name(name) == expected


@pytest.mark.parametrize("name", ["tastgram_mfn-arcface", "tastgram_mfn-s0", "TASTgram-arcface-s0",
                                  "tastgram_mfn-arcface-long60-s", "tastgram_mfn-arcface-long-60-s0", ""])
def test_other_names_raise_a_clear_error(name):
    with pytest.raises(ValueError, match="expected <model>-<loss>-s<seed>"):
        parse_run_name(name)


def test_factor_groups_keeps_tastgram_runs_by_factor_and_loss_seeds_sorted():
    names = ["tastgram_mfn-arcface-long60-s1", "stgram_mfn-arcface-s0", "tastgram_mfn-noisy_arcmix-s2",
             "tastgram_mfn-arcface-s1", "tastgram_mfn-arcface-long60-s0", "tastgram_mfn-noisy_arcmix-s0",
             "tastgram_mfn-arcface-s0", "tastgram_mfn-arcmix-s0", "stgram_mfn-noisy_arcmix-long60-s0"]
    groups = factor_groups(make_run(n) for n in names)
    assert list(groups) == [REFERENCE, "long60"]
    assert {loss: [r.seed for r in runs] for loss, runs in groups[REFERENCE].items()} == \
        {"noisy_arcmix": [0, 2], "arcface": [0, 1], "arcmix": [0]}
    assert [r.name for r in groups["long60"]["arcface"]] == ["tastgram_mfn-arcface-long60-s0",
                                                            "tastgram_mfn-arcface-long60-s1"]
    assert groups["long60"]["arcface"][0].study and not groups[REFERENCE]["arcface"][0].study


def test_a_name_that_disagrees_with_its_entry_raises():
    run = make_run("tastgram_mfn-arcface-s0")
    wrong = replace(run, loss="noisy_arcmix")
    with pytest.raises(ValueError, match="its name says"):
        factor_groups([wrong])


# ------------------------------------------------------------------------------------ the factor table
def test_one_row_per_factor_and_metric_with_the_reference_change(table):
    assert set(zip(table.factor, table.metric)) == {(f, m) for f in SHIFTS for m in ("auc", "pauc")}
    assert len(table) == 2 * len(SHIFTS)
    ref = table[table.factor == REFERENCE].set_index("metric")
    for row in table.itertuples():
        assert row.change == pytest.approx(row.estimate - ref.loc[row.metric, "estimate"], abs=1e-12)
    assert (ref.change == 0).all() and ref.moves.isna().all() and ref.seed_aware.all()
    assert set(ref.interval) == {"seeds and clips"}


def test_a_factor_that_separates_better_moves_the_difference(table):
    rows = table[table.factor == "batch64"].set_index("metric")
    for metric in ("auc", "pauc"):
        row = rows.loc[metric]
        assert row.estimate > 0.2 and row.low > 0  # Noisy-ArcMix's anomalies far above its normal clips
        assert row.change > 0 and row.moves is True
        # one seed per loss: no seed interval, the clip interval decides
        assert not row.seed_aware and row.interval == "clips" and (row.seeds_a, row.seeds_b) == (1, 1)


def test_the_change_carries_both_differences_uncertainty(table):
    """The change's interval, paired on clips, holds the reference's uncertainty too: for a multi-seed factor
    it is wider than the factor's own interval; a factor on other test clips gets none, and no verdict."""
    adamw = table[table.factor == "adamw"].set_index("metric")
    for row in adamw.itertuples():
        assert row.change_seed_low <= row.change <= row.change_seed_high and row.change_seed_aware
        assert row.change_seed_high - row.change_seed_low > row.seed_high - row.seed_low
    six = table[table.factor == "six_types"]
    assert six.change_low.isna().all() and six.moves.isna().all()
    ref = table[table.factor == REFERENCE]
    assert (ref[["change_low", "change_high", "change_seed_low", "change_seed_high"]] == 0).all().all()


def test_a_factor_like_the_reference_does_not_move_it(table):
    rows = table[table.factor == "adamw"]
    assert rows.seed_aware.all() and set(rows.interval) == {"seeds and clips"}
    assert (rows.moves == False).all()  # noqa: E712
    assert (rows.seed_low <= rows.low).all() and (rows.seed_high >= rows.high).all()


def test_machine_types_are_recorded_per_factor(table):
    types = table.drop_duplicates("factor").set_index("factor").machine_types
    assert types[REFERENCE] == types["batch64"] == "ToyConveyor, fan, valve"
    assert types["six_types"] == "ToyCar, ToyConveyor, fan, pump, slider, valve"


def test_a_factor_with_one_loss_is_left_out_and_none_at_all_raises():
    scores = scores_of()
    runs = [make_run(n) for n in scores if "batch64" not in n or "arcface" in n]
    table = study_comparison(factor_groups(runs), lambda run: scores[run.name], n_boot=50)
    assert "batch64" not in set(table.factor)
    with pytest.raises(ValueError, match="both ArcFace and Noisy-ArcMix"):
        study_comparison(factor_groups([make_run("tastgram_mfn-arcface-s0")]), lambda run: None, n_boot=10)


# ------------------------------------------------------------------------------------ the verdict
def test_verdict_names_the_moving_factor_and_the_many_intervals(table):
    text = study_verdict(table)
    moving = [line for line in text.splitlines() if line.startswith("- Move it")]
    still = [line for line in text.splitlines() if line.startswith("- Do not move it")]
    single = [line for line in text.splitlines() if line.startswith("- No verdict, one seed a loss")]
    assert len(moving) == len(still) == len(single) == 2  # AUC and pAUC
    assert all(line.endswith(": none") for line in moving)  # batch64's clip interval excludes it, one seed
    assert all("adamw" in line and "batch64" not in line for line in still)
    assert all("batch64: " in line and "(the change's clip interval excludes 0)" in line
               and "six_types: " in line and "(on other test clips, so not paired with the reference)" in line
               and "adamw" not in line for line in single)
    assert "Few seeds: a bootstrap over n seeds spreads (n − 1)/n of their variance (1/2 with 2)" in text
    assert "- adamw: Noisy-ArcMix" in text and "the seeds overlap" in text
    assert "**AUC**" in text and "**pAUC**" in text
    assert "about one in twenty 95 % intervals misses by chance" in text
    # only judged changes count: adamw's, both metrics (batch64 has one seed, six_types no paired change)
    assert "These are 2 change intervals judged at once" in text and "about 0.1 of them" in text
    assert "six_types averages over other machine types" in text
    assert "batch64, six_types: a loss with one seed" in text


def test_verdict_without_reference_runs_says_it_cannot_judge(table):
    assert "No reference runs" in study_verdict(table[table.factor != REFERENCE])


# ------------------------------------------------------------------------------------ the paper's other half
def with_angles(scores: pd.DataFrame, spread: float, shift: float, seed: int = 0) -> pd.DataFrame:
    """Angles per clip: normal clips around 30° with sd ``spread``, anomalous ones ``shift`` degrees further."""
    rng = np.random.default_rng(seed)
    return scores.assign(angle=30 + rng.normal(0, spread, len(scores)) + shift * (scores.label == "anomaly"))


def test_run_profile_per_type_auc_compactness_separation_and_overfitting():
    table = clips(0.0, 1).copy()
    table.loc[(table.machine_type == "valve") & (table.label == "anomaly"), "score"] += 5.0  # valve: easy
    table = with_angles(table, spread=2.0, shift=4.0)
    row = run_profile(make_run("tastgram_mfn-arcface-batch64-s0"), table, history(0, peak=4))
    assert (row["factor"], row["loss"], row["seed"]) == ("batch64", "ArcFace", 0)
    assert row["auc valve"] > 0.99 and 0.35 < row["auc fan"] < 0.65 and row["auc fan"] < row["auc"]
    assert abs(row["normal IQR (°)"] - 1.349 * 2.0) < 0.8  # the IQR of a normal distribution: 1.349 sd
    assert 1.0 < row["separation"] < 3.0  # 4° shift over a spread of 2°
    assert row["overfits"] and row["epochs"] == 12 and row["auc_drop"] > 0


def test_profile_differences_are_noisy_arcmix_minus_arcface_per_factor():
    scores = {name: with_angles(table, spread=1.0 if "noisy_arcmix" in name else 3.0, shift=3.0,
                                seed=zlib.crc32(name.encode()))
              for name, table in scores_of().items()}
    runs = [make_run(name) for name in scores]
    profiles = factor_profiles(factor_groups(runs), lambda run: scores[run.name])
    assert len(profiles) == len(runs) and "overfits" not in profiles  # no histories given
    diff = profile_differences(profiles)
    assert list(diff.index) == [REFERENCE, "adamw", "batch64", "six_types"]
    assert diff.at["batch64", "auc"] > 0.2 and abs(diff.at["adamw", "auc"]) < 0.1
    assert (diff["normal IQR (°)"] < 0).all()  # Noisy-ArcMix's clusters constructed tighter
    assert diff.at["reference", "seeds"] == "3 + 3" and diff.at["batch64", "seeds"] == "1 + 1"
    assert np.isnan(diff.at["reference", "auc pump"]) and np.isfinite(diff.at["six_types", "auc pump"])


# ------------------------------------------------------------------------------------ figures
def history(seed: int, epochs: int = 12, peak: int = 7) -> pd.DataFrame:
    """A long run's history: test AUC rising to a peak at epoch ``peak`` then falling; accuracies rising."""
    epoch = np.arange(1, epochs + 1)
    return pd.DataFrame({"epoch": epoch, "loss": 1 / epoch, "acc": 1 - 0.5 / epoch, "val_loss": 1.2 / epoch,
                         "val_acc": 0.9 - 0.4 / epoch, "test_pauc": 0.6 + 0 * epoch,
                         "test_auc": 0.85 - 0.002 * (epoch - peak) ** 2 + 0.001 * seed})


def test_plot_long_runs_draws_each_seed_the_mean_and_the_peak():
    fig = plot_long_runs({"ArcFace": [history(0), history(2)], "Noisy-ArcMix": [history(s, peak=4) for s in range(3)]})
    auc, acc = fig.axes
    assert len(fig.axes) == 2
    curves = [line for line in auc.lines if line.get_linestyle() == "-"]
    thin = [line for line in curves if line.get_linewidth() < 1]
    assert len(thin) == 5 and len(curves) == 5 + 2  # one line per seed, one mean per loss
    assert {line.get_color() for line in auc.lines} == {"#009E73", "#CC79A7"}  # LOSS_COLORS
    peaks = sorted(line.get_xdata()[0] for line in auc.lines if line.get_linestyle() == ":")
    assert peaks == [4, 7]
    # the thick line is the mean smoothed over 3 epochs: a quadratic peak keeps its epoch and loses 2/3 of 0.2 points
    assert sorted(t.get_text().strip() for t in auc.texts) == ["peak 85.0 % (epoch 4)", "peak 85.0 % (epoch 7)"]
    assert [t.get_ha() for t in auc.texts] == ["right", "left"]  # inside the axes: 7 of 12 is right of centre
    legend = [text.get_text() for text in auc.get_legend().get_texts()]
    assert any("Noisy-ArcMix (mean of 3 seeds, smoothed)" in text for text in legend)
    kept = [line for line in auc.lines if line.get_marker() == "v"]  # each seed's lowest validation loss
    assert [list(line.get_xdata()) for line in kept] == [[12, 12], [12, 12, 12]]
    assert "Noisy-ArcMix: kept checkpoint (lowest validation loss)" in legend
    assert "Noisy-ArcMix, training (mixed clips)" in [text.get_text() for text in acc.get_legend().get_texts()]
    assert len(acc.lines) == 4  # held-out and training accuracy per loss
    matplotlib.pyplot.close(fig)


def test_changes_from_reference_are_the_paired_changes_without_the_reference(table):
    changes = changes_from_reference(table)
    assert set(changes.factor) == {"batch64", "adamw"}  # no reference, no six_types (other test clips)
    row = changes.set_index(["factor", "metric"]).loc[("adamw", "auc")]
    source = table.set_index(["factor", "metric"]).loc[("adamw", "auc")]
    assert (row.estimate, row.low, row.high, row.seed_low, row.seed_high) == (
        source.change, source.change_low, source.change_high, source.change_seed_low, source.change_seed_high)
    assert bool(row.seed_aware) and not changes.set_index(["factor", "metric"]).loc[("batch64", "auc"), "seed_aware"]


def test_plot_factor_effects_differences_on_top_changes_below(table):
    fig = plot_factor_effects(table)
    assert len(fig.axes) == 4  # two metrics, two rows

    def dots(ax, rows: pd.DataFrame) -> dict:
        marks = [line for line in ax.lines if line.get_marker() in ("o", "s")]
        assert len(marks) == len(rows)
        return {f: (m.get_marker(), m.get_markerfacecolor() != "w") for f, m in zip(rows.factor, marks)}

    auc = table[table.metric == "auc"].reset_index(drop=True)
    top, bottom = fig.axes[0], fig.axes[2]
    assert sorted(t.get_text() for t in top.get_yticklabels()) == sorted(SHIFTS)
    assert sorted(t.get_text() for t in bottom.get_yticklabels()) == ["adamw", "batch64"]
    # top: a difference is filled where its own interval over seeds and clips excludes 0 (the reference's
    # contains it: hollow, until its upper end is moved below 0); one seed is a square, never filled
    reference = auc.set_index("factor").loc[REFERENCE]
    assert reference.seed_low < 0 < reference.seed_high
    assert dots(top, auc)[REFERENCE] == ("o", False) and dots(top, auc)["batch64"] == ("s", False)
    sure = table.assign(seed_high=[-0.001 if f == REFERENCE else h for f, h in zip(table.factor, table.seed_high)])
    assert dots(plot_factor_effects(sure).axes[0], auc)[REFERENCE] == ("o", True)
    # bottom: filled where the factor moves the difference; none does with several seeds here (batch64, which
    # moves over clips, has one seed a loss: a square, no verdict)
    changes = changes_from_reference(table)
    below = changes[changes.metric == "auc"]
    assert dots(bottom, below) == {"batch64": ("s", False), "adamw": ("o", False)}
    assert table.set_index(["factor", "metric"]).loc[("batch64", "auc"), "moves"] is True
    moving = table.assign(moves=[True if f == "adamw" else m for f, m in zip(table.factor, table.moves)])
    assert dots(plot_factor_effects(moving).axes[2], below)["adamw"] == ("o", True)
    assert "moves the difference" in bottom.get_title() and "change from the reference" in bottom.get_title()
    assert "not drawn: six_types (other test clips)" in bottom.get_title()
    # the change's interval is the one drawn below: adamw's black line spans change_low..change_high
    row = below.set_index("factor").loc["adamw"]
    spans = [sorted(line.get_xdata()) for line in bottom.lines if line.get_linewidth() == 1.5]
    assert any(np.allclose(x, [100 * row.low, 100 * row.high]) for x in spans)
    matplotlib.pyplot.close("all")


# ------------------------------------------------------------------------------------ bench/replication_study.py
def ship_registry(root: Path, scores: dict[str, pd.DataFrame], histories: dict[str, pd.DataFrame] | None = None) -> None:
    """A real registry folder: each run's scores.csv (and history.csv where given) with its sha256, entries as
    ``reproduce.ship`` writes them."""
    dataset = {"generator_version": GENERATOR_VERSION, "size": "default", "seed": 0, "seconds": 2.0, "sr": 16000,
               "n_test_normal": 25, "n_test_anomaly": 25, "difficulty": 1.0, "machine_types": list(THREE)}
    runs = {}
    for name, frame in scores.items():
        (root / name).mkdir(parents=True)
        frame.to_csv(root / name / "scores.csv", index=False)
        if name in (histories or {}):
            histories[name].to_csv(root / name / "history.csv", index=False)
        files = {f: {"sha256": pretrained.sha256(root / name / f), "bytes": (root / name / f).stat().st_size}
                 for f in ("scores.csv", "history.csv") if (root / name / f).is_file()}
        model, loss, factor, seed = parse_run_name(name)
        runs[name] = {"model": model, "loss": loss, "seed": seed, "epochs": 15, "selected_epoch": 14, "auc": 0.8,
                      "pauc": 0.7, "mauc": 0.7, "train_minutes": 15.3, "trained_on": "x86_64 CPU, 2 thread(s)",
                      "files": files,
                      **({"study": True} if factor != REFERENCE else {})}
    (root / "registry.json").write_text(json.dumps({"dataset": dataset, "runs": runs}))


def test_bench_exits_2_and_writes_nothing_without_study_runs(tmp_path, capsys):
    ship_registry(tmp_path / "runs", {n: f for n, f in scores_of().items() if parse_run_name(n)[2] == REFERENCE})
    out = tmp_path / "replication_study.md"
    assert replication_study.main(["--root", str(tmp_path / "runs"), "--out", str(out), "--n-boot", "20"]) == 2
    assert not out.exists() and "no study run is shipped" in capsys.readouterr().err


def test_bench_writes_the_runs_the_factor_table_and_the_verdict(tmp_path):
    scores = {n: f for n, f in scores_of().items() if "six_types" not in n}
    overfit = pd.DataFrame({"epoch": [1, 2, 3], "loss": [2.0, 0.5, 0.012], "val_loss": [3.0, 2.5, 2.75],
                            "acc": [0.5, 0.9, 1.0], "val_acc": [0.6, 0.93, 0.94]})
    ship_registry(tmp_path / "runs", scores, {"tastgram_mfn-arcface-batch64-s0": overfit})
    out = tmp_path / "replication_study.md"
    assert replication_study.main(["--root", str(tmp_path / "runs"), "--out", str(out), "--n-boot", "100"]) == 0
    text = out.read_text()
    row = next(line for line in text.splitlines() if line.startswith("| tastgram_mfn-arcface-batch64-s0 |"))
    assert "| 0.012 | 2.50 | 93.0 |" in row  # last training loss; held-out loss and accuracy at the lowest one
    assert "| ? | ? | ? |" in next(line for line in text.splitlines()
                                   if line.startswith("| tastgram_mfn-noisy_arcmix-batch64-s0 |"))  # no history
    for name in scores:
        assert f"| {name} |" in text
    assert "| study run | batch64 | Noisy-ArcMix | 0 | 15 | 14 |" in text and "| 15.3 | x86_64 CPU" in text
    factor_lines = [line for line in text.splitlines() if line.startswith("| batch64 | AUC |")]
    assert len(factor_lines) == 1 and "(one seed)" in factor_lines[0]
    assert "| no verdict (clips: yes) |" in factor_lines[0]  # one seed: the clip interval excludes it, no verdict
    assert "## Verdict" in text and "- No verdict, one seed a loss (a second seed is needed): batch64" in text


def test_the_grey_interval_is_named_only_where_one_is_drawn(table):
    one_seed = table[~table.seed_aware.astype(bool)].assign(comparison=lambda t: t.factor)
    ax = plot_differences(one_seed)
    assert "grey" not in ax.get_xlabel() and not [line for line in ax.lines if line.get_linewidth() == 5]
    ax = plot_differences(table.assign(comparison=table.factor))
    assert "grey: over seeds and clips" in ax.get_xlabel()
    matplotlib.pyplot.close("all")


def test_factor_changes_names_every_changed_field_but_the_seed():
    from dataclasses import replace

    from asdlib.teaching.study import factor_changes
    from asdlib.training.config import RunConfig

    ref = RunConfig.from_yaml(Path(__file__).parents[1] / "configs" / "reference" / "tastgram_mfn-arcface-s0.yaml")
    assert factor_changes(replace(ref, train=replace(ref.train, seed=3)), ref) == "nothing"
    longer = replace(ref, train=replace(ref.train, epochs=60, t_max=60, seed=1))
    assert factor_changes(longer, ref) == "train.epochs 15 → 60, train.t_max 15 → 60"
    six = replace(ref, data=replace(ref.data, machine_types=("fan", "pump")))
    assert factor_changes(six, ref) == "data.machine_types 3 (fan, valve, ToyConveyor) → 2 (fan, pump)"
    scarce = replace(ref, data=replace(ref.data, train_clips_per_id=30))
    assert factor_changes(scarce, ref) == "data.train_clips_per_id all → 30"  # 0 keeps every clip: not "0 → 30"


def test_untested_rows_are_the_differing_recipe_rows_no_shipped_factor_moves():
    from asdlib.teaching.replication import recipe_table
    from asdlib.teaching.study import RECIPE_ROWS, untested_rows
    from asdlib.training.config import RunConfig

    ref = RunConfig.from_yaml(Path(__file__).parents[1] / "configs" / "reference" / "tastgram_mfn-arcface-s0.yaml")
    recipe = recipe_table(ref, "procedural (default)")
    assert {row for rows in RECIPE_ROWS.values() for row in rows} <= set(recipe.index)  # real rows only
    differing = [row for row in recipe.index if recipe.at[row, "differs"] == "yes"]
    left = untested_rows(differing, ["long60", "clips30", "batch64"])
    assert "epochs" not in left and "schedule" not in left and "batch" not in left
    assert "data" in left and "clip" in left and "optimiser, learning rate" in left
    assert "optimiser, learning rate" not in untested_rows(differing, ["adamw"])
    assert untested_rows(differing, []) == differing


def test_angle_gap_history_keys_line_styles_and_losses():
    history = pd.DataFrame({"epoch": [1, 2, 3], "angle_normal": [40.0, 35.0, 33.0], "angle_anomaly": [45.0, 44.0, 43.0]})
    fig = plot_angle_gap_history({"ArcFace": [history, history + 1], "Noisy-ArcMix": [history]})
    left, right = fig.axes
    assert [t.get_text() for t in left.get_legend().get_texts()] == ["normal clips", "anomalous clips"]
    assert [t.get_text() for t in right.get_legend().get_texts()] == ["ArcFace", "Noisy-ArcMix"]  # once a loss
    assert len(left.lines) == 6 and len(right.lines) == 3  # one line per seed (and per clip kind on the left)
    np.testing.assert_allclose(right.lines[0].get_ydata(), [5.0, 9.0, 10.0])

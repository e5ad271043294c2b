"""The replication study: which factor of the authors' recipe moves Noisy-ArcMix − ArcFace on TASTgram-MFN.

    python bench/replication_study.py                 # writes bench/results/replication_study.md
    python bench/replication_study.py --n-boot 2000 --root asdlib/reference_runs

Reads the shipped registry (``asdlib/reference_runs``): every study run (``configs/study/``, one factor of the
reference recipe set to the authors' value) and the TASTgram-MFN reference runs, and writes the runs, the factor
table (:func:`asdlib.teaching.study.study_comparison`: the difference per factor with its interval over test clips
and, where both losses have two seeds or more, over seeds and clips) and the computed verdict. Without a shipped
study run it says so and exits with status 2, writing nothing.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout, installed or not

from asdlib.teaching import pretrained  # noqa: E402
from asdlib.teaching.replication import METRIC_NAMES  # noqa: E402
from asdlib.teaching.study import (LOSS_LABELS, REFERENCE, factor_changes, factor_groups,  # noqa: E402
                                  study_comparison, study_verdict)

OUT = REPO / "bench" / "results" / "replication_study.md"
NO_STUDY_RUNS = 2  # exit status when the registry holds no study run


def markdown(table: pd.DataFrame) -> str:
    """A plain Markdown table of already formatted cells (no tabulate dependency)."""
    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def run_table(groups: dict, root: Path | None = None) -> pd.DataFrame:
    """One row per compared run (reference first, then the factors): what it is, how it was trained, and how
    closely it fits its training clips against held-out ones (:func:`fit_columns`)."""
    rows = []
    for factor, losses in groups.items():
        for loss, runs in losses.items():
            if loss not in LOSS_LABELS:
                continue
            rows += [{"run": r.name, "kind": r.kind, "factor": factor, "loss": LOSS_LABELS[loss], "seed": r.seed,
                      "epochs": r.epochs, "selected epoch": r.selected_epoch,
                      "AUC (%)": f"{100 * r.auc:.2f}", "pAUC (%)": f"{100 * r.pauc:.2f}", **fit_columns(r, root),
                      "train minutes": _minutes(r.info.get("train_minutes")),
                      "trained on": r.info.get("trained_on", "?")} for r in runs]
    return pd.DataFrame(rows)


FIT_COLUMNS = ("training loss, last epoch", "held-out loss, selected", "held-out acc. (%), selected")


def fit_columns(run, root: Path | None = None) -> dict[str, str]:
    """The overfitting diagnostic from the run's ``history.csv``: its training loss at the last epoch (on mixed
    clips for a mixup loss, so compare it within a loss), and the clean held-out loss and accuracy at the selected
    epoch. ``"?"`` where the run ships no history."""
    try:
        h = pretrained.load_history(run.name, root=root)
    except pretrained.ReferenceRunError:
        return dict.fromkeys(FIT_COLUMNS, "?")
    kept = h.loc[h.val_loss.idxmin()]  # the selected epoch: lowest validation loss
    return dict(zip(FIT_COLUMNS, (f"{h.loss.iloc[-1]:.3f}", f"{kept.val_loss:.2f}", f"{100 * kept.val_acc:.1f}")))


def changes_table(groups: dict, root: Path | None) -> pd.DataFrame:
    """One row per factor: what its runs change from the reference runs' config, read from both configs."""
    rows = []
    for factor, losses in groups.items():
        if factor == REFERENCE:
            continue
        loss, runs = next(iter(losses.items()))
        reference = groups.get(REFERENCE, {}).get(loss)
        if reference:
            try:
                changed = factor_changes(pretrained.load_config(runs[0].name, root=root),
                                         pretrained.load_config(reference[0].name, root=root))
            except pretrained.ReferenceRunError as err:  # a registry without configs
                changed = f"(not read: {err})"
            rows.append({"factor": factor, "changes from the reference config": changed})
    return pd.DataFrame(rows)


def _minutes(value) -> str:
    return "?" if value is None else f"{value:.1f}"


def _span(low: float, high: float) -> str:
    return f"[{100 * low:+.2f}, {100 * high:+.2f}]"


def factor_rows(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`study_comparison`'s table formatted for Markdown (percentage points)."""
    return pd.DataFrame({
        "factor": table.factor, "metric": [METRIC_NAMES.get(m, m) for m in table.metric],
        "Noisy-ArcMix − ArcFace": [f"{100 * v:+.2f}" for v in table.estimate],
        "over clips": [_span(r.low, r.high) for r in table.itertuples()],
        "over seeds and clips": [_span(r.seed_low, r.seed_high) if r.seed_aware else "(one seed)"
                                 for r in table.itertuples()],
        "seeds": [f"{r.seeds_a} / {r.seeds_b}" for r in table.itertuples()],
        "change vs reference": ["" if r.factor == REFERENCE else f"{100 * r.change:+.2f}"
                                for r in table.itertuples()],
        "change's interval": ["" if r.factor == REFERENCE or pd.isna(r.change_low) else
                              _span(r.change_seed_low, r.change_seed_high) + " (seeds and clips)"
                              if r.change_seed_aware else _span(r.change_low, r.change_high) + " (clips)"
                              for r in table.itertuples()],
        "moves": ["" if r.factor == REFERENCE else "no verdict (other test clips)" if r.moves is None
                  else ("yes" if r.moves else "no") if r.change_seed_aware
                  else f"no verdict (clips: {'yes' if r.moves else 'no'})" for r in table.itertuples()],
        "machine types": table.machine_types})


def unpaired(groups: dict) -> list[str]:
    """The factors that lack one of the two losses (not compared)."""
    return [f for f, losses in groups.items() if not all(loss in losses for loss in LOSS_LABELS)]


def report(groups: dict, table: pd.DataFrame, n_boot: int, changes: pd.DataFrame | None = None,
           root: Path | None = None) -> str:
    """The whole of ``replication_study.md``."""
    missing = unpaired(groups)
    lines = ["# Replication study: which factor moves Noisy-ArcMix − ArcFace (TASTgram-MFN)", "",
             "Generated by `python bench/replication_study.py` from the shipped registry (`asdlib/reference_runs/`): "
             "each study run (`configs/study/`) changes one thing of the reference recipe: a factor toward the "
             "authors' recipe (Choi & Choi, ICASSP 2024), or fewer training clips per ID (a scarcity test); the "
             "table of factors reads which from the configs. Within each factor both losses train on the same data. "
             "Differences in "
             f"percentage points; 95 % bootstrap intervals ({n_boot} replicates): over test clips (paired, "
             "ID-stratified), and over seeds and clips where both losses have two seeds or more. *change*: the "
             "factor's difference minus the reference runs' one, with its interval (both differences' "
             "uncertainty, paired on the test clips, seeds redrawn independently). *moves*: the change's interval "
             "over seeds and clips excludes 0; with one seed a loss there is no such interval, so *no verdict*, "
             "with in brackets whether the change's interval over clips excludes 0.", "",
             "## The runs", "", "The fit columns are the overfitting diagnostic: a run that fits its training clips "
             "(training loss near 0) but loses held-out clips (held-out loss up, accuracy down, against the "
             "reference runs of its loss) overfits.", "", markdown(run_table(groups, root)), ""]
    if changes is not None and len(changes):
        lines += ["## The factors", "", markdown(changes), ""]
    lines += [
             "## Noisy-ArcMix − ArcFace per factor", "", markdown(factor_rows(table)), ""]
    if missing:
        lines += [f"Not compared (one loss only): {', '.join(missing)}.", ""]
    return "\n".join(lines + ["## Verdict", "", study_verdict(table)])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", type=Path, default=None, help="registry folder (default: asdlib/reference_runs)")
    p.add_argument("--n-boot", type=int, default=2000, help="bootstrap replicates (default 2000)")
    p.add_argument("--out", type=Path, default=OUT, help=f"Markdown file to write (default {OUT.relative_to(REPO)})")
    args = p.parse_args(argv)
    runs = pretrained.registry(args.root)
    if not any(r.study for r in runs.values()):
        print(f"no study run is shipped in {args.root or pretrained.REFERENCE_DIR} yet: train and ship them "
              "(configs/study/, python -m asdlib pretrained train NAME), then run this again; nothing written",
              file=sys.stderr)
        return NO_STUDY_RUNS
    groups = factor_groups(runs.values())
    table = study_comparison(groups, lambda run: pretrained.load_scores(run.name, root=args.root),
                             n_boot=args.n_boot)
    args.out.write_text(report(groups, table, args.n_boot, changes_table(groups, args.root), args.root))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

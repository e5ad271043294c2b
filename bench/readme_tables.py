"""The README's tables of shipped runs, from the registry (``asdlib/reference_runs``), as Markdown.

    python bench/readme_tables.py [--root asdlib/reference_runs]

Prints one table of the reference runs and one of the study runs: epochs, selected epoch, AUC/pAUC/mAUC (the
DCASE averages over the run's machine types), the plateau of the validation loss over the last fifth, the test
AUC over the last fifth (information only), the training minutes and whether the checkpoint ships. Paste them
into README.md's "Reference runs" section.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from common import REPO  # noqa: F401  (puts the checkout on sys.path)

from asdlib.teaching import pretrained

HEADER = ("| run | types | epochs | selected | AUC % | pAUC % | mAUC % | val. loss, last fifth (mean) vs min "
          "| test AUC %, last fifth | minutes | checkpoint |\n|---|---|---|---|---|---|---|---|---|---|---|")


def row(run: pretrained.ReferenceRun, root: Path | None) -> str:
    """One table row of ``run``."""
    h = pretrained.load_history(run.name, root=root)
    fifth = max(1, round(0.2 * len(h)))
    auc = 100 * h.test_auc.iloc[-fifth:]
    types = len(pretrained.load_config(run.name, root=root).data.machine_types)
    minutes = run.info.get("train_minutes")
    return (f"| `{run.name}` | {types} | {run.epochs} | {run.selected_epoch} | {100 * run.auc:.1f} | "
            f"{100 * run.pauc:.1f} | {100 * run.mauc:.1f} | {100 * run.info['plateau_gap']:.0f} % | "
            f"{auc.min():.1f}–{auc.max():.1f} | {'?' if minutes is None else round(minutes)} | "
            f"{'yes' if run.has_checkpoint else '–'} |")


def tables(root: Path | None = None) -> str:
    out = []
    for study, title in ((False, "Reference runs"), (True, "Study runs")):
        runs = pretrained.registry(root, study=study)
        if runs:
            out += [f"{title}:", "", HEADER, *(row(r, root) for r in runs.values()), ""]
    return "\n".join(out)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", type=Path, default=None)
    print(tables(p.parse_args().root))

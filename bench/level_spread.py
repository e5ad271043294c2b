"""How much the level (RMS, dBFS) of real DCASE2020 clips varies, normal against anomalous, per machine type.

The procedural generator sets every clip's level from a per-type mean and spread
(``asdlib.data.synth.LEVEL_DBFS``) before the fault sound is added, so on procedural data a clip's level says
little about its label. On the real recordings the question is empirical. This script reads the real test
clips in ``../shared/real_samples/dcase2020_dev/<type>/test`` (read here only; never copied) and reports, per
type and label, the number of clips, the median level, the standard deviation of the level across the clips of
each machine ID (then averaged over IDs, so that level differences between machines do not count) and over all
clips of the type. Writes ``bench/results/level_spread.md`` and prints the table.

    python bench/level_spread.py [--shared ../shared] [--no-save]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pandas as pd
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout, installed or not

from asdlib.data.dcase import MACHINE_TYPES, parse_clip_name  # noqa: E402
from asdlib.data.synth import LEVEL_DBFS  # noqa: E402
from asdlib.evaluation.baseline import rms_dbfs  # noqa: E402


def clip_levels(real_dir: Path) -> pd.DataFrame:
    """One row per real clip: machine_type, machine_id, label, dbfs (RMS level) and duration (s)."""
    rows = []
    for machine_type in MACHINE_TYPES:
        for path in sorted((real_dir / machine_type / "test").glob("*.wav")):
            wave, sr = sf.read(path, dtype="float32")
            info = parse_clip_name(path.name)
            rows.append(dict(machine_type=machine_type, machine_id=info.machine_id, label=info.label,
                             dbfs=rms_dbfs(wave), seconds=len(wave) / sr))
    return pd.DataFrame(rows)


def spread_table(levels: pd.DataFrame) -> pd.DataFrame:
    """Per type and label: clips, median level, sd within machine ID (mean over IDs), sd overall."""
    within = (levels.groupby(["machine_type", "label", "machine_id"]).dbfs.std(ddof=1)
              .groupby(["machine_type", "label"]).mean())
    table = levels.groupby(["machine_type", "label"]).dbfs.agg(clips="count", median="median",
                                                                 sd_overall="std")
    table["sd_within_id"] = within
    table = table.reindex(MACHINE_TYPES, level=0)
    table["generator sd"] = [LEVEL_DBFS[t][1] for t, _ in table.index]
    return table[["clips", "median", "sd_within_id", "sd_overall", "generator sd"]]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shared", default=os.environ.get("ASD_SHARED", str(REPO.parent / "shared")))
    p.add_argument("--no-save", action="store_true", help="print the table only, do not write the report")
    args = p.parse_args()
    real_dir = Path(args.shared) / "real_samples" / "dcase2020_dev"
    if not real_dir.is_dir():
        raise SystemExit(f"{real_dir} not found: pass --shared or set ASD_SHARED")
    levels = clip_levels(real_dir)
    table = spread_table(levels).round(2)
    ratio = {col: table.xs("anomaly", level="label")[col] / table.xs("normal", level="label")[col]
             for col in ("sd_within_id", "sd_overall")}
    text = ("# Level spread of real DCASE2020 clips, normal vs anomalous\n\n"
            f"`python bench/level_spread.py`: {len(levels)} real development test clips "
            f"({levels.groupby(['machine_type', 'machine_id', 'label']).ngroups} machine ID × label groups, "
            "2–3 clips each), RMS level in dBFS. `sd_within_id`: the standard deviation of the level "
            "across the clips of one machine ID and label, averaged over IDs; `sd_overall`: across all clips "
            "of the type and label; `generator sd`: the spread `asdlib.data.synth` draws every procedural "
            "clip's level from (normal and anomalous alike).\n\n"
            + table.reset_index().to_markdown(index=False) + "\n\n"
            + "".join(f"Anomalous / normal `{col}`: "
                      + ", ".join(f"{t} {r:.1f}×" for t, r in rat.items()) + ".\n"
                      for col, rat in ratio.items()) + "\n"
            "With 2–3 clips per group every sd here is a rough estimate (one clip more can change it by "
            "half); read the pattern across types, not single values.\n")
    print(text)
    if not args.no_save:
        out = REPO / "bench" / "results" / "level_spread.md"
        out.write_text(text)
        print(f"wrote {out}")


if __name__ == "__main__":
    main()

"""Calibrate the procedural generator's anomalies against the published per-type results (generator version 3).

Every detector of the series learns from normal clips only, and the generator's normal clips do not depend on
how faults are drawn. So each method is trained once on the default dataset's normal clips, and a *pool* of
anomalous clips of every kind, of both fault families (ID-coupled faults of ``asdlib.data.machines`` and the
ID-independent ``asdlib.data.faults.COMMON_FAULTS``) and of strengths spread over U(0.1, 2.6) is scored with each
of them. AUC is linear in the mixture of anomalous clips, so the AUC of any setting (per type: strength scale,
share of ID-independent faults) follows from the pool's scores without generating or training again.

    python bench/synth_calibration.py pool   [--pool data/bench/calibration_pool] [--per-kind 20]
    python bench/synth_calibration.py score  --method gaussian|ae|network [--ae DIR] [--run DIR]
    python bench/synth_calibration.py table  (AUC of each type at every strength scale and fault family)

``pool`` hard-links the default dataset's training and normal test clips (``data/synth/default``) beside the new
anomalous ones, so the pool is an ordinary dataset folder for :func:`asdlib.data.index.index_dataset`.
"""
from __future__ import annotations

import argparse
import os
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
from common import REPO  # noqa: F401  (puts the checkout on sys.path)

from asdlib.data.dcase import DEV_IDS, MACHINE_TYPES, clip_name
from asdlib.data.faults import COMMON_FAULTS
from asdlib.data.machines import ANOMALIES
from asdlib.data.synth import SR, clip_rng, render_clip

POOL = REPO / "data" / "bench" / "calibration_pool"
STRENGTHS = (0.1, 2.6)  # pool strengths U(lo, hi); a setting with scale S uses the clips in [0.25 S, S]


def pool_kinds(machine_type: str) -> list[tuple[str, str]]:
    """``[(family, kind), ...]``: the type's ID-coupled kinds, then the ID-independent ones."""
    return [("id", k) for k in ANOMALIES[machine_type]] + [("common", k) for k in COMMON_FAULTS]


def make_pool(pool: Path, source: Path, per_kind: int, seconds: float) -> pd.DataFrame:
    """Write ``per_kind`` anomalous clips per (development ID, kind) and link the source's normal clips."""
    import soundfile as sf
    from tqdm.auto import tqdm

    rows = []
    for t in MACHINE_TYPES:
        for split in ("train", "test"):
            (pool / t / split).mkdir(parents=True, exist_ok=True)
            for src in (source / t / split).glob("normal_*.wav"):
                dst = pool / t / split / src.name
                if not dst.exists():
                    os.link(src, dst)
        jobs = [(i, family, kind, n) for i in DEV_IDS[t] for family, kind in pool_kinds(t) for n in range(per_kind)]
        for number, (i, family, kind, n) in enumerate(tqdm(jobs, desc=f"pool {t}", leave=False)):
            rng = clip_rng(0, t, i, 2, zlib.crc32(kind.encode()), n)  # split key 2: not a clip of any dataset
            strength = float(rng.uniform(*STRENGTHS))
            wave, info = render_clip(t, i, label="anomaly", seconds=seconds, sr=SR, rng=rng, kind=kind,
                                     strength=strength, anomaly_levels=True)
            name = clip_name("anomaly", i, number)
            sf.write(pool / t / "test" / name, wave, SR, subtype="PCM_16")
            rows.append(dict(file=f"{t}/test/{name}", machine_type=t, machine_id=i, family=family, kind=kind,
                             strength=strength))
    table = pd.DataFrame(rows)
    table.to_csv(pool / "pool.csv", index=False)
    return table


def score(pool: Path, method: str, *, ae: Path | None, run: Path | None, checkpoint: str = "best.pt") -> pd.DataFrame:
    """Scores of every labelled test clip of the pool with one method: the index columns plus ``score``."""
    from asdlib.data.index import index_dataset

    index = index_dataset(pool)
    if method == "gaussian":
        from asdlib.evaluation.baseline import baseline_scores
        return baseline_scores(index, progress=True)
    if method == "ae":
        from asdlib.evaluation.autoencoder import autoencoder_scores
        return autoencoder_scores(index, ae, progress=True)
    from asdlib.teaching.regimes import network_scorer
    from asdlib.training.checkpoints import load_model
    from asdlib.training.config import RunConfig

    cfg = RunConfig.from_yaml(run / "config.yaml")
    scorer = network_scorer(load_model(run / checkpoint), seconds=cfg.data.seconds, cache_dir=pool / "cache")
    return scorer(index[index.machine_type.isin(cfg.data.machine_types)])


def with_pool(scores: pd.DataFrame, pool: Path) -> pd.DataFrame:
    """Scores joined with each anomalous clip's family, kind and strength (normal clips: family "normal")."""
    meta = pd.read_csv(pool / "pool.csv")
    scores = scores.assign(file=[Path(p).resolve().relative_to(pool.resolve()).as_posix() for p in scores.path])
    out = scores.merge(meta[["file", "family", "kind", "strength"]], on="file", how="left")
    out["family"] = out.family.fillna("normal")
    return out


def setting_auc(scores: pd.DataFrame, machine_type: str, scale: float, family: str,
                kinds: list[str] | None = None) -> float:
    """Mean over development IDs of the AUC of normal clips against the pool's anomalous clips of ``family``
    (and ``kinds``) with strength in [0.25 scale, scale] (DCASE's per-type average)."""
    from sklearn.metrics import roc_auc_score

    s = scores[scores.machine_type == machine_type]
    pick = (s.family == family) & s.strength.between(0.25 * scale, scale)
    if kinds is not None:
        pick &= s.kind.isin(kinds)
    aucs = []
    for _, g in s[pick | (s.family == "normal")].groupby("machine_id"):
        y = (g.family != "normal").to_numpy()
        if y.any() and (~y).any():
            aucs.append(roc_auc_score(y, g.score))
    return float(np.mean(aucs))


def table(methods: dict[str, pd.DataFrame], scales=(0.6, 0.8, 1.0, 1.2, 1.4, 1.6, 2.0, 2.4)) -> pd.DataFrame:
    rows = []
    for name, s in methods.items():
        for t in MACHINE_TYPES:
            if t not in set(s.machine_type):
                continue
            for family in ("id", "common"):
                rows.append(dict(method=name, machine_type=t, family=family,
                                 **{f"S={x:g}": 100 * setting_auc(s, t, x, family) for x in scales}))
    return pd.DataFrame(rows)


def kind_table(scores: pd.DataFrame, scale: float = 2.0) -> pd.DataFrame:
    """AUC (%) of each anomaly kind per type at strength scale ``scale``: kinds x types."""
    kinds = scores[scores.family != "normal"].groupby(["machine_type", "kind"]).family.first()
    return pd.Series({(t, k): 100 * setting_auc(scores, t, scale, family, [k])
                      for (t, k), family in kinds.items()}).unstack(0)


def dataset_scores(data: Path, out: Path, *, ae: Path, run: Path) -> dict[str, pd.DataFrame]:
    """Scores of a generated dataset's test clips with the three methods (cached as ``out/<method>.csv``)."""
    from asdlib.data.index import index_dataset
    from asdlib.evaluation.autoencoder import autoencoder_scores
    from asdlib.evaluation.baseline import baseline_scores
    from asdlib.teaching.regimes import network_scorer
    from asdlib.training.checkpoints import load_model
    from asdlib.training.config import RunConfig

    out.mkdir(parents=True, exist_ok=True)
    index, results = index_dataset(data), {}
    cfg = RunConfig.from_yaml(run / "config.yaml")
    network = network_scorer(load_model(run / "best.pt"), seconds=cfg.data.seconds, cache_dir=out / "cache")
    makers = {"STgram-MFN": lambda: network(index),
              "DCASE2020 AE": lambda: autoencoder_scores(index, ae, progress=False),
              "Gaussian": lambda: baseline_scores(index, progress=False)}
    for name, make in makers.items():
        path = out / f"{name}.csv"
        if not path.is_file():
            make()[["path", "machine_type", "machine_id", "label", "score"]].to_csv(path, index=False)
        results[name] = pd.read_csv(path)
    return results


def type_table(results: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """AUC (%) per type (DCASE average over IDs) of each method beside the published ones, with ranks."""
    from asdlib.evaluation.metrics import per_id_table, published_results, summary_table

    published = published_results()
    rows = {}
    for name, scores in results.items():
        rows[name] = 100 * summary_table(per_id_table(scores)).set_index("machine_type").auc
    for name, key in (("STgram-MFN published", "STgram-MFN"), ("DCASE2020 AE published", "DCASE2020 AE baseline")):
        rows[name] = 100 * published[key].set_index("machine_type").auc
    return pd.DataFrame(rows).reindex([*MACHINE_TYPES, "Average"])


def rank_check(table: pd.DataFrame) -> list[str]:
    """Spearman rho (six types) of ours vs published for the network and the AE, and where the network wins."""
    from scipy.stats import spearmanr

    six = table.loc[list(MACHINE_TYPES)]
    lines = []
    for ours, theirs in (("STgram-MFN", "STgram-MFN published"), ("DCASE2020 AE", "DCASE2020 AE published")):
        rho = spearmanr(six[ours], six[theirs]).statistic
        lines.append(f"{ours}: Spearman rho over the six types, ours vs published = {rho:.2f}")
    wins = [t for t in MACHINE_TYPES if six.at[t, "STgram-MFN"] > six.at[t, "DCASE2020 AE"]]
    lines.append(f"STgram-MFN beats the AE on {len(wins)} of 6 types ({', '.join(wins)}); published: 6 of 6")
    return lines


def rho_interval(results: dict[str, pd.DataFrame], *, n: int = 300, seed: int = 0) -> dict[str, tuple]:
    """95 % bootstrap interval of Spearman rho vs published for the network and the AE: test clips resampled
    within each machine ID and label, the published AUCs held fixed."""
    from scipy.stats import spearmanr

    from asdlib.evaluation.metrics import per_id_table, published_results, summary_table

    published = published_results()
    theirs = {"STgram-MFN": published["STgram-MFN"], "DCASE2020 AE": published["DCASE2020 AE baseline"]}
    rng, out = np.random.default_rng(seed), {}
    for name, ref in theirs.items():
        scores = results[name]
        ref = ref.set_index("machine_type").auc.reindex(list(MACHINE_TYPES))
        groups = list(scores.groupby(["machine_type", "machine_id", "label"]).indices.values())
        rhos = []
        for _ in range(n):
            rows = np.concatenate([rng.choice(g, len(g)) for g in groups])
            ours = summary_table(per_id_table(scores.iloc[rows])).set_index("machine_type").auc
            rhos.append(spearmanr(ours.reindex(list(MACHINE_TYPES)), ref).statistic)
        out[name] = tuple(np.percentile(rhos, [2.5, 97.5]))
    return out


def level_table(data: Path, real_dir: Path) -> pd.DataFrame:
    """Level sd (dB) over all clips of a type and label, procedural (``data``'s test clips) beside real."""
    import soundfile as sf
    from level_spread import clip_levels

    from asdlib.data.index import index_dataset
    from asdlib.evaluation.baseline import rms_dbfs

    test = index_dataset(data)
    test = test[test.split == "test"]
    ours = test.assign(dbfs=[rms_dbfs(sf.read(p, dtype="float32")[0]) for p in test.path])
    real = clip_levels(real_dir)
    rows = {}
    for name, levels in (("procedural v3", ours), ("real", real)):
        sd = levels.groupby(["machine_type", "label"]).dbfs.std()
        rows[f"{name}: normal"], rows[f"{name}: anomaly"] = sd.xs("normal", level=1), sd.xs("anomaly", level=1)
    return pd.DataFrame(rows).reindex(list(MACHINE_TYPES)).round(2)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("stage", choices=["pool", "score", "table", "kinds", "verify"])
    p.add_argument("--data", type=Path, default=None, help="verify: a generated dataset")
    p.add_argument("--out", type=Path, default=None, help="verify: where its scores go")
    p.add_argument("--bootstrap", action="store_true", help="verify: bootstrap interval of the rank correlations")
    p.add_argument("--levels", type=Path, default=None, help="verify: real clips folder, for the level spread")
    p.add_argument("--pool", type=Path, default=POOL)
    p.add_argument("--source", type=Path, default=REPO / "data" / "synth" / "default")
    p.add_argument("--per-kind", type=int, default=20)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--method", choices=["gaussian", "ae", "network"])
    p.add_argument("--name", default=None, help="name of the scores file (default: the method)")
    p.add_argument("--ae", type=Path, default=None)
    p.add_argument("--run", type=Path, default=None)
    p.add_argument("--checkpoint", default="best.pt", help="file of --run to score with")
    args = p.parse_args()
    if args.stage == "verify":
        results = dataset_scores(args.data, args.out, ae=args.ae, run=args.run)
        table = type_table(results)
        print(table.round(1).to_markdown())
        print("\n".join(rank_check(table)))
        if args.bootstrap:
            print({k: tuple(round(x, 2) for x in v) for k, v in rho_interval(results).items()})
        if args.levels:
            print(level_table(args.data, args.levels).to_markdown())
        return
    if args.stage == "pool":
        print(make_pool(args.pool, args.source, args.per_kind, args.seconds).groupby("machine_type").size())
    elif args.stage == "score":
        s = score(args.pool, args.method, ae=args.ae, run=args.run, checkpoint=args.checkpoint)
        with_pool(s, args.pool).drop(columns=["path"]).to_csv(args.pool / f"scores_{args.name or args.method}.csv",
                                                               index=False)
    else:
        methods = {f.stem.removeprefix("scores_"): pd.read_csv(f) for f in sorted(args.pool.glob("scores_*.csv"))}
        if args.stage == "table":
            print(table(methods).round(1).to_string(index=False))
        else:
            for name, s in methods.items():
                print(name)
                print(kind_table(s).round(1).to_string())


if __name__ == "__main__":
    main()

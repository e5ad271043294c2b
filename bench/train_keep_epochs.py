"""Train one run and keep the weights of every epoch (``OUT/epochs/epoch_NN.pt``), for scoring later data with them.

The models of this series are trained on normal clips only, so a run's weights do not depend on the anomalous test
clips. The generator's calibration (``bench/synth_calibration.py``) trains once, then scores pools of anomalous
clips of many kinds and strengths with every epoch's weights.

    nice -n 10 python bench/train_keep_epochs.py CONFIG DATA OUT [--threads 1] [section.key=value ...]
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from common import REPO  # noqa: F401  (puts the checkout on sys.path)

from asdlib.experiment import train_from_config
from asdlib.training.loop import epoch_summary


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("config", type=Path)
    p.add_argument("data", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("overrides", nargs="*")
    args = p.parse_args()
    keep = args.out / "epochs"
    keep.mkdir(parents=True, exist_ok=True)

    def on_epoch(row: dict) -> None:
        shutil.copyfile(args.out / "last.pt", keep / f"epoch_{row['epoch']:03d}.pt")
        print(epoch_summary(row, epochs), flush=True)

    overrides = [f"train.threads={args.threads}", *args.overrides]
    from asdlib.training.config import RunConfig
    epochs = RunConfig.from_yaml(args.config, overrides).train.epochs
    train_from_config(args.config, args.data, args.out, overrides=overrides, progress=False, on_epoch=on_epoch)


if __name__ == "__main__":
    main()

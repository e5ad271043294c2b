"""``python -m asdlib <command>``: the command-line entry points, each a thin call into the library.

Commands: ``synth`` (generate the procedural dataset), ``index`` (count clips per type/ID/label),
``download`` (real DCASE2020 data from Zenodo), ``train``, ``evaluate``, ``score`` (score your own wav files),
``import-checkpoint`` (convert the authors' weights), ``baseline`` (the DCASE2020 autoencoder baseline),
``run-series`` (execute the notebooks, as ``make run`` does), ``pretrained`` (the shipped reference and study runs).
Heavy modules are imported inside each command so that ``--help`` answers at once. Errors print one line
naming the file and the fix in terms of this command line (``--on-error skip``, not ``on_error='skip'``);
warnings print one line each; when the output is not a terminal (a log file) progress bars refresh at most every
30 s and not at all for steps shorter than that, so a log holds the per-epoch summary lines, not bar updates.
"""
from __future__ import annotations

import argparse
import os
import pickle
import re
import sys
import warnings
import zipfile
from pathlib import Path

# Python arguments named in the library's messages -> the options of this command line
CLI_WORDS: tuple[tuple[str, str], ...] = (
    (r"on_error='(skip|raise)'", r"--on-error \1"), (r"resume=False", "--no-resume"),
    (r"overwrite=True", "--overwrite"), (r"machine_type=/machine_id=", "--machine-type/--machine-id"),
    (r"\bseconds=N\b", "--seconds N"), (r"retrain=True", "--no-resume"),
)


def cmd_synth(args: argparse.Namespace) -> int:
    from asdlib.data.synth import GENERATOR_VERSION, generate_dataset

    summary = generate_dataset(args.out, size=args.size, machine_types=args.types, seed=args.seed,
                               seconds=args.seconds, fault_target=args.fault_target,
                               anomaly_levels={"on": True, "off": False}.get(args.anomaly_levels),
                               version=args.generator_version or GENERATOR_VERSION, overwrite=args.overwrite, progress=not args.quiet)
    print(_index_summary(args.out))
    return 0 if summary is not None else 1


def cmd_index(args: argparse.Namespace) -> int:
    with warnings.catch_warnings():  # the skipped files are listed below instead
        warnings.filterwarnings("ignore", message="index_dataset skipped")
        print(_index_summary(args.root, ground_truth=args.ground_truth, on_error=args.on_error, check_audio=True))
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from asdlib.data.download import download

    download(args.out, machines=args.machines, parts=args.parts, base_url=args.base_url,
             ground_truth_url=args.ground_truth_url, checksums=args.checksums, timeout=args.timeout,
             retries=args.retries, dry_run=args.dry_run, progress=not args.quiet)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from asdlib.experiment import train_from_config
    from asdlib.training.config import RunConfig
    from asdlib.training.loop import epoch_summary

    cfg = RunConfig.from_yaml(args.config, args.overrides)
    train_from_config(cfg, args.data, args.out, resume=not args.no_resume, on_error=args.on_error,
                      on_epoch=lambda row: print(epoch_summary(row, cfg.train.epochs), flush=True))
    print(f"trained {args.out}: best.pt, last.pt, history.csv (evaluate it: python -m asdlib evaluate {args.out})")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from asdlib.experiment import evaluate_run

    evaluate_run(args.run_dir, data=args.data, checkpoint=args.checkpoint)
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from asdlib.experiment import score_files

    if args.out and args.out.exists() and not args.overwrite:
        raise FileExistsError(f"{args.out} exists; pass --overwrite to replace it")
    table = score_files(args.checkpoint, args.paths, machine_type=args.machine_type,
                        machine_id=args.machine_id, progress=args.out is not None, on_error=args.on_error)
    if args.out:
        tmp = args.out.with_name(f".{args.out.name}.tmp{os.getpid()}")
        table.to_csv(tmp, index=False)
        os.replace(tmp, args.out)
        print(f"wrote {len(table)} scores to {args.out}", file=sys.stderr)
    else:
        table.to_csv(sys.stdout, index=False)
    return 0


def cmd_import_checkpoint(args: argparse.Namespace) -> int:
    from asdlib.training.checkpoints import convert_checkpoint

    out = convert_checkpoint(args.src, args.out, variant=args.variant, label_order=args.label_order,
                             seconds=args.seconds, overwrite=args.overwrite)
    print(f"wrote {out}")
    return 0


def cmd_run_series(args: argparse.Namespace) -> int:
    from asdlib.teaching.series import run_series

    return run_series(data=args.data, build=args.build, size=args.size, only=args.only)


def cmd_baseline(args: argparse.Namespace) -> int:
    from asdlib.data.index import index_dataset
    from asdlib.evaluation.autoencoder import autoencoder_scores, write_results
    from asdlib.evaluation.metrics import to_markdown
    from asdlib.training.autoencoder import cpu_threads, fit_autoencoders

    from asdlib.data.dcase import parse_types
    from asdlib.training.autoencoder import AERecipe

    types = list(parse_types(args.machine_types)) if args.machine_types else None
    index = index_dataset(args.data, machine_types=types)
    recipe = AERecipe(seconds=args.seconds)
    fit_autoencoders(index, args.out, recipe=recipe, epochs=args.epochs, threads=args.threads,
                     progress=not args.quiet)
    with cpu_threads(args.threads):
        scores = autoencoder_scores(index, args.out, seconds=args.seconds, progress=not args.quiet)
        summary = write_results(scores, args.out)
    print(to_markdown(summary))
    print(f"wrote models, scores and AUC/pAUC tables to {args.out}", file=sys.stderr)
    return 0


def _index_summary(root, **kwargs) -> str:
    """Counts per machine type × machine ID × split/label, as a printable table."""
    from asdlib.data.index import index_dataset

    df = index_dataset(root, **kwargs)
    skipped = df.attrs.get("skipped", [])
    problems = "".join(f"\nskipped {p}: {r}" for p, r in skipped)
    if skipped:
        problems = f"\n{len(skipped)} file(s) or folder(s) skipped:" + problems
    if df.empty:
        return f"{root}: no clips found" + problems
    counts = df.groupby(["machine_type", "machine_id", "split", "label"]).size().unstack(["split", "label"])
    counts = counts.fillna(0).astype(int)
    counts.columns = [f"{s}/{lab}" for s, lab in counts.columns]
    return f"{root}: {len(df)} clips, {df.machine_type.nunique()} machine types, " \
           f"{df.groupby(['machine_type', 'machine_id']).ngroups} machine IDs\n{counts.to_string()}{problems}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m asdlib", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("synth", help="generate the procedural DCASE2020-style dataset")
    p.add_argument("--size", default="default", help="smoke | default | full (default: default)")
    p.add_argument("--out", required=True, type=Path, help="output folder (DCASE layout: <type>/{train,test})")
    p.add_argument("--types", default=None, help="comma-separated machine types (default: all six)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seconds", type=float, default=None, help="clip length (default: the size's)")
    p.add_argument("--fault-target", type=float, default=None, metavar="X",
                   help="share in [0, 1] of faults that leave the machine's identity alone, for every type (0: an ID "
                        "classifier excels, 1: a density model on log-mel statistics wins; default: the version's "
                        "calibrated per-type value)")
    p.add_argument("--anomaly-levels", choices=["on", "off"], default=None,
                   help="anomalous clips' levels spread as on the real recordings (default: the version's setting)")
    p.add_argument("--generator-version", type=int, default=None, metavar="N",
                   help="which calibration of the anomalies (default: the current one; normal clips are the same "
                        "in every version)")
    p.add_argument("--overwrite", action="store_true", help="replace a dataset generated with other parameters")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("index", help="index a dataset folder, check every wav header, print counts per "
                                     "type/ID/label")
    p.add_argument("root", type=Path, help="dataset root (official, merged or procedural layout)")
    p.add_argument("--ground-truth", type=Path, default=None, help="evaluation ground-truth CSV")
    p.add_argument("--on-error", choices=("raise", "skip"), default="raise",
                   help="skip: list unreadable, empty or non-wav files and folders with reasons, and carry on")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("download", help="download DCASE2020 Task 2 data from Zenodo (md5-checked, resumable)")
    p.add_argument("--machines", default="fan", help="comma-separated machine types, or 'all' (default: fan)")
    p.add_argument("--parts", default="dev", help="comma-separated: dev, additional, eval (default: dev)")
    p.add_argument("--out", type=Path, default=Path("data/dcase2020"), help="target folder (official layout)")
    p.add_argument("--base-url", default="https://zenodo.org", help="Zenodo root (for mirrors and tests)")
    p.add_argument("--checksums", type=Path, default=None,
                   help="JSON file (zip name -> md5) that replaces the pinned md5s (mirrors of other data)")
    p.add_argument("--ground-truth-url", default=None,
                   help="evaluation ground truth (default: GitHub for Zenodo, BASE_URL/eval_data_list.csv else)")
    p.add_argument("--timeout", type=float, default=30.0,
                   help="seconds to wait for an answer or for 1 kB of data before retrying (default: 30)")
    p.add_argument("--retries", type=int, default=3, help="retries per request (default: 3)")
    p.add_argument("--dry-run", action="store_true", help="only list the files and their sizes")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_download)

    p = sub.add_parser("train", help="train a model from a YAML preset in configs/")
    p.add_argument("--config", required=True, type=Path, help="e.g. configs/smoke.yaml")
    p.add_argument("--data", required=True, type=Path, help="dataset root")
    p.add_argument("--out", required=True, type=Path, help="run folder (checkpoints, history, scores)")
    p.add_argument("--no-resume", action="store_true",
                   help="start a new run even if OUT holds one (its files are moved to OUT/previous-<time>/)")
    p.add_argument("--on-error", choices=("raise", "skip"), default="raise",
                   help="skip: leave unreadable clips out of the training data (listed in a warning)")
    p.add_argument("overrides", nargs="*", metavar="section.key=value", help="e.g. train.epochs=5")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="score the test clips of a run and print AUC/pAUC/mAUC tables")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--data", type=Path, default=None, help="dataset root (default: the one the run used)")
    p.add_argument("--checkpoint", default="best.pt", help="checkpoint file name in RUN_DIR (default: best.pt)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("score", help="anomaly scores for any wav files or folders")
    p.add_argument("checkpoint", type=Path, help="an asdlib checkpoint (e.g. data/runs/NAME/best.pt)")
    p.add_argument("paths", nargs="+", type=Path, help="wav files or folders")
    p.add_argument("--machine-type", default=None, help="when the paths are not DCASE-style")
    p.add_argument("--machine-id", type=int, default=None, help="when the paths are not DCASE-style")
    p.add_argument("--out", type=Path, default=None, help="CSV file (default: standard output)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.add_argument("--on-error", choices=("raise", "skip"), default="skip",
                   help="skip (default): score every readable file and list the others; raise: stop at the first")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("import-checkpoint", help="convert an original STgram-MFN / Noisy-ArcMix checkpoint")
    p.add_argument("src", type=Path)
    p.add_argument("--variant", required=True,
                   help="stgram_mfn_paper | stgram_mfn | stsasgram_mfn | tastgram_mfn")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--label-order", default=None, help="class order of SRC (default: the variant's own)")
    p.add_argument("--seconds", type=float, default=10.0,
                   help="clip length SRC was trained on (default: 10, the DCASE2020 clips)")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=cmd_import_checkpoint)

    p = sub.add_parser("run-series", help="execute the notebook series into BUILD (executed .ipynb + HTML)")
    p.add_argument("--data", type=Path, default=Path("data/synth/default"))
    p.add_argument("--build", type=Path, default=Path("build"))
    p.add_argument("--size", default="default", help="dataset size the notebooks use (smoke for CI)")
    p.add_argument("--only", default=None, help="comma-separated notebook numbers, e.g. 00,01")
    p.set_defaults(func=cmd_run_series)

    p = sub.add_parser("baseline", help="train the DCASE2020 autoencoder baseline (one per machine type) and "
                                        "score its test clips")
    p.add_argument("--data", required=True, type=Path, help="dataset root")
    p.add_argument("--out", required=True, type=Path, help="folder for the models, scores and tables")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: 100, the published recipe)")
    p.add_argument("--threads", type=int, default=None, help="PyTorch CPU threads (default: PyTorch's)")
    p.add_argument("--seconds", type=float, default=None,
                   help="use the first SECONDS of every clip (default: whole clips, as the baseline)")
    p.add_argument("--machine-types", default=None, help="comma-separated machine types (default: all found)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_baseline)

    from asdlib.teaching.reproduce import add_cli_commands  # list / verify / train the shipped reference runs
    add_cli_commands(sub)
    return parser


def cli_message(text: str) -> str:
    """A library message in this command line's words: the Python arguments it names become options, and a
    Python form repeated next to its option (``--no-resume (--no-resume)``) is said once."""
    for python, option in CLI_WORDS:
        text = re.sub(python, option, text)
    text = re.sub(r"(--[a-z-]+(?: [a-z]+)?) \((?:CLI: )?\1\)", r"\1", text)
    text = re.sub(r"(--[a-z-]+(?: [a-z]+)?), \1 in Python", r"\1", text)
    return text


def quiet_progress_when_logged(argv: list[str]) -> None:
    """When stderr is not a terminal, tqdm bars (read from ``TQDM_*`` when tqdm is imported) refresh every
    30 s and stay hidden for steps under 30 s; a user's own ``TQDM_*`` settings win. Not for ``run-series``,
    whose notebooks keep their bars."""
    if sys.stderr.isatty() or argv[:1] == ["run-series"] or "tqdm" in sys.modules:
        return
    os.environ.setdefault("TQDM_MININTERVAL", "30")
    os.environ.setdefault("TQDM_DELAY", "30")


def _one_line(message, category, filename, lineno, line=None) -> str:
    """How a warning prints here: ``warning: <message>`` (recorded warnings, e.g. in tests, are unaffected)."""
    return f"warning: {cli_message(str(message))}\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    quiet_progress_when_logged(argv)
    args = build_parser().parse_args(argv)
    formatwarning, warnings.formatwarning = warnings.formatwarning, _one_line
    try:
        return args.func(args)
    except (OSError, ValueError, RuntimeError, KeyError, EOFError, pickle.UnpicklingError,
            zipfile.BadZipFile) as err:
        if os.environ.get("ASD_DEBUG"):
            raise
        text = str(err).strip() or f"{type(err).__name__} (no message)"
        if isinstance(err, KeyError) and len(err.args) == 1:
            text = f"missing key {err.args[0]!r}"
        print(f"error: {cli_message(text)} (ASD_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 2
    finally:
        warnings.formatwarning = formatwarning

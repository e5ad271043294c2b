"""The training loop: one plain PyTorch loop for every model × loss (CE, ArcFace, ArcMix, Noisy-ArcMix).

``fit`` is the whole story in one screen: per epoch, set the learning rate from the cosine schedule (a pure
function, :func:`lr_at`), run the mini-batches (features computed on the device, mixup when the loss asks for it,
mixed precision on CUDA), optionally re-estimate the BatchNorm statistics (:func:`precise_batchnorm`), measure the
loss on the held-out normal training clips, keep the checkpoint with the lowest validation loss, and save
everything needed to resume. A non-finite loss stops training at once with :class:`DivergedError` (epoch, step,
what to try); ``last.pt`` then still holds the last good epoch. Randomness is derived from ``(seed, epoch)``, so an interrupted run resumed from
``last.pt`` reproduces the uninterrupted run exactly on CPU.
"""
from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm.auto import tqdm

from asdlib.training.checkpoints import CheckpointError, check_weights, read_checkpoint_file, save_model
from asdlib.training.losses import LOSSES, mixup, sample_mixup


class DivergedError(RuntimeError):
    """The training loss became NaN or infinite; the message gives the epoch, the step and what to try."""


def pick_device(name: str = "auto") -> torch.device:
    """``"auto"`` -> cuda, else mps, else cpu; any other string is passed to ``torch.device``."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def lr_at(epoch: int, *, lr: float, t_max: int, eta_min: float, hold_epochs: int = 0) -> float:
    """Cosine annealing (``torch.optim.lr_scheduler.CosineAnnealingLR`` closed form), stepped once per epoch.

    The schedule is held at ``lr`` for ``hold_epochs`` epochs (STgram-MFN: 20; Noisy-ArcMix: 0), then
    ``η = η_min + (η_max − η_min)·(1 + cos(π·k / T_max)) / 2`` with ``k = epoch − hold_epochs`` steps taken.
    """
    k = max(0, epoch - hold_epochs)
    return eta_min + (lr - eta_min) * (1 + math.cos(math.pi * k / t_max)) / 2


def amp_dtype(setting: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype: ``"auto"`` = bf16 on CUDA, none elsewhere (CPU training stays fp32 and exact)."""
    if setting == "off" or (setting == "auto" and device.type != "cuda"):
        return None
    return {"auto": torch.bfloat16, "bf16": torch.bfloat16, "fp16": torch.float16}[setting]


class Criterion(nn.Module):
    """Model + loss in one forward, so DistributedDataParallel sees every parameter used in one call.

    ``forward(wave, labels, lam, perm) -> (loss, logits)``: ``(B, L), (B,) -> ((), (B, K))``. With a mixup loss
    the waves and the log-mels are mixed with the same λ and permutation (Noisy-ArcMix's ``utils.mixup_data``). ``mel`` ``(B, F, T)``
    may come precomputed (the benchmarks' naive pipeline); by default the model computes it on the device.
    """

    def __init__(self, model: nn.Module, loss_name: str):
        super().__init__()
        self.model, self.loss = model, LOSSES[loss_name]

    def forward(self, wave: torch.Tensor, labels: torch.Tensor, lam: float = 1.0, perm: torch.Tensor | None = None,
                mel: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        mel = self.model.log_mel(wave) if mel is None else mel  # (B, F, T)
        if self.loss.uses_mixup and perm is not None:
            wave, mel = mixup(wave, mel, lam=lam, perm=perm)
            embedding = self.model.embed(wave, mel=mel)  # (B, D)
            loss = self.loss.fn(self.model.head, embedding, labels, labels[perm], lam)
        else:
            embedding = self.model.embed(wave, mel=mel)
            loss = self.loss.fn(self.model.head, embedding, labels)
        return loss, self.model.head(embedding)


def train_epoch(criterion: nn.Module, loader, optimizer: torch.optim.Optimizer, *, device: torch.device,
                alpha: float, rng: np.random.Generator, dtype: torch.dtype | None = None,
                scaler: torch.amp.GradScaler | None = None, channels_last: bool = False,
                progress: bool = True, desc: str = "train") -> dict:
    """One pass over ``loader``; returns mean loss, accuracy (argmax vs true ID) and clips/s."""
    criterion.train()
    total, correct, seen, start = 0.0, 0, 0, time.perf_counter()
    bar = tqdm(loader, desc=desc, leave=False, disable=not progress)
    for step, (wave, labels, _) in enumerate(bar, start=1):
        wave, labels = wave.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        lam, perm = sample_mixup(len(labels), alpha=alpha, rng=rng)
        with torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext():
            loss, logits = criterion(wave, labels, lam, perm.to(device))
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:  # fp16 needs loss scaling; the original ran autocast without it
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        value = loss.item()
        if not math.isfinite(value):
            raise DivergedError(f"the training loss is {value} at step {step} of {len(loader)}")
        total += value * len(labels)
        correct += (logits.argmax(1) == labels).sum().item()
        seen += len(labels)
        bar.set_postfix(loss=f"{total / seen:.3f}", clips_s=f"{seen / (time.perf_counter() - start):.0f}",
                        refresh=False)  # shown at the next refresh (mininterval), not forced every step
    elapsed = time.perf_counter() - start
    return {"loss": total / max(seen, 1), "acc": correct / max(seen, 1), "clips_per_s": seen / elapsed}


@torch.no_grad()
def precise_batchnorm(model: nn.Module, loader, *, device: torch.device, batches: int,
                      dtype: torch.dtype | None = None) -> None:
    """Recompute every BatchNorm's running mean/variance as the plain average over ``batches`` training batches.

    In eval mode BatchNorm uses running statistics, an exponential average (momentum 0.1) collected while the
    weights were still moving. After hundreds of epochs (the papers) they have settled; after the few dozen steps
    of a CPU preset they lag behind the final weights, and validation loss and anomaly scores suffer. This pass
    ("precise BN") fixes them with the weights frozen; nothing else changes. The papers do not do it.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [bn.momentum for bn in norms]
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None  # None = cumulative average over the batches seen
    model.train()
    for step, (wave, _, _) in enumerate(loader):
        if step == batches:
            break
        with torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext():
            model.embed(wave.to(device, non_blocking=True))  # (B, L) -> (B, D); only the statistics are kept
    for bn, momentum in zip(norms, momenta):
        bn.momentum = momentum


@torch.inference_mode()
def validation_metrics(model: nn.Module, loader, *, device: torch.device) -> dict:
    """``{"val_loss", "val_acc"}`` on held-out normal clips: mean CE of the head's logits (margin on the true ID,
    no mixup, as Noisy-ArcMix selects its checkpoint) and the ID accuracy on these *clean* clips.

    The training accuracy of a mixup loss is measured on mixed clips (argmax against ``y_a``) and is capped by
    the mixing; the clean validation accuracy is comparable across losses.
    """
    model.eval()
    total, correct, seen = 0.0, 0, 0
    for wave, labels, _ in loader:
        wave, labels = wave.to(device), labels.to(device)
        logits, embedding = model(wave, labels)
        total += nn.functional.cross_entropy(logits.float(), labels, reduction="sum").item()
        correct += (model.head(embedding).argmax(1) == labels).sum().item()  # margin-free logits
        seen += len(labels)
    if not seen:
        return {"val_loss": float("nan"), "val_acc": float("nan")}
    return {"val_loss": total / seen, "val_acc": correct / seen}


def validation_loss(model: nn.Module, loader, *, device: torch.device) -> float:
    """Mean CE on held-out normal clips (see :func:`validation_metrics`)."""
    return validation_metrics(model, loader, device=device)["val_loss"]


def fit(model: nn.Module, train_loader, val_loader, *, run_config: dict, out_dir: str | Path,
        device: torch.device | None = None, resume: bool = True, progress: bool = True,
        monitor_fn: Callable[[nn.Module], dict] | None = None, on_epoch: Callable[[dict], None] | None = None,
        ) -> list[dict]:
    """Train ``model`` as ``run_config`` (``asdlib.training.config.to_plain(RunConfig)``) says; returns per-epoch history.

    Writes ``out_dir/last.pt`` (resume point), ``out_dir/best.pt`` (selected model) and ``history.csv/json``.
    ``monitor_fn(model) -> dict`` adds metrics to the history (e.g. test AUC, every ``select_every`` epochs);
    with ``train.selection = "peek_test_auc"`` its ``"test_auc_pauc"`` picks the checkpoint instead of the
    validation loss (the original STgram-MFN's leak). ``on_epoch(row)`` runs after each epoch (live plots).
    """
    cfg, alpha = run_config["train"], run_config["loss"]["alpha"]
    out_dir, device = Path(out_dir), device or pick_device(cfg["device"])
    rank0 = not dist.is_initialized() or dist.get_rank() == 0
    out_dir.mkdir(parents=True, exist_ok=True)
    model.to(device, memory_format=torch.channels_last if cfg["channels_last"] else torch.preserve_format)
    criterion = _wrap(Criterion(model, run_config["loss"]["name"]), device, cfg["compile"])
    optimizer = make_optimizer(model, cfg)
    dtype = amp_dtype(cfg["amp"], device)
    scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None
    t_max = len(train_loader) if cfg["t_max"] == "iters_per_epoch" else cfg["t_max"]
    start, history, best = _resume(out_dir / "last.pt", model, optimizer, device) if resume else (0, [], None)
    for epoch in range(start, cfg["epochs"]):
        tic = time.perf_counter()
        lr = lr_at(epoch, lr=cfg["lr"], t_max=t_max, eta_min=cfg["eta_min"], hold_epochs=cfg["hold_epochs"])
        for group in optimizer.param_groups:
            group["lr"] = lr
        _seed_epoch(train_loader, cfg["seed"], epoch)
        rng = np.random.default_rng([cfg["seed"], epoch])
        try:
            stats = train_epoch(criterion, train_loader, optimizer, device=device, alpha=alpha, rng=rng,
                                dtype=dtype, scaler=scaler, progress=progress and rank0,
                                desc=f"epoch {epoch + 1}/{cfg['epochs']}")
        except DivergedError as e:
            raise DivergedError(_diverged_advice(str(e), epoch + 1, lr, out_dir, has_last=bool(history))) from None
        if cfg["precise_bn"]:
            precise_batchnorm(model, train_loader, device=device, batches=cfg["precise_bn"], dtype=dtype)
        row = {"epoch": epoch + 1, "lr": lr, **stats, **validation_metrics(model, val_loader, device=device)}
        if len(val_loader) and not math.isfinite(row["val_loss"]):  # finite training loss, broken weights
            raise DivergedError(_diverged_advice(f"the validation loss is {row['val_loss']} after the last step",
                                                 epoch + 1, lr, out_dir, has_last=bool(history)))
        if monitor_fn is not None and (epoch + 1) % cfg["select_every"] == 0:
            row.update(monitor_fn(model))
        row["epoch_seconds"] = time.perf_counter() - tic
        history.append(row)
        best = _maybe_save_best(out_dir, model, row, best, run_config, rank0, peek=cfg["selection"] != "val_loss")
        if rank0:
            _save_last(out_dir, model, optimizer, epoch + 1, history, best, run_config)
            _write_history(out_dir, history)
        if on_epoch is not None:
            on_epoch(row)
    return history


def epoch_summary(row: dict, epochs: int) -> str:
    """One line per epoch for a log: ``epoch  3/15  loss 1.234  held-out loss 1.456  acc 97.5 %  12.3 s``."""
    width = len(str(epochs))
    parts = [f"epoch {row['epoch']:>{width}}/{epochs}", f"lr {row['lr']:.2e}", f"loss {row['loss']:.4f}"]
    if math.isfinite(row.get("val_loss", float("nan"))):
        parts += [f"held-out loss {row['val_loss']:.4f}", f"acc {100 * row['val_acc']:.1f} %"]
    if "test_auc" in row:
        parts.append(f"test AUC {100 * row['test_auc']:.1f} %")
    return "  ".join(parts + [f"{row['epoch_seconds']:.1f} s"])


def _diverged_advice(what: str, epoch: int, lr: float, out_dir: Path, *, has_last: bool) -> str:
    """The message of a diverged training: where, at which learning rate, what was kept, what to try."""
    kept = (f"{out_dir / 'last.pt'} and best.pt keep the last good epoch ({epoch - 1})" if has_last
            else "no checkpoint was written")
    return (f"training diverged in epoch {epoch}: {what} (lr {lr:g}); stopped, {kept}. Try a lower learning "
            f"rate (train.lr={lr / 10:g}), train.amp=off, or another train.seed; then start a new run with "
            "--no-resume or another --out")


def make_optimizer(model: nn.Module, cfg: dict) -> torch.optim.Optimizer:
    """Adam (STgram-MFN, weight decay 0), AdamW (Noisy-ArcMix, weight decay 0.01), or SGD with momentum."""
    if cfg["optimizer"] == "sgd":
        return torch.optim.SGD(model.parameters(), lr=cfg["lr"], momentum=0.9, weight_decay=cfg["weight_decay"])
    kind = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[cfg["optimizer"]]
    return kind(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])


def _wrap(criterion: nn.Module, device: torch.device, compile_: bool) -> nn.Module:
    criterion.to(device)
    if dist.is_initialized():
        ids = [device.index] if device.type == "cuda" else None
        criterion = nn.parallel.DistributedDataParallel(criterion, device_ids=ids, find_unused_parameters=True)
    return torch.compile(criterion) if compile_ else criterion


def _seed_epoch(loader, seed: int, epoch: int) -> None:
    """Shuffling depends only on (seed, epoch): a resumed run sees the same batches as an uninterrupted one."""
    sampler = getattr(loader, "sampler", None)
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)
    generator = getattr(loader, "generator", None)
    if generator is not None:
        generator.manual_seed(seed * 1000 + epoch)
    torch.manual_seed(seed * 1000 + epoch)


def _maybe_save_best(out_dir: Path, model: nn.Module, row: dict, best: dict | None, run_config: dict,
                     rank0: bool, *, peek: bool = False) -> dict | None:
    """Selection: lowest validation loss (honest), or highest test AUC + pAUC when peeking."""
    key, sign = ("test_auc_pauc", 1.0) if peek else ("val_loss", -1.0)
    if key not in row or not math.isfinite(row[key]):
        return best
    if best is None or sign * row[key] > sign * best["value"]:
        best = {"epoch": row["epoch"], "metric": key, "value": row[key]}
        if rank0:
            save_model(out_dir / "best.pt", _unwrap(model), extra={"run_config": run_config, "selected": best})
    return best


def _save_last(out_dir: Path, model: nn.Module, optimizer, epoch: int, history: list, best, run_config) -> None:
    state = {"run_config": run_config, "epoch": epoch, "optimizer": optimizer.state_dict(), "best": best,
             "history": json.dumps(history), "torch_rng": torch.get_rng_state()}
    save_model(out_dir / "last.pt", _unwrap(model), extra=state)


def _resume(path: Path, model: nn.Module, optimizer, device: torch.device) -> tuple[int, list, dict | None]:
    if not path.is_file():
        return 0, [], None
    ckpt = read_checkpoint_file(path, map_location=device,
                                fix=f"delete it to start this run over, or pass --no-resume (the old files of "
                                    f"{path.parent} are then moved aside)")
    if not isinstance(ckpt, dict) or not {"state_dict", "optimizer", "epoch", "history", "torch_rng"} <= set(ckpt):
        raise CheckpointError(f"{path} is not a resume point written by asdlib's training; delete it to start "
                              "this run over, or pass --no-resume")
    check_weights(ckpt, path)
    _unwrap(model).load_state_dict(ckpt["state_dict"])
    optimizer.load_state_dict(ckpt["optimizer"])
    torch.set_rng_state(ckpt["torch_rng"].cpu())
    print(f"resuming {path} from epoch {ckpt['epoch']}")
    return ckpt["epoch"], json.loads(ckpt["history"]), ckpt["best"]


def _write_history(out_dir: Path, history: list[dict]) -> None:
    keys = list(dict.fromkeys(k for row in history for k in row))
    lines = [",".join(keys)] + [",".join(str(row.get(k, "")) for k in keys) for row in history]
    (out_dir / "history.csv").write_text("\n".join(lines) + "\n")
    (out_dir / "history.json").write_text(json.dumps(history, indent=1))


def _unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "module", model)

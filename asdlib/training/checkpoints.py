"""Checkpoints: asdlib's own format, and an importer for the original authors' state dicts.

An asdlib checkpoint is a plain dict ``{"format": "asdlib", "version": 1, "model": model.config,
"label_order": "stgram_paper", "state_dict": ..., **extra}`` of plain types and tensors, so
``torch.load(path, weights_only=True)`` reads it and ``build_model(**ckpt["model"])`` rebuilds the network.
``"weights_sha256"`` is a hash of the weights, the model config and the label order, recorded at save and checked
at load, so a damaged file fails loudly instead of scoring with altered weights (checkpoints saved before it
existed load with a warning; the shipped reference runs are checked against their registry's sha256 instead).
Every file that cannot be read raises one :class:`CheckpointError` naming it and the fix. The importer reads the originals' checkpoints (STgram-MFN ``clf_state_dict`` / ``model`` wrappers,
DataParallel ``module.`` prefixes, the paper-era duplicate ArcFace weight, Noisy-ArcMix plain state dicts),
renames their keys to ours and re-orders the class rows from the original label order to ours (§4.4).
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import pickle
import re
import shutil
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from asdlib.data.dcase import NUM_CLASSES, class_permutation
from asdlib.nn.models import MODEL_NAMES, build_model

FORMAT, VERSION = "asdlib", 1
LABEL_ORDER = "stgram_paper"  # the class order of every asdlib model
ORIGINAL_LABEL_ORDERS: dict[str, str] = {
    "stgram_mfn_paper": "stgram_paper", "stgram_mfn": "stgram_head",
    "stsasgram_mfn": "noisy_arcmix", "tastgram_mfn": "noisy_arcmix",
}
# original key prefix -> ours, applied in order (first match wins)
KEY_RENAMES: tuple[tuple[str, str], ...] = (
    ("tgramnet.conv_extrctor.", "tgram.conv_extractor."),
    ("tgramnet.", "tgram."),
    ("mobilefacenet.linear7.", "mobilefacenet.gdc."),
    ("spectral_transformer.", "sasgram."),
    ("arcface.", "head."),
)
CLASS_ROW_KEYS = ("head.weight", "mobilefacenet.fc_out.weight", "mobilefacenet.fc_out.bias")
_WRAPPER_KEYS = ("clf_state_dict", "state_dict", "model")
_RESERVED = ("format", "version", "model", "label_order", "state_dict", "weights_sha256")
SHIPPED_RUNS = Path(__file__).resolve().parents[1] / "reference_runs"  # their registry.json lists each file's sha256


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read or used; the message names the file and the fix."""


class CheckpointWarning(UserWarning):
    """A checkpoint that loads but cannot be fully checked (saved before asdlib recorded a weights hash)."""


def read_checkpoint_file(path: str | os.PathLike, *, map_location="cpu", fix: str = "") -> object:
    """``torch.load(path, weights_only=True)``, turning an empty, truncated, foreign or malicious file into one
    :class:`CheckpointError` naming it; ``fix`` says what to do (default: re-create or re-download it)."""
    path, fix = Path(path), fix or "re-create or re-download it"
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file; {fix}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes); {fix}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"(?:Unsupported global: |unsupported )GLOBAL ([\w.]+)", str(e))
        if found:  # a pickled class or function: refused, it could run code when loaded
            raise CheckpointError(f"{path} holds a pickled Python object ({found.group(1)}), not only tensors "
                                  "and plain values; it was not loaded, since unpickling it could run code. Use "
                                  "a checkpoint written by asdlib.training.checkpoints.save_model, or convert "
                                  "the original with import-checkpoint from a trusted copy") from None
        raise CheckpointError(f"{path} is not a PyTorch checkpoint (it starts with {_head(path)}); {fix}") from None
    except MemoryError:
        raise CheckpointError(f"{path} is damaged (it claims more memory than there is); {fix}") from None
    except Exception as e:  # noqa: BLE001 - torch lets RuntimeError, EOFError, KeyError, IndexError… through
        raise CheckpointError(f"{path} is truncated, damaged or not a PyTorch checkpoint ({_first_line(e)}); "
                              f"{fix}") from None


def _head(path: Path) -> str:
    with open(path, "rb") as f:
        return repr(f.read(12))


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:120]}" if text else type(error).__name__


def weights_sha256(state_dict: Mapping[str, torch.Tensor], model_config: Mapping, label_order: str) -> str:
    """sha256 of every tensor (name, dtype, shape, bytes, in name order), the model config and the label order."""
    digest = hashlib.sha256(json.dumps([dict(model_config), label_order], sort_keys=True, default=str).encode())
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def check_weights(ckpt: Mapping, path: str | os.PathLike) -> None:
    """Raise :class:`CheckpointError` when the weights differ from the hash recorded at save; warn when there is
    none (older checkpoints), unless the file is a shipped reference run whose registry vouches for it."""
    recorded = ckpt.get("weights_sha256")
    if recorded is None:
        if not _shipped_and_intact(Path(path)):
            warnings.warn(f"{path} records no weights hash (saved by an older asdlib): it loads, but damage to "
                          "its weights cannot be detected; re-save it with save_model to add one",
                          CheckpointWarning, stacklevel=3)
        return
    state = ckpt.get("state_dict")
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} has no readable state_dict; re-create or re-download it")
    if weights_sha256(state, ckpt.get("model") or {}, str(ckpt.get("label_order"))) != recorded:
        raise CheckpointError(f"{path} is damaged: its weights differ from the hash recorded when it was saved "
                              "(a changed byte, a partial copy?); re-create or re-download it")


def _shipped_and_intact(path: Path) -> bool:
    """Whether ``path`` is a shipped reference-run file; raise if its sha256 differs from the registry's."""
    path = path.resolve()
    if SHIPPED_RUNS not in path.parents:
        return False
    try:
        runs = json.loads((SHIPPED_RUNS / "registry.json").read_text())["runs"]
        expected = runs[path.parent.name]["files"][path.name]["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != expected:
        raise CheckpointError(f"{path} is corrupted (its sha256 differs from {SHIPPED_RUNS / 'registry.json'}); "
                              "reinstall asdlib or retrain it: python -m asdlib pretrained train "
                              f"{path.parent.name}")
    return True


def save_model(path: str | os.PathLike, model: nn.Module, *, extra: Mapping | None = None) -> Path:
    """Write ``model`` as an asdlib checkpoint atomically (temporary file + rename); return the path."""
    extra = dict(extra or {})
    clash = sorted(set(extra) & set(_RESERVED))
    if clash:
        raise ValueError(f"extra keys {clash} are reserved by the checkpoint format")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    ckpt = {"format": FORMAT, "version": VERSION, "model": dict(model.config), "label_order": LABEL_ORDER,
            "state_dict": state, "weights_sha256": weights_sha256(state, model.config, LABEL_ORDER), **extra}
    return _atomic_save(ckpt, Path(path))


def load_checkpoint(path: str | os.PathLike, *, map_location="cpu") -> dict:
    """Read an asdlib checkpoint dict (``weights_only=True``); raise a clear error for other files."""
    ckpt = read_checkpoint_file(path, map_location=map_location,
                                fix="train again, or pass another checkpoint (e.g. last.pt / best.pt of the run)")
    if not isinstance(ckpt, Mapping) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an asdlib checkpoint; for the original authors' weights use "
                         "asdlib.training.checkpoints.import_original or `python -m asdlib import-checkpoint`")
    if not isinstance(ckpt.get("version"), int) or ckpt["version"] > VERSION:
        raise CheckpointError(f"{path} has checkpoint version {ckpt.get('version')!r}; this asdlib reads <= "
                              f"{VERSION} (upgrade asdlib, or re-create the file)")
    if not isinstance(ckpt.get("model"), Mapping) or not isinstance(ckpt.get("state_dict"), Mapping):
        raise CheckpointError(f"{path} lacks its model config or state_dict; re-create or re-download it")
    check_weights(ckpt, path)
    return dict(ckpt)


def load_model(path: str | os.PathLike, *, map_location="cpu") -> nn.Module:
    """Rebuild and load the model of an asdlib checkpoint, in eval mode (on ``map_location`` if a device)."""
    ckpt = load_checkpoint(path, map_location=map_location)
    try:
        model = build_model(**ckpt["model"])
    except (TypeError, ValueError, KeyError) as e:
        raise CheckpointError(f"{path}: its model config {dict(ckpt['model'])} does not build a model ({e}); "
                              "re-create the file") from None
    bad = [k for k, v in ckpt["state_dict"].items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"{path} holds NaN or infinite weights ({len(bad)} tensors, e.g. {bad[0]}): the "
                              "training diverged; retrain with a lower train.lr")
    _load_checked(model, ckpt["state_dict"], f"{path} ({ckpt['model']['name']})")
    if isinstance(map_location, (str, torch.device)):
        model.to(map_location)
    return model.eval()


def import_original(src: str | os.PathLike | Mapping, variant: str, *, label_order: str | None = None,
                    seconds: float = 10.0) -> nn.Module:
    """Load an original STgram-MFN / Noisy-ArcMix checkpoint (path or state dict) into an asdlib model.

    ``variant`` is one of :data:`asdlib.nn.models.MODEL_NAMES`; ``label_order`` is the class order the original
    was trained with (default: :data:`ORIGINAL_LABEL_ORDERS`). The returned model (eval mode) uses ours.
    """
    if variant not in MODEL_NAMES:
        raise ValueError(f"unknown variant {variant!r}; expected one of {', '.join(MODEL_NAMES)}")
    label_order = label_order or ORIGINAL_LABEL_ORDERS[variant]
    original = unwrap_state_dict(src)
    if any(key.startswith(("tgram.", "head.")) for key in original):
        raise ValueError("these are asdlib key names (tgram.*, head.*), not the original code's; load them "
                         "with model.load_state_dict, or save_model / load_model")
    state = rename_original_keys(original)
    sub = max(1, state["head.weight"].shape[0] // NUM_CLASSES) if "head.weight" in state else 1  # sub-centres
    model = build_model(variant, seconds=seconds, sub=sub)
    _check_fits(model, state, f"the checkpoint does not fit {variant!r} for {seconds:g}-s clips and "
                              f"{NUM_CLASSES} classes; another variant, or another clip length (pass seconds=N)?")
    _load_checked(model, permute_classes(state, label_order, LABEL_ORDER), variant)
    return model.eval()


def convert_checkpoint(src: str | os.PathLike, out: str | os.PathLike, *, variant: str,
                       label_order: str | None = None, seconds: float = 10.0,
                       overwrite: bool = False) -> Path:
    """Import an original checkpoint file and save it in asdlib's format at ``out`` (refuses to overwrite)."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass overwrite=True (CLI: --overwrite) or choose another --out")
    model = import_original(src, variant, label_order=label_order, seconds=seconds)
    source = str(src) if isinstance(src, (str, os.PathLike)) else "<state dict>"
    return save_model(out, model, extra={"source": source,
                                         "source_label_order": label_order or ORIGINAL_LABEL_ORDERS[variant]})


def unwrap_state_dict(src: str | os.PathLike | Mapping) -> dict[str, torch.Tensor]:
    """The bare original state dict: loads a path, unwraps ``clf_state_dict``/``state_dict``/``model``,
    strips DataParallel ``module.`` prefixes."""
    obj = src
    if isinstance(src, (str, os.PathLike)):
        obj = read_checkpoint_file(src, fix="is it the original STgram-MFN / Noisy-ArcMix checkpoint (a .pth or "
                                            ".pth.tar file)? download it again")
    if isinstance(obj, Mapping) and obj.get("format") == FORMAT:
        raise ValueError("this is already an asdlib checkpoint: use asdlib.training.checkpoints.load_model")
    while isinstance(obj, Mapping) and not _is_state_dict(obj):
        inner = next((obj[k] for k in _WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            raise ValueError(f"no state dict found: expected tensors or a wrapper key {_WRAPPER_KEYS}, "
                             f"got keys {sorted(map(str, obj))[:10]}")
        obj = inner
    if not isinstance(obj, Mapping):
        raise TypeError(f"expected a state dict (a mapping of names to tensors), got {type(obj).__name__}")
    return {_strip_module(k): v for k, v in obj.items()}


def rename_original_keys(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Original key names -> asdlib's (:data:`KEY_RENAMES`); drops the paper-era duplicate ArcFace weight."""
    state = dict(state)
    duplicate = state.pop("mobilefacenet.arcface.weight", None)
    if duplicate is not None:
        if "arcface.weight" not in state:
            state["arcface.weight"] = duplicate
        elif not torch.equal(duplicate, state["arcface.weight"]):
            raise ValueError("arcface.weight and mobilefacenet.arcface.weight differ; the paper-era "
                             "checkpoint should hold one ArcFace weight twice")
    return {_rename(k): v for k, v in state.items()}


def permute_classes(state: Mapping[str, torch.Tensor], src: str,
                    dst: str = LABEL_ORDER) -> dict[str, torch.Tensor]:
    """Re-order the class rows of the head and ``fc_out`` from label order ``src`` to ``dst``."""
    perm = torch.tensor(class_permutation(src, dst))
    state = dict(state)
    for key in CLASS_ROW_KEYS:
        if key in state:
            rows = state[key].reshape(len(perm), -1)  # (K, sub·D) keeps sub-centres of a class together
            state[key] = rows[perm].reshape(state[key].shape)
    return state


def _is_state_dict(obj: Mapping) -> bool:
    return len(obj) > 0 and all(isinstance(v, torch.Tensor) for v in obj.values())


def _strip_module(key: str) -> str:
    while key.startswith("module."):
        key = key[len("module."):]
    return key


def _rename(key: str) -> str:
    for old, new in KEY_RENAMES:
        if key.startswith(old):
            return new + key[len(old):]
    return key


def _check_fits(model: nn.Module, state: Mapping[str, torch.Tensor], what: str) -> None:
    ours = model.state_dict()
    missing = [f"{k} {tuple(v.shape)}" for k, v in ours.items() if k not in state]
    unexpected = [f"{k} {tuple(v.shape)}" for k, v in state.items() if k not in ours]
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
              for k, v in ours.items() if k in state and state[k].shape != v.shape]
    if missing or unexpected or shapes:
        parts = [f"{len(missing)} missing keys: {_listing(missing)}",
                 f"{len(unexpected)} unexpected keys: {_listing(unexpected)}",
                 f"{len(shapes)} shape mismatches: {_listing(shapes)}"]
        raise ValueError(f"{what}:\n  " + "\n  ".join(parts) + "\n  (another variant, class count or clip "
                         f"length? variants: {', '.join(MODEL_NAMES)}; clip length: seconds=N)")


def _load_checked(model: nn.Module, state: Mapping[str, torch.Tensor], what: str) -> None:
    _check_fits(model, state, f"the state dict does not fit {what}")
    model.load_state_dict(state)


def _listing(items: list[str], limit: int = 8) -> str:
    if not items:
        return "none"
    more = f", … and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def _disk_full(error: BaseException | None) -> bool:
    """Whether ``error`` (or what it arose from) is a full disk or an exceeded file-size limit; torch wraps
    them in ``RuntimeError: [enforce fail at inline_container.cc] ...``."""
    while error is not None:
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            return True
        if isinstance(error, RuntimeError) and "file write failed" in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False


def _atomic_save(obj: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:  # torch reports a full disk as "enforce fail at inline_container.cc"
        Path(tmp).unlink(missing_ok=True)
        if not _disk_full(e):
            raise
        free = shutil.disk_usage(path.parent).free
        raise OSError(errno.ENOSPC, f"could not write {path}: the disk is full or the file too large "
                      f"({free / 1e6:.0f} MB free in {path.parent}); free some space and run again"
                      f"{' (the previous file is unchanged)' if path.exists() else ''}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path

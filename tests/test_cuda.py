"""The CUDA path (``pytest -m cuda``; skipped without a GPU): bf16, compile + channels-last, scoring, pinned loaders.

Each test compares the GPU path with a reference computed in the same run, with a tolerance stated and
explained next to it. "Exact fp32" references switch TF32 off (PyTorch runs cuDNN convolutions in TF32 by
default); the scoring test also checks the default settings users get. ``bash bench/gpu_check.sh OUT`` runs
these tests on the GPU machine.
"""
from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

from asdlib.data.cache import build_cache
from asdlib.training.checkpoints import load_model, save_model
from asdlib.data.index import index_dataset
from asdlib.experiment import make_loader, score_dataset
from asdlib.nn.models import MODEL_NAMES, build_model
from asdlib.data.synth import generate_dataset
from asdlib.training.loop import Criterion, make_optimizer, train_epoch

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(),
                                 reason="needs a CUDA GPU (on the GPU machine: bash bench/gpu_check.sh OUT)")]

LOSS_OF = {"stgram_mfn_paper": "arcface", "stgram_mfn": "arcface", "stsasgram_mfn": "noisy_arcmix",
           "tastgram_mfn": "noisy_arcmix"}  # each model with its published loss
BATCH, SECONDS, LAM = 8, 10.0, 0.6  # one training step on 8 ten-second clips; the mixup weight when mixing
SCORE_SECONDS = 2.0  # the scoring / loader tests use the 2-s smoke clips (CPU scoring stays fast)

# bf16 vs fp32, one training step. bf16 keeps 8 significant bits (relative rounding 2^-9 ≈ 0.2 %); through
# ~25 convolutions the embedding drifts by ~1-3 % relative, the cosines to the class centres by about as much in
# absolute terms, and the ArcFace logits (s = 30) by ~30x that. A broken cast (log-mel in bf16 without fp32
# log, an overflow in the Tgram) gives NaN, inf, or errors of tens of %.
BF16_LOSS_RTOL = 5e-2  # |loss_bf16 - loss_fp32| <= 5 % of loss_fp32
BF16_COSINE_ATOL = 5e-2  # max |Δ cosine| (= |Δ logit| / s) over the batch and all 41 classes
BF16_GRAD_COSINE = 0.9  # cosine similarity of all gradients, flattened, bf16 vs fp32 (1 = same direction)

# compiled + channels-last vs eager, both exact fp32: the same arithmetic in another order (fused kernels,
# other cuDNN algorithms for the channels-last layout): differences of ~1e-6 relative per operation.
COMPILE_LOSS_RTOL = 1e-3  # as tests/test_train.py allows the compiled CPU path
COMPILE_LOGIT_ATOL = 1e-2  # logits are s = 30 times cosines: 3e-4 in cosine
COMPILE_GRAD_COSINE = 0.999

# scores on CUDA vs CPU from the same checkpoint. Exact fp32 on both: cuFFT vs pocketfft and other conv
# algorithms differ by ~1e-6 relative, ~1e-5 after the network, x30 in the ArcFace CE score.
IEEE_SCORE_ATOL, IEEE_COSINE_ATOL = 5e-3, 1e-4
# With PyTorch's defaults cuDNN convolutions run in TF32 (10-bit mantissa, ~5e-4 relative per product):
# ~1e-3 in the embedding and the cosine distance, x30 in the score.
TF32_SCORE_ATOL, TF32_SCORE_RTOL, TF32_COSINE_ATOL = 0.1, 1e-2, 5e-3
RANK_CORRELATION = 0.99  # Spearman correlation of the scores: the ranking (hence the AUC) is kept


@contextlib.contextmanager
def exact_fp32():
    """Plain IEEE fp32 on the GPU: TF32 off in matmuls and cuDNN (legacy flags set both conv and RNN, so they
    stay readable with either API), restored afterwards."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def batch(seconds: float = SECONDS, size: int = BATCH, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(wave (B, L), labels (B,))`` on the GPU: tones over noise at a recording's level, distinct class IDs."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(round(seconds * 16000)) / 16000
    f0 = 100 + 900 * torch.rand(size, 1, generator=g)
    wave = 0.05 * torch.sin(2 * torch.pi * f0 * t) + 0.02 * torch.randn(size, t.numel(), generator=g)
    labels = (torch.arange(size) * 5) % 41
    return wave.cuda(), labels.cuda()


def one_step(model: torch.nn.Module, loss: str, wave, labels, *, dtype=None, compile_=False, channels_last=False):
    """One forward + backward of ``Criterion`` (the trainer's model + loss), fixed λ and permutation.

    Returns ``(loss, logits, {name: grad})`` in fp32."""
    if channels_last:
        model.to(memory_format=torch.channels_last)
    criterion = Criterion(model, loss).cuda().train()
    run = torch.compile(criterion) if compile_ else criterion
    perm = torch.roll(torch.arange(len(labels)), 1).cuda()
    with torch.autocast("cuda", dtype=dtype) if dtype else contextlib.nullcontext():
        value, logits = run(wave, labels, LAM, perm)
    value.float().backward()
    grads = {n: p.grad.float().clone() for n, p in model.named_parameters() if p.grad is not None}
    return value.float().detach(), logits.float().detach(), grads


def grad_cosine(a: dict, b: dict) -> float:
    """Cosine similarity of two gradient sets, each flattened into one vector (same parameter names)."""
    assert a.keys() == b.keys() and a
    va, vb = (torch.cat([g[n].flatten() for n in sorted(a)]) for g in (a, b))
    return float(torch.nn.functional.cosine_similarity(va, vb, dim=0))


def fresh(name: str, seconds: float = SECONDS) -> torch.nn.Module:
    """``name`` with its published head, seed 0, on the GPU."""
    torch.manual_seed(0)
    return build_model(name, seconds=seconds).cuda()


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_bf16_training_step_matches_fp32(name: str):
    """One training step under bf16 autocast gives the fp32 step's loss, logits and gradient direction."""
    wave, labels = batch()
    loss = LOSS_OF[name]
    with exact_fp32():
        ref_loss, ref_logits, ref_grads = one_step(fresh(name), loss, wave, labels)
    model = fresh(name)
    dtypes = []
    first_conv = next(m for m in model.mobilefacenet.modules() if isinstance(m, torch.nn.Conv2d))
    hook = first_conv.register_forward_hook(lambda mod, inp, out: dtypes.append(out.dtype))
    bf_loss, bf_logits, bf_grads = one_step(model, loss, wave, labels, dtype=torch.bfloat16)
    hook.remove()
    assert dtypes == [torch.bfloat16], "the MobileFaceNet did not run in bf16 under autocast"
    assert torch.isfinite(bf_loss) and torch.isfinite(bf_logits).all()
    assert all(torch.isfinite(g).all() for g in bf_grads.values())
    assert abs(bf_loss - ref_loss) <= BF16_LOSS_RTOL * abs(ref_loss), (float(bf_loss), float(ref_loss))
    s = model.config["s"]
    assert (bf_logits - ref_logits).abs().max() / s <= BF16_COSINE_ATOL
    assert grad_cosine(bf_grads, ref_grads) >= BF16_GRAD_COSINE


def test_compiled_channels_last_step_matches_eager():
    """``torch.compile`` + channels-last (``train.compile``, ``train.channels_last``) computes the eager step.

    TASTgram-MFN + Noisy-ArcMix, the series' main model, with mixup; exact fp32 on both sides."""
    torch._dynamo.reset()
    wave, labels = batch()
    with exact_fp32():
        ref_loss, ref_logits, ref_grads = one_step(fresh("tastgram_mfn"), "noisy_arcmix", wave, labels)
        loss, logits, grads = one_step(fresh("tastgram_mfn"), "noisy_arcmix", wave, labels, compile_=True,
                                       channels_last=True)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1, "nothing was compiled (eager fallback?)"
    assert abs(loss - ref_loss) <= COMPILE_LOSS_RTOL * abs(ref_loss), (float(loss), float(ref_loss))
    assert (logits - ref_logits).abs().max() <= COMPILE_LOGIT_ATOL
    assert grad_cosine(grads, ref_grads) >= COMPILE_GRAD_COSINE


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """The procedural smoke set of one machine type (2-s clips; 7 IDs × 6 training clips, 4 development IDs ×
    4 + 4 test clips), decoded into a waveform cache."""
    root = tmp_path_factory.mktemp("cuda")
    generate_dataset(root / "data", size="smoke", machine_types=("fan",), workers=4, progress=False)
    return build_cache(index_dataset(root / "data"), seconds=SCORE_SECONDS, cache_dir=root / "cache",
                       progress=False)


def rows_of(cache, split: str) -> np.ndarray:
    return np.flatnonzero((cache.index.split == split).to_numpy())


@pytest.fixture(scope="module")
def checkpoints(cache, tmp_path_factory) -> dict:
    """For each scored model, a checkpoint after one epoch of training on the GPU (so the weights and BatchNorm
    statistics are not the initial ones and the scores spread)."""
    folder, out = tmp_path_factory.mktemp("ckpt"), {}
    for name in ("stgram_mfn", "tastgram_mfn"):
        model = fresh(name, SCORE_SECONDS)
        criterion = Criterion(model, LOSS_OF[name]).cuda()
        optimizer = make_optimizer(model, {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.01})
        loader = make_loader(cache, rows_of(cache, "train"), batch_size=8, shuffle=True, drop_last=True,
                             device=torch.device("cuda"))
        with exact_fp32():
            train_epoch(criterion, loader, optimizer, device=torch.device("cuda"), alpha=0.5,
                        rng=np.random.default_rng(0), progress=False)
        out[name] = save_model(folder / f"{name}.pt", model)
    return out


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Rank correlation of two score vectors."""
    ra, rb = (np.argsort(np.argsort(x)) for x in (a, b))
    return float(np.corrcoef(ra, rb)[0, 1])


@pytest.mark.parametrize("precision", ["exact_fp32", "default_tf32"])
@pytest.mark.parametrize("name", ["stgram_mfn", "tastgram_mfn"])
def test_inference_scores_on_cuda_match_cpu_scores(cache, checkpoints, name: str, precision: str):
    """``score_dataset`` (inference mode, pinned batches) on CUDA gives the CPU's scores of the same checkpoint;
    both Sgram front ends (STgram-MFN's and Noisy-ArcMix's log-mel)."""
    rows = rows_of(cache, "test")
    cpu = score_dataset(load_model(checkpoints[name]), cache, rows, device=torch.device("cpu"), batch_size=8,
                        progress=False)
    context = exact_fp32() if precision == "exact_fp32" else contextlib.nullcontext()
    with context:
        gpu = score_dataset(load_model(checkpoints[name], map_location="cuda"), cache, rows,
                            device=torch.device("cuda"), batch_size=8, progress=False)
    assert gpu.path.tolist() == cpu.path.tolist()
    assert cpu.score.std() > 0.01, "degenerate scores: the comparison would be trivial"
    score, ref = gpu.score.to_numpy(), cpu.score.to_numpy()
    cos, ref_cos = gpu.cosine_distance.to_numpy(), cpu.cosine_distance.to_numpy()
    if precision == "exact_fp32":
        np.testing.assert_allclose(score, ref, rtol=0, atol=IEEE_SCORE_ATOL)
        np.testing.assert_allclose(cos, ref_cos, rtol=0, atol=IEEE_COSINE_ATOL)
    else:
        np.testing.assert_allclose(score, ref, rtol=TF32_SCORE_RTOL, atol=TF32_SCORE_ATOL)
        np.testing.assert_allclose(cos, ref_cos, rtol=0, atol=TF32_COSINE_ATOL)
    assert spearman(score, ref) >= RANK_CORRELATION


@pytest.mark.parametrize("drop_last", [False, True])
def test_loader_with_workers_and_pinned_memory_yields_the_same_batches(cache, drop_last: bool):
    """``make_loader(..., device=cuda, num_workers=2)``: pinned batches, equal to the single-process loader's,
    epoch after epoch (reseeded as the trainer does), and unchanged by the asynchronous copy to the GPU."""
    rows, seed = rows_of(cache, "train"), 3
    kw = dict(batch_size=5, shuffle=True, seed=seed, drop_last=drop_last)
    ours = make_loader(cache, rows, num_workers=2, device=torch.device("cuda"), **kw)
    reference = make_loader(cache, rows, **kw)
    assert ours.pin_memory and not reference.pin_memory
    for epoch in range(2):
        for loader in (ours, reference):
            loader.generator.manual_seed(seed * 1000 + epoch)  # asdlib.training.loop._seed_epoch
        got, want = list(ours), list(reference)
        assert len(got) == len(want) == len(reference) > 0
        for (wave, labels, rows_), (ref_wave, ref_labels, ref_rows) in zip(got, want):
            assert wave.is_pinned() and labels.is_pinned()
            assert torch.equal(rows_, ref_rows) and torch.equal(labels, ref_labels) and torch.equal(wave, ref_wave)
            on_gpu = wave.to("cuda", non_blocking=True)
            assert torch.equal(on_gpu.cpu(), ref_wave)
    if not drop_last:  # every clip once per epoch
        assert sorted(torch.cat([r for _, _, r in got]).tolist()) == sorted(rows.tolist())

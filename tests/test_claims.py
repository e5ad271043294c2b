"""Claims: a notebook's sentence checked on its data; enforced at the default size, reported in smoke mode."""
from __future__ import annotations

import pytest

from asdlib.teaching import claims


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    monkeypatch.delenv("ASD_CLAIMS", raising=False)
    monkeypatch.delenv("ASD_SMOKE", raising=False)
    monkeypatch.setattr(claims, "CHECKED", [])


def test_a_true_claim_prints_its_words_and_evidence(capsys):
    assert claims.claim("fan is the hardest type", 0.71 < 0.80, "AUC 71.0 vs 80.0 %") is None
    assert claims.CHECKED[-1].holds
    assert capsys.readouterr().out.strip() == "✓ claim: fan is the hardest type (AUC 71.0 vs 80.0 %)"


def test_a_false_claim_fails_at_the_default_size():
    with pytest.raises(claims.ClaimError, match=r"no longer holds: the gain grows \(0.62 -> 0.41\)"):
        claims.claim("the gain grows", 0.41 > 0.62, "0.62 -> 0.41")
    assert claims.mode() == "enforce"


def test_smoke_mode_reports_without_enforcing(monkeypatch, capsys):
    monkeypatch.setenv("ASD_SMOKE", "1")
    claims.claim("the attention is uniform", False, "max deviation 3 %")
    assert not claims.CHECKED[-1].holds
    assert "✗ claim: the attention is uniform" in capsys.readouterr().out
    assert claims.summary() == "1 claims checked, 0 hold; not holding: the attention is uniform"


def test_the_environment_overrides_the_mode(monkeypatch):
    monkeypatch.setenv("ASD_SMOKE", "1")
    monkeypatch.setenv("ASD_CLAIMS", "enforce")
    with pytest.raises(claims.ClaimError):
        claims.claim("x", False)
    monkeypatch.setenv("ASD_CLAIMS", "sometimes")
    with pytest.raises(ValueError, match="ASD_CLAIMS='sometimes'"):
        claims.mode()


def test_numpy_conditions_count(capsys):
    np = pytest.importorskip("numpy")
    claims.claim("all positive", np.all(np.array([1, 2]) > 0))
    assert claims.CHECKED[-1].holds


def test_say_prints_outside_a_notebook(capsys):
    claims.say("Noisy-ArcMix − ArcFace = **−1.92** points")
    assert capsys.readouterr().out.strip() == "Noisy-ArcMix − ArcFace = **−1.92** points"


def _claim_notebook(folder):
    import nbformat
    cells = ["from asdlib.teaching import claims\ngains = [0.62, 1.6, 0.41]",
             "claims.claim('the gain grows with the number of checkpoints', gains[-1] > gains[0], "
             "f'{gains[0]} -> {gains[-1]}')"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in cells])
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    folder.mkdir()
    nbformat.write(nb, folder / "00_claims.ipynb")


@pytest.mark.parametrize("size", ["default", "smoke"])
def test_run_series_fails_on_a_false_claim_at_the_default_size_only(tmp_path, size):
    """The mechanism of ``make run``: a real runner process, a real kernel, a notebook whose claim is false."""
    import json
    import os
    import subprocess
    import sys

    _claim_notebook(tmp_path / "notebooks")
    run = ("import sys; from asdlib.teaching.series import run_series; sys.exit(run_series(data=sys.argv[1], "
           "build=sys.argv[2], size=sys.argv[3], notebooks=sys.argv[4]))")
    env = {k: v for k, v in os.environ.items() if k not in ("ASD_SMOKE", "ASD_CLAIMS")}
    done = subprocess.run([sys.executable, "-c", run, str(tmp_path / "data"), str(tmp_path / "build"), size,
                           str(tmp_path / "notebooks")], capture_output=True, text=True, env=env, timeout=300)
    if size == "default":
        assert done.returncode == 1, done.stderr
        assert "00_claims.ipynb, cell 2" in done.stderr and "ClaimError: this claim no longer holds: " \
            "the gain grows with the number of checkpoints (0.62 -> 0.41)" in done.stderr, done.stderr
    else:
        assert done.returncode == 0, done.stderr
        outputs = json.loads((tmp_path / "build" / "00_claims.ipynb").read_text())["cells"][1]["outputs"]
        assert "✗ claim: the gain grows" in "".join(outputs[0]["text"]) and "not enforced" in "".join(outputs[0]["text"])

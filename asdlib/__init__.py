"""asdlib: the helper package of the asd-notebooks series (anomalous sound detection, DCASE2020 Task 2).

Layers as subpackages, in data-flow order; a layer imports only from the layers before it
(``tests/test_layers.py`` reads every import and fails on an upward one):

1. :mod:`asdlib.data`: the DCASE vocabulary, audio, the index, the cache, the downloader, the procedural generator;
2. :mod:`asdlib.nn`: front ends (Sgram, Tgram), attention (SASgram, TAgram), MobileFaceNet, heads, the models;
3. :mod:`asdlib.training` (configs, losses, checkpoints, the loop) and :mod:`asdlib.evaluation` (scores,
   metrics, thresholds, baselines), side by side;
4. :mod:`asdlib.experiment`: composes the four for the command line and the notebooks;
5. :mod:`asdlib.teaching`: the series' layer (plots, widgets, exercises, reference runs, notebook helpers);
6. :mod:`asdlib.cli`: ``python -m asdlib``.

Importing has no side effects.

``REPO`` is the one place that names the GitHub repository: the notebooks' Colab install line
(``COLAB_INSTALL``) and their Colab badges must equal it (a test checks), and a fork changes it here, then runs
``python -m asdlib.teaching.nbtools retarget notebooks/[0-9][0-9]_*.ipynb``.
"""
__version__ = "0.1.0"

REPO = "asd-notebooks/asd-notebooks"  # GitHub "owner/name" of this repository
REPO_URL = f"https://github.com/{REPO}"
COLAB_INSTALL = f"asdlib @ git+{REPO_URL}"  # what the notebooks' setup cell pip-installs on Colab

"""asdlib: the helper package of the asd-notebooks series (anomalous sound detection, DCASE2020 Task 2).

Modules follow the data flow: ``dcase`` (vocabulary) -> ``data`` / ``cache`` / ``synth`` / ``download`` ->
``features`` -> ``models`` -> ``losses`` -> ``train`` -> ``scoring`` / ``metrics`` -> ``plots`` / ``widgets``,
and ``cli`` for ``python -m asdlib``. Importing has no side effects.

``REPO`` is the one place that names the GitHub repository: the notebooks' Colab install line
(``COLAB_INSTALL``) and their Colab badges must equal it (a test checks), and a fork changes it here, then runs
``python -m asdlib.nbtools retarget notebooks/[0-9][0-9]_*.ipynb``.
"""
__version__ = "0.1.0"

REPO = "asd-notebooks/asd-notebooks"  # GitHub "owner/name" of this repository
REPO_URL = f"https://github.com/{REPO}"
COLAB_INSTALL = f"asdlib @ git+{REPO_URL}"  # what the notebooks' setup cell pip-installs on Colab

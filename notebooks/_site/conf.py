"""Sphinx configuration of the course website (``make book``; built by ``notebooks/_site/build_book.py``).

Sphinx + MyST-NB + the Sphinx Book Theme, over notebooks that are already executed (``make run`` writes them to
``build/``): nothing is executed here. The site must work opened from disk without a network, so math is
rendered to MathML at build time (``mathml.py``, no MathJax), widget state is not embedded (the builder turns
saved progress bars into static HTML) and every asset is local.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the local "mathml" extension

project = "Anomalous machine-sound detection: a notebook course"
author = "the asd-notebooks contributors"
copyright = "the asd-notebooks contributors; code MIT, DCASE2020 audio CC BY-NC-SA 4.0"

extensions = ["myst_nb", "mathml"]
html_math_renderer = "mathml"
source_suffix = {".ipynb": "myst-nb", ".md": "myst-nb"}
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
root_doc = "index"

# MyST: $...$ / $$...$$ math, ::: fences, definition lists; GitHub-style anchors for "## headings", so that
# links such as glossary.md#arcface-margin-m-and-scale-s work on GitHub and on the site alike.
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_dmath_double_inline = True
myst_heading_anchors = 3

# MyST-NB: show the stored outputs, never run a kernel; no widget JavaScript (it would come from a CDN).
nb_execution_mode = "off"
nb_ipywidgets_js = {}
nb_render_markdown_format = "myst"
nb_merge_streams = True
nb_output_stderr = "show"

html_theme = "sphinx_book_theme"
html_title = "ASD notebook course"
html_static_path = ["_static"]
html_css_files = ["book.css"]
html_show_sourcelink = False
html_theme_options = {
    "repository_url": "https://github.com/asd-notebooks/asd-notebooks",
    "repository_branch": "main",
    "path_to_docs": "notebooks",  # launch links open notebooks/NN_topic.ipynb of the repository
    "use_repository_button": True,
    "use_download_button": True,
    "home_page_in_toc": True,
    "navbar_persistent": [],  # else the PyData theme adds a second search field in a header bar of its own
    "show_navbar_depth": 1,
    "launch_buttons": {"colab_url": "https://colab.research.google.com",
                       "binderhub_url": "https://mybinder.org",
                       "notebook_interface": "jupyterlab"},
}

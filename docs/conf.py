"""Sphinx configuration of the skmtl documentation.

Build with ``sphinx-build -W -b html docs docs/_build/html`` from the
repository root. Needs sphinx and numpydoc (``pip install -e .[docs]``);
nothing is downloaded and no example is executed.
"""

import os
import re
import sys

sys.path.insert(0, os.path.abspath(".."))

import skmtl

project = "skmtl"
author = "the skmtl developers"
copyright = "the skmtl developers"
version = release = skmtl.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
]

# Intersphinx stays off: the build must not need the network.
autosummary_generate = True
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"
# numpydoc renders the Parameters/Attributes sections; the class template
# lists the members, so numpydoc must not add a second table of them.
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
numpydoc_validation_checks = set()  # tests/test_docs.py validates docstrings

templates_path = ["_templates"]
exclude_patterns = ["_build", "reproduction.md"]
source_suffix = {".rst": "restructuredtext"}
root_doc = "index"

html_theme = "alabaster"
html_static_path = []
html_theme_options = {"description": "Multi-task deep learning, the scikit-learn way"}


# "(n_features_in_,)" in a type field reads, to docutils, as a reference to a
# target named "n_features_in". Quote such fitted-attribute names as literals
# until the docstrings write them with backticks, as scikit-learn's do.
_TRAILING_UNDERSCORE_NAME = re.compile(r"(?<![`\w])([A-Za-z]\w*_)(?=[,)\s])")


def _quote_fitted_names(app, what, name, obj, options, lines):
    for i, line in enumerate(lines):
        head, sep, shape = line.partition("shape (")
        if sep:
            lines[i] = head + sep + _TRAILING_UNDERSCORE_NAME.sub(r"``\1``", shape)


def _skip_foreign_members(app, what, name, obj, skip, options):
    """Document the members skmtl writes; scikit-learn and PyTorch own theirs."""
    if what != "class":
        return None
    target = obj.fget if isinstance(obj, property) else obj
    if not (getattr(target, "__module__", None) or "").startswith("skmtl"):
        return True
    return None


def setup(app):
    # Priority below numpydoc's default (500): runs on the raw docstring first.
    app.connect("autodoc-process-docstring", _quote_fitted_names, priority=100)
    app.connect("autodoc-skip-member", _skip_foreign_members)

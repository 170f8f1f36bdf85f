"""A search project's folder: what makes one, and the files the package keeps in it (no TensorFlow)."""

import os

PROJECT_MARKER = "oracle.json"  # KerasTuner's saved oracle: what makes a folder a search project
SEARCH_DEFINITION = "search.json"  # what the project's trials depend on (space, budget, base, oracle)


def is_project(folder):
    """Whether `folder` is a search project: KerasTuner's oracle state is there."""
    return os.path.isfile(os.path.join(folder, PROJECT_MARKER))

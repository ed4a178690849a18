"""Package layout (metadata lives in pyproject.toml).

Three import packages from one distribution: ``histo`` (the library, ``histo/``),
``napari_histo`` (the napari plugin, ``plugins/napari_histo/``) and ``histo_models``
(shipped weights and model cards, ``models/``).
"""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["histo", "histo.*"])
    + find_packages("plugins", include=["napari_histo", "napari_histo.*"])
    + ["histo_models"],
    package_dir={"napari_histo": "plugins/napari_histo", "histo_models": "models"},
)

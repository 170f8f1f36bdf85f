"""The study's claims rerun with the package (see README.md); run as `python -m experiments.run`."""

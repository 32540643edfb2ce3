"""Build hook only: metadata lives in pyproject.toml. Compiles the C core
(csrc/) into gridcore.backends.c._gridcore_c with the cffi builder named here."""

from setuptools import setup

setup(cffi_modules=["python/build_gridcore.py:ffibuilder"])

"""Build the Cython core; OCCYSTRAP_NO_EXTENSIONS=1 builds a pure-Python package."""
import glob
import os

from setuptools import Extension, setup


def extensions():
    if os.environ.get("OCCYSTRAP_NO_EXTENSIONS") == "1":
        return []
    from Cython.Build import cythonize

    # Hand-written .pyx modules, and the single-source twins: X.py is a symlink to the
    # pure-Python X_py.py (a copy in an sdist), compiled with the augmenting X.pxd
    # (docs/native.md).
    sources = sorted(glob.glob("occystrap/_native/*.pyx"))
    sources += ["occystrap/_native/%s.py" % name for name in ("globset", "tarstream")]
    modules = [
        Extension("occystrap._native." + os.path.splitext(os.path.basename(p))[0], [p],
                  extra_compile_args=["-O3"])
        for p in sources
    ]
    return cythonize(modules, compiler_directives={"language_level": "3",
                                                   "embedsignature": True})


setup(ext_modules=extensions())

"""Build the Cython core; OCCYSTRAP_NO_EXTENSIONS=1 builds a pure-Python package."""
import glob
import os

from setuptools import Extension, setup


def extensions():
    if os.environ.get("OCCYSTRAP_NO_EXTENSIONS") == "1":
        return []
    from Cython.Build import cythonize

    modules = [
        Extension("occystrap._native." + os.path.basename(p)[:-4], [p],
                  extra_compile_args=["-O3"])
        for p in sorted(glob.glob("occystrap/_native/*.pyx"))
    ]
    return cythonize(modules, compiler_directives={"language_level": "3",
                                                   "embedsignature": True})


setup(ext_modules=extensions())

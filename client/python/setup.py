"""Build hook: generates perturbd/_proto/ from ../../proto/perturbd/v1/perturbd.proto.

All metadata lives in pyproject.toml; this file only hooks the stub generation into egg_info
(which lists the package files before anything is built: metadata, wheels, editable installs),
build_py and sdist (so an sdist carries its stubs).
"""

import os
import sys

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.egg_info import egg_info
from setuptools.command.sdist import sdist

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import build_stubs  # noqa: E402


class BuildPyWithStubs(build_py):
    def run(self):
        build_stubs.generate()
        super().run()


class EggInfoWithStubs(egg_info):
    def run(self):
        build_stubs.generate()
        super().run()


class SdistWithStubs(sdist):
    def run(self):
        build_stubs.generate()
        super().run()


setup(cmdclass={"build_py": BuildPyWithStubs, "egg_info": EggInfoWithStubs,
                "sdist": SdistWithStubs})

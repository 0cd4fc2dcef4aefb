"""Build step of the package (pyproject.toml has the metadata): records where
`cmake --install` put libddps.so, read from the build tree's
install_manifest.txt (../build beside this folder, or $DDPS_BUILD_DIR), in
ddps/_installed.py, so that the installed package finds that library
without DDPS_LIBRARY. Nothing is compiled."""
import os

from setuptools import setup
from setuptools.command.build_py import build_py


def installed_library():
    """The libddps.so path of the last `cmake --install`, or None."""
    here = os.path.dirname(os.path.abspath(__file__))
    build = os.environ.get("DDPS_BUILD_DIR") or os.path.join(here, "..", "build")
    try:
        with open(os.path.join(build, "install_manifest.txt"), encoding="utf-8") as f:
            libs = [p.strip() for p in f if os.path.basename(p.strip()).startswith("libddps.so")]
    except OSError:
        return None
    libs.sort(key=lambda p: (os.path.basename(p) != "libddps.so", p))
    return libs[0] if libs else None


class BuildPy(build_py):
    def run(self):
        super().run()
        with open(os.path.join(self.build_lib, "ddps", "_installed.py"), "w", encoding="utf-8") as f:
            f.write('"""Written by setup.py: the library `cmake --install` installed."""\nLIBRARY = %r\n'
                    % installed_library())


setup(cmdclass={"build_py": BuildPy})

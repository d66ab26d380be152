"""Build script: compiles wsp._core with Cython unless WSP_NO_EXTENSIONS is set.

Environment:
  WSP_NO_EXTENSIONS=1  build and install the pure-Python core only
  WSP_DEBUG_BUILD=1    compile with bounds checks, asserts and -O0 -g
  WSP_SANITIZE=address compile and link with AddressSanitizer (gcc/clang; run the
                       result with the ASan runtime preloaded, see .ci/asan)
"""
import os

from setuptools import Extension, setup

NO_EXTENSIONS = bool(os.environ.get("WSP_NO_EXTENSIONS"))
DEBUG_BUILD = bool(os.environ.get("WSP_DEBUG_BUILD"))
SANITIZE = os.environ.get("WSP_SANITIZE", "")


def extensions():
    if NO_EXTENSIONS:
        return []
    from Cython.Build import cythonize

    compile_args = ["-O0", "-g", "-UNDEBUG"] if DEBUG_BUILD else ["-O2"]
    if os.name == "nt":
        compile_args = ["/Od", "/Zi"] if DEBUG_BUILD else ["/O2"]
    link_args = []
    if SANITIZE:
        if SANITIZE != "address":
            raise SystemExit(f"WSP_SANITIZE={SANITIZE!r}: only 'address' is supported")
        sanitize = ["-fsanitize=address", "-fno-omit-frame-pointer"]
        compile_args = compile_args + ["-g"] + sanitize
        link_args = sanitize
    import Cython

    core = Extension(
        "wsp._core",
        ["src/wsp/_core.pyx"],
        include_dirs=["src/wsp"],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
        # Recorded in the module for `wsp info` (wsp._core.build_info()).
        define_macros=[("WSP_CYTHON_VERSION", f'"{Cython.__version__}"'),
                       ("WSP_BUILD_FLAGS", '"' + " ".join(compile_args) + '"')],
    )
    return cythonize(
        [core],
        compiler_directives={
            "language_level": 3,
            "embedsignature": True,
            # Methods as plain method descriptors, not CyFunction objects:
            # calling one costs ~6 ns less, on every core operation.
            "binding": False,
            # Tables, queues and registries hold C state: never pickle them.
            "auto_pickle": False,
            "freethreading_compatible": True,
            "boundscheck": DEBUG_BUILD,
            "wraparound": DEBUG_BUILD,
            "initializedcheck": DEBUG_BUILD,
            "cdivision": True,
        },
        annotate=False,
    )


setup(ext_modules=extensions())

"""Build script: compiles wsp._core and the pure-Python-mode modules of the data
plane with Cython unless WSP_NO_EXTENSIONS is set.

The pure-Python-mode modules are the ones src/wsp/_compiled.py names: each is
compiled from its unchanged .py source, which is installed beside the
extension as its pure twin (wsp._selection picks one at import time).

Environment:
  WSP_NO_EXTENSIONS=1  build and install the pure-Python twins only
  WSP_DEBUG_BUILD=1    compile with bounds checks, asserts and -O0 -g
  WSP_SANITIZE=address compile and link with AddressSanitizer (gcc/clang; run the
                       result with the ASan runtime preloaded, see .ci/asan)
"""
import os
import runpy

from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
# Read by path: wsp itself cannot be imported before it is built.
COMPILED_MODULES = runpy.run_path(os.path.join(HERE, "src", "wsp", "_compiled.py"))[
    "COMPILED_MODULES"]

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
    # The data plane, compiled from the .py sources as they are.
    pure_mode = [
        Extension(name, ["src/" + name.replace(".", "/") + ".py"],
                  extra_compile_args=compile_args, extra_link_args=link_args)
        for name in COMPILED_MODULES
    ]
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
    ) + cythonize(
        pure_mode,
        # These sources are also run as plain Python, so every directive here
        # keeps Python's semantics; they differ from the core's where the
        # core's would not.
        compiler_directives={
            "language_level": 3,
            # CyFunctions: methods bind like Python functions, and
            # inspect.signature, __defaults__ and __qualname__ answer as they
            # do on the pure twin.
            "binding": True,
            # binding already gives real signatures; embedding one would
            # change every __doc__ (the pure twin's docstrings stay as written).
            "embedsignature": False,
            # Annotations are documentation in these modules: `ms: int` must
            # not turn into a C-level type check that the pure twin does not
            # make, nor `float` into a C double.  C types come only from what
            # says so outright (cython.declare, @cython.locals, or a function
            # marked @cython.annotation_typing(True)).
            "annotation_typing": False,
            "freethreading_compatible": True,
            # Plain-Python indexing (a[-1], a[i] out of range) must keep
            # raising or wrapping exactly as in the pure twin.
            "boundscheck": True,
            "wraparound": True,
            "cdivision": False,
        },
        annotate=False,
    )


setup(ext_modules=extensions())

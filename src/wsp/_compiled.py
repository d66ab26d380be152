"""The modules of the compiled data plane that are written once, in Cython's
pure-Python mode: each is one ``.py`` source that ``setup.py`` compiles to an
extension module beside it, and that runs as plain Python when it is not
compiled (a ``WSP_NO_EXTENSIONS=1`` build) or when the source twin is
selected at import time (see :mod:`wsp._selection`).

This list is the only place these modules are named.  ``setup.py`` reads this
file by path (it must not import wsp, which is not built yet), so it holds
data only: no imports, no code.  The compiled core ``wsp._core`` (a ``.pyx``
with its pure twin ``wsp._core_py``) is not on it: it is built and selected
on its own (``setup.py``, :mod:`wsp.core`).
"""

COMPILED_MODULES = (
    "wsp.spi.structs",
    "wsp.spi.handles",
    "wsp.spi.engine",
    "wsp.spi.ports",
    "wsp.sim.socket",
    "wsp.sim.data",
    "wsp.spi.clock",
    "wsp.sim.timed",
)

#: Which listed modules each compiled module cimports (its ``.pxd`` names
#: them): a compiled module reads the C fields of those modules' extension
#: types, so it can only run beside their compiled twins.  Loading one of them
#: from source therefore loads every module that cimports it, directly or
#: not, from source too (wsp._selection closes the set).
CIMPORTS = {
    "wsp.spi.structs": (),
    "wsp.spi.handles": (),
    "wsp.spi.ports": ("wsp.spi.handles",),
    "wsp.spi.engine": ("wsp.spi.structs", "wsp.spi.handles", "wsp.spi.ports"),
    "wsp.sim.socket": ("wsp.spi.engine",),
    "wsp.sim.data": ("wsp.sim.socket",),
    "wsp.spi.clock": (),
    "wsp.sim.timed": (),
}

# The allocation tracer's bootstrap, put first on PYTHONPATH by `tracer run` and `tracer env`.
# It starts the tracer's Python side and then runs the sitecustomize it hides, if there is one.
# It imports nothing but the tracer's own module (and `threading`, only for the profile stack source,
# which must follow new threads), so what the traced program measures is unchanged.
import sys

import _alloc_tracer

if _alloc_tracer.start(sys._getframe()):
    import threading

    # The profile stack source keeps its function installed in every thread; the program's own
    # sys.setprofile and threading.setprofile chain behind it (tracer/preload/src/python/profile.rs).
    _alloc_tracer.wrap_sys(sys)
    threading.setprofile(_alloc_tracer.thread_trampoline)

    def _threading_wrappers():
        def setprofile(func):
            _alloc_tracer.set_thread_profile(func)

        def getprofile():
            return _alloc_tracer.thread_profile()

        for wrapper, original in ((setprofile, threading.setprofile), (getprofile, threading.getprofile)):
            wrapper.__module__ = original.__module__
            wrapper.__doc__ = original.__doc__
        threading.setprofile, threading.getprofile = setprofile, getprofile

    _threading_wrappers()
    del _threading_wrappers


def _chain():
    here = __file__.rpartition("/")[0]
    saved = sys.path[:]
    sys.path[:] = [p for p in saved if p != here]
    me = sys.modules.pop("sitecustomize")
    try:
        import sitecustomize  # noqa: F401  (the next one on the path)
    except ImportError as e:
        if e.name != "sitecustomize":
            raise
    finally:
        sys.path[:] = saved
        # The import system reads the module back from sys.modules when this file finishes.
        sys.modules.setdefault("sitecustomize", me)


_chain()
del _chain

"""profkit's process hook, put first on PYTHONPATH by ``profkit record``.

Every Python process started under ``profkit record`` runs this. It only
installs a one-shot import hook: nothing of profkit (or torch) is imported
until the program itself imports torch, so processes that never do pay
nothing. Then it runs any other sitecustomize the environment had.
"""

import os
import sys


def _profkit_install_torch_hook():
    import importlib.abc
    import importlib.util

    class _TorchImportHook(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname, path=None, target=None):
            if fullname != "torch":
                return None
            sys.meta_path.remove(self)  # one shot; also keeps the lookup below from recursing
            spec = importlib.util.find_spec("torch")
            if spec is None or spec.loader is None:
                return spec
            exec_torch = spec.loader.exec_module

            def exec_module(module):
                exec_torch(module)
                _profkit_start()

            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, _TorchImportHook())


def _profkit_start():
    try:
        extra = os.environ.get("PROFKIT_PATH")
        if extra and extra not in sys.path:
            sys.path.append(extra)
        from profkit.collectors.autostart import start_from_env
    except Exception as exc:  # profkit itself unavailable: never break the user's program
        sys.stderr.write(f"profkit: not recording this process ({type(exc).__name__}: {exc})\n")
        return
    start_from_env()


def _profkit_chain_sitecustomize():
    """Run the sitecustomize this one shadows, if the environment has one."""
    import importlib.machinery

    here = os.path.dirname(os.path.abspath(__file__))
    others = [p for p in sys.path if os.path.abspath(p or ".") != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", others)
    if spec is not None and spec.loader is not None and spec.origin != os.path.abspath(__file__):
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)


if os.environ.get("PROFKIT_RECORD"):
    _profkit_install_torch_hook()
_profkit_chain_sitecustomize()

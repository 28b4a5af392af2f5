"""waikan (外刊): foreign news pages into Chinese digest posts.

The public API is what ``__all__`` lists; everything else may change.

Its members load on first use (PEP 562): every ``waikan`` command imports this
package, and loading extraction (trafilatura, py3langid) and the store
(SQLAlchemy) up front cost ``waikan --help`` ~0.6 s.
"""

import typing as _typing

if _typing.TYPE_CHECKING:
    from waikan.config import Config
    from waikan.config import load as load_config
    from waikan.errors import WaikanError
    from waikan.extract import extract
    from waikan.models import Extracted, Post, Status, Summary
    from waikan.render import render_post
    from waikan.store import Store, open_store

    __version__: str

__all__ = [
    "Config",
    "Extracted",
    "Post",
    "Status",
    "Store",
    "Summary",
    "WaikanError",
    "__version__",
    "extract",
    "load_config",
    "open_store",
    "render_post",
]

_WHERE = {
    "extract": ("waikan.extract.core", "extract"),
    "Config": ("waikan.config", "Config"),
    "load_config": ("waikan.config", "load"),
    "WaikanError": ("waikan.errors", "WaikanError"),
    "Extracted": ("waikan.models", "Extracted"),
    "Post": ("waikan.models", "Post"),
    "Status": ("waikan.models", "Status"),
    "Summary": ("waikan.models", "Summary"),
    "render_post": ("waikan.render", "render_post"),
    "Store": ("waikan.store", "Store"),
    "open_store": ("waikan.store", "open_store"),
}


def _version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("waikan")
    except importlib.metadata.PackageNotFoundError:  # a source tree that was not installed
        return "0.0.0"


def __getattr__(name: str) -> object:
    if name == "__version__":
        value: object = _version()
    elif name in _WHERE:
        module, attr = _WHERE[name]
        value = getattr(__import__(module, fromlist=[attr]), attr)
    else:
        raise AttributeError(f"module 'waikan' has no attribute {name!r}")
    globals()[name] = value  # once: later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


# ``waikan.extract`` is the function, as when it was imported eagerly. Importing a
# subpackage binds it on its parent once, when it first loads: load the (light)
# ``waikan.extract`` subpackage now and drop that binding, so ``__getattr__`` serves the
# function and a later ``import waikan.extract.core`` does not replace it.
__import__("waikan.extract")
del globals()["extract"]

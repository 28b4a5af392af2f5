"""waikan (外刊): foreign news pages into Chinese digest posts.

The public API is what ``__all__`` lists; everything else may change.
"""

import importlib.metadata as _metadata

from waikan.config import Config
from waikan.config import load as load_config
from waikan.errors import WaikanError
from waikan.extract import extract
from waikan.models import Extracted, Post, Status, Summary
from waikan.render import render_post
from waikan.store import Store, open_store

try:
    __version__ = _metadata.version("waikan")
except _metadata.PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0"

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

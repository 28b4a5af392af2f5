"""Lead images for the site: fetched through :mod:`waikan.fetch`, served locally.

Foreign image CDNs are often unreachable for the readers, so the site serves
its own copy. The download goes through the same SSRF guard and size cap as
pages, and only raster formats recognised by their magic bytes are kept: an
SVG (which can carry script) or an HTML error page never reaches the site.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from waikan.config import Config
from waikan.errors import FetchError
from waikan.fetch import Fetched, fetch
from waikan.render._files import write_bytes

MEDIA_DIR = "media"
_EXTENSIONS = (".jpg", ".png", ".gif", ".webp", ".avif")

Fetcher = Callable[[str], Fetched]


def sniff(data: bytes) -> str | None:
    """The file extension of a raster image, from its first bytes; None for anything else."""
    if data.startswith(b"\xff\xd8\xff"):
        return ".jpg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return ".png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return ".gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    if data[4:12] in (b"ftypavif", b"ftypavis"):
        return ".avif"
    return None


def is_http(url: str | None) -> bool:
    return bool(url) and str(url).lower().startswith(("http://", "https://"))


def config_fetcher(config: Config) -> Fetcher:
    def get(url: str) -> Fetched:
        return fetch(
            url,
            max_bytes=int(config["site.image_max_bytes"]),
            timeout=float(config["fetch.timeout"]),
            user_agent=str(config["fetch.user_agent"]),
            allow_private=bool(config["fetch.allow_private_networks"]),
            max_redirects=int(config["fetch.max_redirects"]),
        )

    return get


@dataclass
class Images:
    """Downloads into ``out/media`` once per URL; what failed is reported, not fatal."""

    out: Path
    fetcher: Fetcher | None
    warnings: list[str]

    def local(self, url: str | None) -> str | None:
        """Path of the image under the site root, downloading it if needed; None without one."""
        if not url or not is_http(url):
            return None
        stem = hashlib.sha256(url.encode("utf-8")).hexdigest()[:24]
        folder = self.out / MEDIA_DIR
        for ext in _EXTENSIONS:
            if (folder / f"{stem}{ext}").is_file():
                return f"{MEDIA_DIR}/{stem}{ext}"
        if self.fetcher is None:
            return None
        try:
            got = self.fetcher(url)
        except FetchError as exc:
            self.warnings.append(f"lead image left out: {exc}")
            return None
        kind = sniff(got.content)
        if kind is None:
            self.warnings.append(f"lead image left out: {url}: not a JPEG, PNG, GIF, WebP or AVIF")
            return None
        write_bytes(folder / f"{stem}{kind}", got.content)
        return f"{MEDIA_DIR}/{stem}{kind}"

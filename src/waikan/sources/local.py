"""Sources that hold the pages themselves: WARC files (e.g. CC-NEWS) and folders of HTML.

No network is involved: a WARC ``response`` record with an HTML payload, or an
HTML file, is one page. Pages are yielded one at a time, so a multi-gigabyte
WARC file never sits in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from waikan.errors import InputError

__all__ = ["LocalPage", "iter_dir", "iter_warc", "local_kind"]

HTML_SUFFIXES = (".html", ".htm", ".html.gz", ".htm.gz", ".xhtml")
WARC_SUFFIXES = (".warc", ".warc.gz", ".arc", ".arc.gz")


@dataclass(frozen=True)
class LocalPage:
    """One page: ``key`` identifies it inside its source (the record URI or file path)."""

    key: str
    url: str | None
    content: bytes
    status_code: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    path: Path | None = None


def local_kind(ref: str) -> str | None:
    """``dir`` or ``warc`` when ``ref`` is a local folder or WARC file, else None."""
    if ref.startswith(("http://", "https://")):
        return None
    path = Path(ref).expanduser()
    if path.is_dir():
        return "dir"
    if path.name.lower().endswith(WARC_SUFFIXES):
        return "warc"
    return None


def iter_warc(path: Path, max_bytes: int) -> Iterator[LocalPage]:
    """HTML ``response`` records with status 200; raises InputError on a broken file."""
    from warcio.archiveiterator import ArchiveIterator
    from warcio.exceptions import ArchiveLoadFailed

    try:
        fh = path.open("rb")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    count = 0
    with fh:
        try:
            for record in ArchiveIterator(fh):
                if record.rec_type != "response" or record.http_headers is None:
                    continue
                status = record.http_headers.get_statuscode()
                ctype = (record.http_headers.get_header("Content-Type") or "").lower()
                if status != "200" or "html" not in ctype:
                    continue
                uri = record.rec_headers.get_header("WARC-Target-URI") or ""
                content = record.content_stream().read(max_bytes + 1)
                if len(content) <= max_bytes and int(getattr(record.raw_stream, "limit", 0) or 0):
                    raise EOFError(f"record {uri} ends early")  # warcio reads a cut file quietly
                count += 1
                if len(content) > max_bytes or not uri:
                    continue
                headers = {k.lower(): v for k, v in record.http_headers.headers}
                yield LocalPage(uri, uri, content, 200, headers)
        except ArchiveLoadFailed as exc:
            first = str(exc).splitlines()[0] if str(exc) else "unreadable record"
            raise InputError(f"{path}: not a valid WARC file ({first})") from None
        except Exception as exc:  # warcio and zlib raise many kinds on a cut or corrupt file
            raise InputError(
                f"{path}: truncated or corrupt WARC file after {count} pages "
                f"({type(exc).__name__}: {exc})"
            ) from None


def iter_dir(path: Path) -> Iterator[Path]:
    """HTML files of a folder (recursively), in name order."""
    if not path.is_dir():
        raise InputError(f"{path}: not a folder")
    yield from sorted(
        p for p in path.rglob("*") if p.is_file() and p.name.lower().endswith(HTML_SUFFIXES)
    )

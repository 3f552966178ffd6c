"""Safety limits for reading and rasterising untrusted paper bundles.

One frozen dataclass so a worker, the CLI and the Dagster asset all apply the same caps, and a test can
tighten them without monkeypatching module globals.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    max_members: int = 5000  # tar members read per bundle (a tar bomb stops here)
    max_member_bytes: int = 64 << 20  # one member's decompressed size
    max_total_bytes: int = 512 << 20  # the whole bundle's decompressed size (a gzip bomb stops here)
    max_pixels: int = 50_000_000  # raster images declaring more pixels are refused before decoding
    max_side: int = 512  # long side of stored images, in pixels
    render_timeout_s: float = 20  # one Ghostscript / poppler subprocess
    paper_timeout_s: float = 120  # wall clock for one paper in a worker process
    paper_memory_bytes: int = 2 << 30  # RLIMIT_AS of a worker process
    max_page_inches: float = 100  # PDF/EPS pages larger than this on either side are refused


DEFAULT_LIMITS = Limits()

"""Hostile content planted in a few sample papers: bombs, broken images, dangerous tar members.

Every later stage must meet these and record a reason instead of crashing. They are kept small on disk:
the gzip bomb is about 1 MB compressed for 1 GiB of zeros, the pixel bomb is a few hundred bytes.
"""

import struct
import tarfile
import zlib

BOMB_BYTES = 1 << 30  # decompressed size of the gzip bomb: far beyond any sane per-paper cap
_BLOCK = 1 << 20


def gzip_bomb(prefix: bytes, suffix: bytes, zeros: int = BOMB_BYTES, fname: bytes = b"") -> bytes:
    """A valid gzip of `prefix + zeros * b"\\0" + suffix`, built without compressing `zeros` bytes.

    After a full flush deflate restarts from an empty window, so every 1 MiB block of zeros compresses to
    the same bytes: compress it once and repeat it. The CRC still has to see every byte (fast: ~0.3 s/GiB).
    """
    if zeros % _BLOCK:
        raise ValueError("zeros must be a multiple of 1 MiB")
    comp = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    head = comp.compress(prefix) + comp.flush(zlib.Z_FULL_FLUSH)
    block = comp.compress(bytes(_BLOCK)) + comp.flush(zlib.Z_FULL_FLUSH)
    tail = comp.compress(suffix) + comp.flush(zlib.Z_FINISH)
    zero_block = bytes(_BLOCK)
    crc = zlib.crc32(prefix)
    for _ in range(zeros // _BLOCK):
        crc = zlib.crc32(zero_block, crc)
    crc = zlib.crc32(suffix, crc)
    flags = 0x08 if fname else 0
    header = b"\x1f\x8b\x08" + bytes([flags]) + b"\x00\x00\x00\x00" + b"\x02\xff"
    if fname:
        header += fname + b"\x00"
    size = len(prefix) + zeros + len(suffix)
    return (header + head + block * (zeros // _BLOCK) + tail
            + struct.pack("<II", crc & 0xFFFFFFFF, size & 0xFFFFFFFF))


def tar_bomb_parts(main_tex: bytes, zeros: int = BOMB_BYTES, mtime: int = 0) -> tuple[bytes, bytes]:
    """(prefix, suffix) of a tar holding `main.tex` and `data/zeros.bin` of `zeros` bytes, for gzip_bomb."""
    def header(name: str, size: int) -> bytes:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = size, mtime, 0o644
        info.uid = info.gid = 1000
        info.uname = info.gname = "author"
        return info.tobuf(format=tarfile.GNU_FORMAT)

    pad = (-len(main_tex)) % 512
    prefix = header("main.tex", len(main_tex)) + main_tex + bytes(pad) + header("data/zeros.bin", zeros)
    suffix = bytes(1024)  # two zero blocks end the archive (zeros is a multiple of 512: no padding)
    return prefix, suffix


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def pixel_bomb_png(width: int = 30000, height: int = 30000) -> bytes:
    """A PNG whose header declares width x height (900 Mpx) with only a few rows of data: a decoder that
    trusts the header allocates gigabytes; Pillow refuses it at open (DecompressionBombError)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    rows = zlib.compress(bytes(8 * (1 + (width + 7) // 8)), 9)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", rows) + _chunk(b"IEND", b"")


def truncated(data: bytes, keep: float = 0.55) -> bytes:
    """The first part of a file, as an interrupted upload leaves it."""
    return data[: max(64, int(len(data) * keep))]


APPLEDOUBLE = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + bytes(24) + b"ATTR\x00\x00\x00\x00"

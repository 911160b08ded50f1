"""Compression bombs: small gzip/zlib bodies that decompress to a huge run of zeros."""

from __future__ import annotations

import struct
import zlib

_MB = 1 << 20


def zeros_bomb(megabytes: int, container: str = "gzip") -> bytes:
    """One valid gzip (or zlib) stream of ``megabytes`` MB of zeros, about 1 KB per MB.

    Compressing a gigabyte takes seconds; after a full flush the deflate state is reset, so the
    compressed block of one megabyte of zeros is repeated instead, and the trailer's checksum
    computed over the whole content.
    """
    wbits = 16 + zlib.MAX_WBITS if container == "gzip" else zlib.MAX_WBITS
    zeros = bytes(_MB)
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    head = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    final = compressor.flush()  # an empty final block, then the trailer
    body = final[: len(final) - (8 if container == "gzip" else 4)]
    if container == "gzip":
        crc = 0
        for _ in range(megabytes):
            crc = zlib.crc32(zeros, crc)
        trailer = struct.pack("<II", crc, (megabytes * _MB) & 0xFFFFFFFF)
    else:
        adler = 1
        for _ in range(megabytes):
            adler = zlib.adler32(zeros, adler)
        trailer = struct.pack(">I", adler)
    return head + block * (megabytes - 1) + body + trailer

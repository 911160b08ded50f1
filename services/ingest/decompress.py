"""Bounded, streaming decoding of compressed request bodies (``Content-Encoding``).

Segment's libraries send ``Content-Encoding: gzip`` bodies; ``deflate`` (zlib, or raw deflate
as some clients send it) is accepted too. The decoder is fed the body chunk by chunk as it
arrives and never produces more than ``limit`` decompressed bytes: the chunk that would cross
the limit stops it with 413, so a compression bomb costs at most ``limit`` bytes of memory and
the CPU time of decompressing them.
"""

from __future__ import annotations

import zlib

from services.ingest.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

ENCODINGS = ("gzip", "x-gzip", "deflate")
_GZIP_WBITS = 16 + zlib.MAX_WBITS
_ZLIB_WBITS = zlib.MAX_WBITS
_RAW_WBITS = -zlib.MAX_WBITS


def parse_content_encoding(header: str | None) -> str | None:
    """The one coding to undo (``gzip`` or ``deflate``), or None for an uncompressed body.

    ``identity`` is ignored; an unknown coding, or more than one coding applied in sequence,
    is refused with 415.
    """
    if not header:
        return None
    codings = [c.strip().lower() for c in header.split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if not codings:
        return None
    if len(codings) > 1:
        raise UnsupportedMediaType(
            f"only one Content-Encoding is supported, got {header!r}", field="Content-Encoding"
        )
    coding = codings[0]
    if coding not in ENCODINGS:
        raise UnsupportedMediaType(
            f"Content-Encoding {coding!r} is not supported (gzip, deflate or identity)",
            field="Content-Encoding",
        )
    return "gzip" if coding == "x-gzip" else coding


def _looks_like_zlib(head: bytes) -> bool:
    """RFC 1950: CM = 8 and the 16-bit header is a multiple of 31."""
    return len(head) >= 2 and head[0] & 0x0F == 8 and ((head[0] << 8) | head[1]) % 31 == 0


class BoundedDecoder:
    """Decompresses one body incrementally, refusing more than ``limit`` decompressed bytes.

    ``feed`` each received chunk, then ``finish``; both return the decompressed bytes produced.
    Corrupt or truncated data raises ``BadRequest`` (reason ``invalid_encoding``), output past
    the limit ``PayloadTooLarge`` (reason ``size_violation``).
    """

    def __init__(self, encoding: str, limit: int) -> None:
        if encoding not in ("gzip", "deflate"):
            raise ValueError(f"unsupported encoding {encoding!r}")
        self.encoding = encoding
        self.limit = limit
        self.produced = 0
        self.compressed = 0
        self._head = b""  # deflate: the first bytes, until zlib and raw can be told apart
        self._decoder: zlib._Decompress | None = None
        if encoding == "gzip":
            self._decoder = zlib.decompressobj(_GZIP_WBITS)

    def _corrupt(self, detail: str) -> BadRequest:
        return BadRequest(
            f"the {self.encoding} body cannot be decompressed: {detail}",
            field="body",
            reason="invalid_encoding",
        )

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"the decompressed request body is larger than {self.limit} bytes", field="body"
        )

    def feed(self, chunk: bytes) -> bytes:
        self.compressed += len(chunk)
        if self._decoder is None:
            self._head += chunk
            if len(self._head) < 2:
                return b""
            wbits = _ZLIB_WBITS if _looks_like_zlib(self._head) else _RAW_WBITS
            self._decoder = zlib.decompressobj(wbits)
            chunk, self._head = self._head, b""
        return self._run(chunk)

    def _run(self, data: bytes) -> bytes:
        assert self._decoder is not None
        out: list[bytes] = []
        while data:
            decoder = self._decoder
            if decoder.eof:
                # gzip allows several members one after another (RFC 1952 §2.2).
                if self.encoding != "gzip":
                    raise self._corrupt("data after the end of the compressed stream")
                decoder = self._decoder = zlib.decompressobj(_GZIP_WBITS)
            try:
                # At most one byte past the limit: enough to know it is crossed.
                piece = decoder.decompress(data, self.limit - self.produced + 1)
            except zlib.error as exc:
                raise self._corrupt(str(exc)) from None
            self.produced += len(piece)
            if self.produced > self.limit:
                raise self._too_large()
            out.append(piece)
            data = decoder.unconsumed_tail or decoder.unused_data
            if not piece and decoder.unconsumed_tail:
                # No progress although input is left: cannot happen with a valid stream.
                raise self._corrupt("the decoder made no progress")
        return b"".join(out)

    def finish(self) -> bytes:
        if self.compressed == 0:
            return b""  # an empty body, whatever its declared coding
        if self._decoder is None:
            raise self._corrupt("the body is too short")
        try:
            rest = self._decoder.flush()
        except zlib.error as exc:
            raise self._corrupt(str(exc)) from None
        self.produced += len(rest)
        if self.produced > self.limit:
            raise self._too_large()
        if not self._decoder.eof:
            raise self._corrupt("the compressed stream is truncated")
        return rest

"""The bounded streaming decoder of compressed request bodies."""

from __future__ import annotations

import gzip
import time
import tracemalloc
import zlib

import pytest

from services.ingest.decompress import BoundedDecoder, parse_content_encoding
from services.ingest.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from tests.support.bombs import zeros_bomb

BODY = (
    b'{"batch": [' + b",".join(b'{"type": "track", "event": "E%d"}' % i for i in range(500)) + b"]}"
)


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def decode(encoding: str, data: bytes, limit: int = 1 << 20, chunk: int = 4096) -> bytes:
    decoder = BoundedDecoder(encoding, limit)
    out = [decoder.feed(data[i : i + chunk]) for i in range(0, len(data), chunk)]
    return b"".join(out) + decoder.finish()


@pytest.mark.parametrize(
    ("encoding", "compressed"),
    [
        ("gzip", gzip.compress(BODY)),
        ("deflate", zlib.compress(BODY)),
        ("deflate", raw_deflate(BODY)),
    ],
    ids=["gzip", "zlib", "raw-deflate"],
)
@pytest.mark.parametrize("chunk", [1, 7, 4096, 1 << 20])
def test_round_trip_in_any_chunking(encoding: str, compressed: bytes, chunk: int) -> None:
    assert decode(encoding, compressed, chunk=chunk) == BODY


def test_gzip_members_are_concatenated() -> None:
    assert decode("gzip", gzip.compress(b"ab") + gzip.compress(b"cd")) == b"abcd"


def test_exactly_at_the_limit_is_accepted_one_byte_more_is_not() -> None:
    data = bytes(1000)
    assert decode("gzip", gzip.compress(data), limit=1000) == data
    with pytest.raises(PayloadTooLarge) as info:
        decode("gzip", gzip.compress(data + b"x"), limit=1000)
    assert info.value.http_status == 413 and info.value.field == "body"


@pytest.mark.parametrize("container", ["gzip", "zlib"])
def test_a_bomb_stops_at_the_limit_in_the_first_chunk(container: str) -> None:
    bomb = zeros_bomb(1024, container)  # 1 GB of zeros in about 1 MB
    assert len(bomb) < 1_100_000
    encoding = "gzip" if container == "gzip" else "deflate"
    decoder = BoundedDecoder(encoding, 500 * 1024)
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(PayloadTooLarge):
        for i in range(0, len(bomb), 65536):
            decoder.feed(bomb[i : i + 65536])
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # Nothing past the limit was decompressed, from the first chunk of input.
    assert decoder.produced == 500 * 1024 + 1
    assert decoder.compressed == 65536
    assert peak < 4 << 20, peak
    assert elapsed < 1.0


@pytest.mark.parametrize(
    ("encoding", "data", "detail"),
    [
        ("gzip", b"this is not gzip at all", "cannot be decompressed"),
        ("gzip", gzip.compress(BODY)[:-20], "truncated"),
        ("gzip", gzip.compress(BODY)[:-4] + b"\0\0\0\0", "cannot be decompressed"),
        ("gzip", gzip.compress(BODY) + b"trailing", "cannot be decompressed"),
        ("deflate", zlib.compress(BODY) + b"x", "after the end"),
        ("deflate", b"\xff\xff\xff\xff", "cannot be decompressed"),
        ("deflate", b"x", "too short"),
    ],
)
def test_corrupt_data_is_a_bad_request(encoding: str, data: bytes, detail: str) -> None:
    with pytest.raises(BadRequest) as info:
        decode(encoding, data)
    assert info.value.http_status == 400
    assert info.value.reason == "invalid_encoding"
    assert detail in info.value.message


def test_an_empty_body_decodes_to_nothing() -> None:
    assert decode("gzip", b"") == b""


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("identity", None),
        ("gzip", "gzip"),
        ("GZIP", "gzip"),
        ("x-gzip", "gzip"),
        (" deflate ", "deflate"),
        ("gzip, identity", "gzip"),
    ],
)
def test_content_encoding_header(header: str | None, expected: str | None) -> None:
    assert parse_content_encoding(header) == expected


@pytest.mark.parametrize("header", ["br", "zstd", "compress", "gzip, gzip", "deflate, gzip"])
def test_unsupported_content_encoding(header: str) -> None:
    with pytest.raises(UnsupportedMediaType) as info:
        parse_content_encoding(header)
    assert info.value.http_status == 415
    assert info.value.reason == "unsupported_encoding"

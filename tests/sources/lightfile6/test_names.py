from datetime import datetime, timezone

import pytest

from sluiceway.errors import BadRequest, Unauthorized
from sluiceway.sources.lightfile6.names import (
    UniqueClock,
    check_uri,
    check_user,
    content_type,
    metadata_value,
    specimen_name,
    split_uri,
)


def test_user_checks():
    assert check_user(b"testuser") == "testuser"
    assert check_user("taro\u5927".encode()) == "taro\u5927"
    assert check_user(b"alice@example.com") == "alice@example.com"
    for bad in (None, b"", b"   "):
        with pytest.raises(Unauthorized, match="USER_TOKEN header is required"):
            check_user(bad)
    for bad in (b"a/b", b"../x", b"..", b".", b"a\\b", b"a\x00b", b"\xff\xfe", b"x" * 300):
        with pytest.raises(BadRequest):
            check_user(bad)


def test_uri_checks():
    assert check_uri("http://example.com/test file.png") == "http://example.com/test file.png"
    for bad in (None, "", "a\nb", "x" * 5000):
        with pytest.raises(BadRequest):
            check_uri(bad)


@pytest.mark.parametrize("uri,base,ext", [
    ("http://example.com/test.png", "test", ".png"),
    ("http://example.com/a.png?x=1", "a", ".png"),  # the original leaked "?x=1" into the extension
    ("http://example.com/a.PNG#frag", "a", ".png"),
    ("http://example.com/test file.png", "test_file", ".png"),
    ("https://x.test/Screenshot", "Screenshot", ".png"),
    ("https://x.test/page", "page", ""),
    ("../../etc/passwd", "passwd", ""),
    ("..", "specimen", ""),
    ("a:b?c&d=e%f#g.txt", "b", ""),  # "a:" is a scheme
    ("http://example.com/", "specimen", ""),
    ("report.tar.gz", "report.tar", ".gz"),
])
def test_split_uri(uri, base, ext):
    assert split_uri(uri) == (base, ext)


def test_specimen_name_shape():
    t = datetime(2025, 6, 14, 1, 2, 3, 456789, tzinfo=timezone.utc)
    name, ext = specimen_name("testuser", "http://example.com/test.txt", t, 1749862923456789000)
    assert name == "testuser/2025/06/14/test.1749862923456789000.txt" and ext == ".txt"


def test_content_type_prefers_a_specific_header():
    assert content_type("image/webp", ".png") == "image/webp"
    assert content_type("", ".png") == "image/png"
    assert content_type("application/x-www-form-urlencoded", ".jpg") == "image/jpeg"  # curl -d default
    assert content_type("application/octet-stream", ".log") == "text/plain"
    assert content_type("", ".unknown") == "application/octet-stream"


def test_metadata_value_is_header_safe():
    assert metadata_value("http://e.com/a b.png?x=1") == "http://e.com/a b.png?x=1"
    assert metadata_value("http://e.com/\u00e9") == "http://e.com/%C3%A9"


def test_unique_clock_never_repeats_and_carries_the_worker():
    clock = UniqueClock(worker=7)
    seen = [clock.next() for _ in range(2000)]
    stamps = [ns for _, ns in seen]
    assert len(set(stamps)) == len(stamps) and stamps == sorted(stamps)
    assert all(ns % 1000 == 7 for ns in stamps)
    t, ns = seen[0]
    assert t.tzinfo is not None and int(t.timestamp() * 1_000_000) == ns // 1000

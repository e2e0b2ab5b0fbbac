"""The local landing zone and its refusal of path tricks."""

import pytest

from finops_assets.resources.landing import (
    LandingKeyError,
    LocalLandingZone,
    landing_zone_from_url,
    safe_key,
)


@pytest.mark.parametrize("key", ["../secret", "a/../../b", "/etc/passwd", "a\\..\\b", "", "C:/x"])
def test_keys_cannot_escape_the_root(key):
    with pytest.raises(LandingKeyError):
        safe_key(key)


def test_key_normalization_inside_root():
    assert safe_key("a/./b//c") == "a/b/c"
    assert safe_key("x.parquet", base="focus/d1") == "focus/d1/x.parquet"
    with pytest.raises(LandingKeyError, match="escapes its delivery folder"):
        safe_key("../d2/x.parquet", base="focus/d1")


def test_local_zone_lists_stats_and_reads(tmp_path):
    (tmp_path / "focus" / "a").mkdir(parents=True)
    (tmp_path / "focus" / "a" / "f.csv").write_text("x\n1\n")
    (tmp_path / "other.txt").write_text("o")
    zone = LocalLandingZone(root=str(tmp_path))
    assert [o.key for o in zone.list("focus")] == ["focus/a/f.csv"]
    assert zone.stat("focus/a/f.csv").size == 4
    assert zone.stat("focus/missing.csv") is None
    assert zone.read_bytes("focus/a/f.csv") == b"x\n1\n"
    with zone.local_files(["focus/a/f.csv"]) as paths:
        assert paths == {"focus/a/f.csv": str(tmp_path / "focus" / "a" / "f.csv")}


def test_symlink_out_of_the_root_is_refused(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    root = tmp_path / "landing"
    root.mkdir()
    (root / "link.txt").symlink_to(outside)
    with pytest.raises(LandingKeyError, match="outside the landing root"):
        LocalLandingZone(root=str(root)).read_bytes("link.txt")


def test_unsupported_urls_are_explained():
    with pytest.raises(ValueError, match="ftp://x"):
        landing_zone_from_url("ftp://x")

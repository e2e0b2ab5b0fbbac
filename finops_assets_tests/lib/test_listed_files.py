"""ListedFiles: the one check every provider's manifest goes through (listed once, a data format,
present, not empty), with the message naming the manifest, the entry and the fix."""

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from finops_assets.lib.deliveries import DeliveryError, DeliveryFile, ListedFiles

WHERE = "landing/x/manifest.json"
FIX = "re-copy it."


@dataclass(frozen=True)
class Obj:
    key: str
    size: int
    modified: datetime = datetime(2026, 11, 1, tzinfo=UTC)


def listed(*objects: Obj, skip_empty: bool = False) -> ListedFiles:
    return ListedFiles({o.key: o for o in objects}, WHERE, FIX, skip_empty=skip_empty)


def test_resolves_each_listed_file_with_its_format_and_size():
    files = listed(Obj("p/a.parquet", 10), Obj("p/b.csv.gz", 5))
    files.add("p/a.parquet", "'a.parquet'")
    files.add("p/b.csv.gz", "'b.csv.gz'")
    assert files.files == [
        DeliveryFile("p/a.parquet", 10, "parquet"),
        DeliveryFile("p/b.csv.gz", 5, "csv"),
    ]
    assert [o.key for o in files.objects] == ["p/a.parquet", "p/b.csv.gz"]


@pytest.mark.parametrize(
    ("objects", "keys", "message"),
    [
        (
            [Obj("p/a.parquet", 10)],
            ["p/a.parquet", "p/a.parquet"],
            f"{WHERE}: 'p/a.parquet' is listed twice; each file counts once",
        ),
        (
            [Obj("p/a.txt", 10)],
            ["p/a.txt"],
            f"{WHERE}: 'p/a.txt' is neither Parquet nor CSV (.parquet, .csv, .csv.gz)",
        ),
        (
            [],
            ["p/a.parquet"],
            f"{WHERE}: manifest lists 'p/a.parquet' but the file is missing. Fix: {FIX}",
        ),
        (
            [Obj("p/a.parquet", 0)],
            ["p/a.parquet"],
            f"{WHERE}: 'p/a.parquet' is empty (0 bytes); the copy was cut short. Fix: {FIX}",
        ),
    ],
)
def test_a_broken_listing_names_the_manifest_the_entry_and_the_fix(objects, keys, message):
    files = listed(*objects)
    with pytest.raises(DeliveryError) as raised:
        for key in keys:
            files.add(key, repr(key))
    assert str(raised.value) == message


def test_zero_byte_leftovers_are_skipped_when_the_provider_leaves_them():
    files = listed(Obj("p/a.parquet", 0), Obj("p/b.parquet", 3), skip_empty=True)
    assert files.add("p/a.parquet", "a") is None
    assert files.add("p/b.parquet", "b") == DeliveryFile("p/b.parquet", 3, "parquet")
    assert files.skipped == ["p/a.parquet"]

"""The split of the suite into shards (tools/run_tests.py): every part runs once, and the shards' times even out."""

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("run_tests", REPO / "tools" / "run_tests.py")
run_tests = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run_tests)  # type: ignore[union-attr]


def test_every_test_file_of_the_suite_is_in_exactly_one_shard() -> None:
    parts = run_tests.test_files()
    assert "tests/unit" in parts and "tests/docs" in parts and any(p.startswith("tests/lab/test_") for p in parts)
    assert not any(p.startswith(("tests/unit/", "tests/docs/")) for p in parts)  # each folder runs whole
    shards = run_tests.deal(parts, run_tests.load_seconds(), 2)
    dealt = [p for shard in shards for p in shard]
    assert sorted(dealt) == sorted(parts)


def test_the_longest_files_go_to_different_shards_and_the_loads_even_out() -> None:
    seconds = {"a": 300.0, "b": 250.0, "c": 100.0, "d": 90.0, "e": 60.0}
    shards = run_tests.deal(list(seconds), seconds, 2)
    loads = [sum(seconds[p] for p in shard) for shard in shards]
    assert max(loads) - min(loads) <= 60.0  # no more apart than the shortest file
    assert not any({"a", "b"} <= set(shard) for shard in shards)


def test_an_unmeasured_file_still_runs_and_one_shard_is_the_whole_suite() -> None:
    assert run_tests.deal(["new", "old"], {"old": 5.0}, 1) == [["new", "old"]]
    assert run_tests.deal(["x"], {}, 3) == [["x"]]


def test_a_unit_or_docs_test_file_counts_for_its_folder_as_a_whole() -> None:
    assert run_tests.part_of("tests/unit/test_cli.py") == "tests/unit"
    assert run_tests.part_of("tests/docs/test_site.py") == "tests/docs"  # one site build for all of them
    assert run_tests.part_of("tests/lab/test_boot.py") == "tests/lab/test_boot.py"

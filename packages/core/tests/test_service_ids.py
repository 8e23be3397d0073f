"""renew_ids: fresh (or caller-derived) ids with parent and dependency references rewritten."""

from __future__ import annotations

from aipartnerupflow.core.service.ids import renew_ids


def _tree() -> list[dict[str, object]]:
    return [
        {"id": "r", "name": "root"},
        {"id": "a", "name": "a", "parent_id": "r"},
        {"id": "b", "name": "b", "parent_id": "r", "dependencies": ["a", {"id": "a"}]},
    ]


def test_random_ids_rewrite_references() -> None:
    renewed, mapping = renew_ids(_tree())
    assert set(mapping) == {"r", "a", "b"}
    assert len(set(mapping.values())) == 3
    b = renewed[2]
    assert b["parent_id"] == mapping["r"]
    assert b["dependencies"] == [mapping["a"], {"id": mapping["a"]}]


def test_make_id_derives_the_same_ids_again() -> None:
    first, mapping = renew_ids(_tree(), make_id=lambda old: f"x-{old}")
    second, _ = renew_ids(_tree(), make_id=lambda old: f"x-{old}")
    assert first == second
    assert mapping == {"r": "x-r", "a": "x-a", "b": "x-b"}
    assert first[1]["parent_id"] == "x-r"
    assert first[2]["dependencies"] == ["x-a", {"id": "x-a"}]

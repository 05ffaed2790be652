"""surveys.memo: values found by the identity of their objects, never by equality."""

from __future__ import annotations

from surveys.memo import IdentityMemo


def test_values_belong_to_the_very_objects_they_were_put_for() -> None:
    memo: IdentityMemo[str] = IdentityMemo(10)
    first, twin = {"q": 1}, {"q": 1}
    assert memo.put((first,), "es", "uno") == "uno"
    assert memo.get((first,), "es") == "uno"
    assert memo.get((twin,), "es") is None
    assert memo.get((first,), "en") is None
    assert memo.get((first, twin), "es") is None


def test_a_full_memo_starts_again() -> None:
    memo: IdentityMemo[int] = IdentityMemo(2)
    owners = [(object(),) for _ in range(3)]
    for n, owner in enumerate(owners):
        memo.put(owner, None, n)
    assert [memo.get(owner) for owner in owners] == [None, None, 2]

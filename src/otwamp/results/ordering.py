"""Duplicates and reordering of a packet stream (RFC 4737)."""

from array import array
from collections.abc import Hashable, Iterable, Iterator
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


def first_copies(keys: Iterable[K]) -> Iterator[K]:
    """Each key at its first arrival; later copies are duplicates (RFC 4737 §3.6)."""
    seen: set[K] = set()
    for key in keys:
        if key not in seen:
            seen.add(key)
            yield key


def reordered_flags(seqs: Iterable[int]) -> list[bool]:
    """Type-P-Reordered of each packet, in arrival order (RFC 4737 §3.3).

    A packet is reordered when its sequence number is below NextExp, the
    largest sequence number seen so far plus one; the first packet is in
    order (§3.6). Pass first copies only: a duplicate would count as reordered.
    """
    flags = []
    next_exp: int | None = None
    for seq in seqs:
        late = next_exp is not None and seq < next_exp
        if not late:
            next_exp = seq + 1
        flags.append(late)
    return flags


def count_reordered(seqs: Iterable[int]) -> int:
    """Number of reordered packets among first copies, in arrival order (RFC 4737 §3.3).

    ``reordered_flags`` counted in one pass, with no list of flags.
    """
    count, next_exp = 0, None
    for seq in seqs:
        if next_exp is not None and seq < next_exp:
            count += 1
        else:
            next_exp = seq + 1
    return count


def reordered_ratio(reordered: int, received: int) -> float | None:
    """Type-P-Reordered-Ratio-Stream R = reordered / received (RFC 4737 §4.1.3)."""
    return reordered / received if received else None


def arrival_chains(seqs: "array[int]", end: int) -> tuple["array[int]", "array[int]"]:
    """Where each sequence number below ``end`` first arrived, and each arrival's next copy.

    Indices into ``seqs``, -1 for none: the copies of a packet in arrival
    order, with two integers a packet rather than a list of objects
    (``copies`` walks them); numbers at or above ``end`` are left out.
    """
    heads = array("i", [-1]) * end
    links = array("i", [-1]) * len(seqs)
    for index in range(len(seqs) - 1, -1, -1):
        seq = seqs[index]
        if seq < end:
            links[index], heads[seq] = heads[seq], index
    return heads, links


def copies(heads: "array[int]", links: "array[int]", seq: int) -> list[int]:
    """The indices of sequence number ``seq``'s arrivals in ``arrival_chains``, in order."""
    found: list[int] = []
    index = heads[seq] if seq < len(heads) else -1
    while index >= 0:
        found.append(index)
        index = links[index]
    return found

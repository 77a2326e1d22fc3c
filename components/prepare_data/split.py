"""De-duplication and the deterministic, stratified, stable split (pure logic).

A file's split is decided per class from its content hash:
- exact duplicates (same sha256) are one item: kept once when their labels agree,
  all excluded when they conflict;
- near-duplicates (dHash within a few bits, same class) form one unit, so one split;
- units already recorded in the split state keep their split, so adding files never
  moves an existing image; the rest fill each split's deficit against the target
  counts, in sha256 order, so a fresh split is stratified to within one image per class.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass

from components.common.errors import ConfigError
from components.prepare_data.config import SPLITS


@dataclass(frozen=True)
class Candidate:
    key: int
    uri: str
    label: str
    sha256: str
    dhash: str = ""


@dataclass(frozen=True)
class Decision:
    key: int
    split: str = ""
    skip_reason: str = ""


def target_counts(n: int, fractions: dict[str, float]) -> dict[str, int]:
    """Largest-remainder rounding of ``n * fraction`` per split."""
    exact = {s: n * f for s, f in fractions.items()}
    counts = {s: int(v) for s, v in exact.items()}
    order = sorted(fractions, key=lambda s: (-(exact[s] - counts[s]), SPLITS.index(s)))
    for s in order[: n - sum(counts.values())]:
        counts[s] += 1
    return counts


def _dedupe(candidates: list[Candidate]) -> tuple[list[Candidate], list[Decision]]:
    by_sha: dict[str, list[Candidate]] = defaultdict(list)
    for c in candidates:
        by_sha[c.sha256].append(c)
    kept, skipped = [], []
    for group in by_sha.values():
        group.sort(key=lambda c: (c.uri, c.key))
        labels = sorted({c.label for c in group})
        if len(labels) > 1:
            reason = "exact duplicate with conflicting labels " + ", ".join(
                f"{c.label!r} ({c.uri})" for c in group
            )
            skipped += [Decision(c.key, skip_reason=reason) for c in group]
            continue
        kept.append(group[0])
        skipped += [
            Decision(c.key, skip_reason=f"exact duplicate of {group[0].uri}") for c in group[1:]
        ]
    return kept, skipped


NEAR_DUPLICATE_BITS = 6
MAX_GROUP_SHARE = 0.02
log = logging.getLogger(__name__)


def _units(items: list[Candidate], near_duplicates: bool) -> list[list[Candidate]]:
    """Groups of near-duplicates: dHashes within ``NEAR_DUPLICATE_BITS`` bits, transitively.

    Two 64-bit hashes that differ in at most 7 bits agree exactly on at least one of
    their eight bytes, so only items sharing a byte bucket are compared. Low-detail images
    (flat objects on plain backgrounds) chain into huge groups through dHash collisions;
    a group larger than max(4, 2% of the class) is not a set of duplicates, so its images
    are placed one by one (and a warning says how many).
    """
    if not near_duplicates:
        return [[c] for c in items]
    parent = list(range(len(items)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    hashes = [int(c.dhash, 16) if c.dhash else None for c in items]
    buckets: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, h in enumerate(hashes):
        if h is not None:
            for chunk in range(8):
                buckets[(chunk, (h >> (8 * chunk)) & 0xFF)].append(i)
    for members in buckets.values():
        for a_pos, a in enumerate(members):
            for b in members[a_pos + 1 :]:
                if bin(hashes[a] ^ hashes[b]).count("1") <= NEAR_DUPLICATE_BITS:
                    parent[root(a)] = root(b)
    groups: dict[int, list[Candidate]] = defaultdict(list)
    for i, c in enumerate(items):
        groups[root(i)].append(c)
    cap = max(4, int(MAX_GROUP_SHARE * len(items)))
    units = []
    for group in groups.values():
        if len(group) > cap:
            log.warning("class %r: %d images form one near-duplicate chain (> %d); treated as "
                        "distinct images (low-detail images collide in dHash)",
                        group[0].label, len(group), cap)
            units += [[c] for c in group]
        else:
            units.append(group)
    return units


def assign_splits(
    candidates: list[Candidate],
    fractions: dict[str, float],
    pinned: dict[str, str] | None = None,
    near_duplicates: bool = True,
    allow_small_classes: bool = False,
) -> list[Decision]:
    """One decision per candidate: its split, or why it was excluded."""
    pinned = pinned or {}
    kept, decisions = _dedupe(candidates)
    by_class: dict[str, list[Candidate]] = defaultdict(list)
    for c in kept:
        by_class[c.label].append(c)
    if len(by_class) < 2:
        raise ConfigError(
            f"found {len(by_class)} usable class(es) {sorted(by_class)}: a classifier needs "
            "at least 2; check the source layout (one folder per class) or the CSV labels"
        )
    for label in sorted(by_class):
        items = by_class[label]
        targets = target_counts(len(items), fractions)
        units = sorted(_units(items, near_duplicates), key=lambda u: min(c.sha256 for c in u))
        counts = dict.fromkeys(SPLITS, 0)
        placement: list[tuple[list[Candidate], str]] = []
        free = []
        for unit in units:
            split = next((pinned[c.sha256] for c in unit if c.sha256 in pinned), "")
            if split:
                placement.append((unit, split))
                counts[split] += len(unit)
            else:
                free.append(unit)
        for unit in free:
            split = max(SPLITS, key=lambda s: (targets[s] - counts[s], -SPLITS.index(s)))
            placement.append((unit, split))
            counts[split] += len(unit)
        missing = [s for s in SPLITS if fractions[s] > 0 and counts[s] == 0]
        if missing and not allow_small_classes:
            need = max(int(1 / fractions[s] + 0.5) for s in missing)
            raise ConfigError(
                f"class {label!r} has {len(items)} usable image(s): too few for a "
                f"{'/'.join(missing)} sample at fractions "
                f"{'/'.join(f'{fractions[s]:g}' for s in SPLITS)} (need about {need}); "
                "add images or pass --allow-small-classes"
            )
        decisions += [Decision(c.key, split=split) for unit, split in placement for c in unit]
    totals = Counter(d.split for d in decisions if d.split)
    empty = [s for s in SPLITS if fractions[s] > 0 and not totals[s]]
    if empty:
        raise ConfigError(f"every class is too small for a {'/'.join(empty)} sample, so that "
                          "split would be empty even with --allow-small-classes (validation "
                          "and the gate need images); add images or raise its fraction")
    return decisions

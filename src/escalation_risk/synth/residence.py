"""Where people live as a register keeps it (``realistic_residence``): households that moved,
and the police system's records of residents in the household register too.

Without the option the generator's residence is simple: every household stays at one place
for the whole period, and a second system's record of a person (the police system's
duplicate) is in no household. Real registers differ on both counts, and a record linker
learns from them: a linker trained on the simple district learns that "both records in a
household" means two people (about -15 bits), an artefact.

With the option, on a random stream of its own (``[seed, 19]``, so every other table of a
seed is as without it):

- **Moves**: a share :data:`MOVE_SHARE` of the urban households (families and tenants in
  one flat for the whole period) moved in during it. Their earlier home is a household of
  its own at a residential building in another grid, whose memberships end on the day of
  the move, when the memberships of the current home start. The day is drawn before any
  member's first incident (their incidents were simulated at the current home), so a
  person's presence in a grid starts and ends, consistently with where their incidents are.
- **Second-system records in households**: a share :data:`HOUSED_SHARE` of the police
  system's duplicate records is listed in a household too (the police's resident record):
  the household their person lived in when the record's first incident was reported, from
  that day (from before the data when the record has no incident), with their person's
  role. For a person who moved, half of such records keep the earlier home (the police
  never learnt of the move): a stale address, a member still. A share :data:`ELSEWHERE_SHARE`
  of them gives another household of the same grid instead (a relative's or a friend's
  address, as ``other``): a household the person's own record was never in.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .draws import _Groups
from .households import Memberships
from .person_records import PoliceRecords
from .records import Records
from .vocab import _PT, _R

MOVE_SHARE = 0.12
HOUSED_SHARE = 0.35
STALE_SHARE = 0.5
ELSEWHERE_SHARE = 0.15


def _realistic_residence(seed: int, p: dict, g: dict, mem: Memberships, police: PoliceRecords, rec: Records,
                         n: int) -> Memberships:
    """The memberships with moves and housed police records added (see the module docstring)."""
    rng = np.random.default_rng([int(seed), 19])
    H = p["H"]
    n_mem = len(mem.hh)
    # Each person's first incident as a party (days; inf: none).
    person_rows = rec.ptype == 0
    first = np.full(n + police.n_dup, np.inf)
    np.minimum.at(first, rec.ppid[person_rows], rec.rep[rec.pinc[person_rows]])
    true_first = first[:n].copy()
    np.minimum.at(true_first, police.dup_src, first[n:])

    # Moves: urban households whose every membership spans the whole period.
    hh, start, end = mem.hh, mem.start.copy(), mem.end.copy()
    whole = np.ones(H, dtype=bool)
    orig = hh < H
    np.logical_and.at(whole, hh[orig], np.isnan(start[orig]) & np.isnan(end[orig]))
    # A divorced spouse's later household is theirs: a household with such a member stays put.
    ht = p["hh_type"]
    eligible = np.flatnonzero(whole & ((ht == 0) | (ht == 2)))
    movers = eligible[rng.random(len(eligible)) < MOVE_SHARE]
    hh_first = np.full(H, np.inf)
    np.minimum.at(hh_first, hh[orig], true_first[mem.pid[orig]])
    t_move = rng.uniform(0.0, 1.0, len(movers)) * np.minimum(hh_first[movers], float(np.nanmax(rec.rep, initial=1.0)))
    buildings = np.flatnonzero(g["pl_type"] == _PT["residential"])
    pl_grid = g["pl_grid"]
    old_place = buildings[rng.integers(0, max(len(buildings), 1), len(movers))] if len(buildings) else \
        mem.hh_place[movers]
    # Another grid than the current home's (a move within one grid changes little): redrawn a few
    # times, then kept (a district of one urban grid has no other).
    for _ in range(8):
        same = np.flatnonzero(pl_grid[old_place] == pl_grid[mem.hh_place[movers]])
        if not len(same) or not len(buildings):
            break
        old_place[same] = buildings[rng.integers(0, len(buildings), len(same))]
    move_of = np.full(H, -1)
    move_of[movers] = np.arange(len(movers))
    n_hh = len(mem.hh_place)
    old_hh = n_hh + np.arange(len(movers))
    moved_rows = np.flatnonzero(orig & (move_of[np.minimum(hh, H - 1)] >= 0))
    k = move_of[hh[moved_rows]]
    start[moved_rows] = t_move[k]
    new_hh = [hh, old_hh[k]]
    new_pid = [mem.pid, mem.pid[moved_rows]]
    new_role = [mem.role, mem.role[moved_rows]]
    new_start = [start, np.full(len(moved_rows), np.nan)]
    new_end = [end, t_move[k]]

    # Police records in households: the person's household when the record's first incident
    # was reported (their current one, by the draw of the move day above).
    housed = np.flatnonzero(rng.random(police.n_dup) < HOUSED_SHARE)
    stale = rng.random(len(housed)) < STALE_SHARE
    src = police.dup_src[housed]
    when = first[n + housed]
    # The person's membership at that time: their rows, the latest starting at or before it.
    rows_of = np.argsort(mem.pid[:n_mem], kind="stable")
    row_pid = mem.pid[rows_of]
    lo = np.searchsorted(row_pid, src, side="left")
    hi = np.searchsorted(row_pid, src, side="right")
    pick = np.full(len(housed), -1)
    for c in range(int((hi - lo).max(initial=0))):  # at most a few rows per person
        r = lo + c
        ok = r < hi
        row = rows_of[np.minimum(r, len(rows_of) - 1)]
        s = np.where(np.isnan(start[row]), -np.inf, start[row])
        take = ok & ((s <= np.where(np.isfinite(when), when, np.inf)) | (pick < 0))
        pick = np.where(take, row, pick)
    # A person who left the district's households before the record (a tenant who moved away) is in none.
    has = (pick >= 0) & ~(end[np.maximum(pick, 0)] <= when)
    housed, stale, when, pick = housed[has], stale[has], when[has], pick[has]
    hh_of = hh[pick]
    moved = move_of[np.minimum(hh_of, H - 1)] >= 0
    moved &= hh_of < H
    use_old = stale & moved
    hh_of = np.where(use_old, old_hh[move_of[np.minimum(hh_of, H - 1)]], hh_of)
    hh_place = np.concatenate([mem.hh_place, old_place])
    # Another household of the grid (of the households the generator made: not a moved one's earlier home).
    elsewhere = (rng.random(len(housed)) < ELSEWHERE_SHARE) & ~use_old
    hh_grid = pl_grid[hh_place]
    other = _Groups(hh_grid[:H], np.arange(H), g["n_grid"]).pick(rng, hh_grid[hh_of])
    elsewhere &= (other >= 0) & (other != hh_of)
    hh_of = np.where(elsewhere, other, hh_of)
    new_hh.append(hh_of)
    new_pid.append(n + housed)
    new_role.append(np.where(elsewhere, _R["other"], mem.role[pick]))
    new_start.append(np.where(np.isfinite(when), when, np.nan))
    new_end.append(np.where(use_old | elsewhere, np.nan, end[pick]))
    tenure = np.concatenate([mem.tenure, np.full(len(movers), 1)])  # the earlier home: rented
    return replace(mem, hh=np.concatenate(new_hh), pid=np.concatenate(new_pid), role=np.concatenate(new_role),
                   start=np.concatenate(new_start), end=np.concatenate(new_end), hh_place=hh_place, tenure=tenure)

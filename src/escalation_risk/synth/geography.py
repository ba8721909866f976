"""Geography: towns, grids, buildings, village plots and other places, with coordinates."""

from __future__ import annotations

import numpy as np

from .vocab import _PT, CENTRE, TOWN_STEMS


def _geography(rng: np.random.Generator, p: dict, n: int) -> dict:
    """Towns, grids and places, and the place of each household (sets ``p["place"]`` and ``p["grid"]``)."""
    H, ht = p["H"], p["hh_type"]
    g: dict = {}
    rural = np.flatnonzero(ht == 1)
    urban = rng.permutation(np.flatnonzero((ht == 0) | (ht == 2)))
    dorm = np.flatnonzero(ht == 3)
    # urban buildings: a mix of small walk-ups and large blocks
    nb_guess = len(urban) // 10 + 2
    bsize = np.where(rng.random(nb_guess) < 0.3, rng.integers(4, 13, nb_guess), rng.integers(20, 81, nb_guess))
    bcum = np.cumsum(bsize)
    n_build = int(np.searchsorted(bcum, len(urban), side="left")) + 1 if len(urban) else 0
    hh_build = np.searchsorted(bcum, np.arange(len(urban)), side="right")
    n_ugrid = max(1, (n_build + 9) // 10)
    build_grid = np.arange(n_build) // 10
    # villages (rural grids)
    vsize = rng.integers(80, 251, len(rural) // 80 + 2)
    vcum = np.cumsum(vsize)
    plot_village = np.searchsorted(vcum, np.arange(len(rural)), side="right")
    n_vil = int(plot_village.max()) + 1 if len(rural) else 0
    n_grid = n_ugrid + n_vil
    n_town = int(np.clip(round(n / 25000), 3, 40))
    grid_town = np.concatenate([np.arange(n_ugrid) * n_town // n_ugrid,
                                np.arange(n_vil) * n_town // max(n_vil, 1)]).astype(np.int64)
    grid_urban = np.arange(n_grid) < n_ugrid
    # non-residential places, on random grids (industry prefers the edge: villages)
    n_ind = max(3, n // 2500)
    n_com = max(5, n // 400)
    n_pub = max(4, n // 1500)
    ind_grid = np.where(rng.random(n_ind) < 0.5, rng.integers(0, n_grid, n_ind), rng.integers(0, n_ugrid, n_ind))
    com_grid = rng.integers(0, n_ugrid, n_com)
    pub_grid = rng.integers(0, n_grid, n_pub)
    # place table: buildings, plots, industrial, commercial, public
    pl_grid = np.concatenate([build_grid, n_ugrid + plot_village, ind_grid, com_grid, pub_grid])
    pl_type = np.concatenate([np.full(n_build, _PT["residential"]), np.full(len(rural), _PT["rural_village"]),
                              np.full(n_ind, _PT["industrial"]), np.full(n_com, _PT["commercial"]),
                              np.full(n_pub, _PT["public"])])
    off_b, off_r = 0, n_build
    off_i = off_r + len(rural)
    off_c = off_i + n_ind
    off_p = off_c + n_com
    hh_place = np.empty(H, dtype=np.int64)
    hh_place[urban] = off_b + hh_build
    hh_place[rural] = off_r + np.arange(len(rural))
    hh_place[dorm] = off_i + rng.integers(0, n_ind, len(dorm))
    town_c = np.array(CENTRE) + rng.normal(0, 0.05, (n_town, 2))
    grid_c = town_c[grid_town] + rng.normal(0, 0.01, (n_grid, 2))
    pl_ll = grid_c[pl_grid] + rng.normal(0, 0.0018, (len(pl_grid), 2))
    stems = [TOWN_STEMS[i % len(TOWN_STEMS)] + (str(i // len(TOWN_STEMS) + 1) if i >= len(TOWN_STEMS) else "")
             for i in range(n_town)]
    town_name = np.array([s + ("街道" if i % 3 else "镇") for i, s in enumerate(stems)], dtype=object)
    g.update(n_town=n_town, n_grid=n_grid, grid_town=grid_town, grid_urban=grid_urban, pl_grid=pl_grid,
             pl_type=pl_type, pl_ll=pl_ll, town_name=town_name, hh_place=hh_place, n_build=n_build,
             off_i=off_i, off_c=off_c, off_p=off_p, n_ind=n_ind, n_com=n_com, n_pub=n_pub)
    p["place"] = hh_place[p["hh"]]
    p["grid"] = pl_grid[p["place"]]
    return g

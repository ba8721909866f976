"""Parameters of the district's conflict mechanism, per dispute category (see the package docstring)."""

from __future__ import annotations

VISIT_WEEKS = (0, 1, 3, 7, 11)  # return visits of grid workers: the weeks after a dispute's report


# Category-level parameters, in DISPUTE_CATEGORIES order:
# rate (episodes per person-year), base heat, base log-hazard, never-closed share.
_CAT_PARAMS = {
    "marriage_family":     (0.040, 0.30, 0.35, 0.20),
    "neighbor":            (0.042, 0.00, -0.25, 0.18),
    "debt":                (0.024, 0.20, 0.05, 0.22),
    "labor_wage":          (0.014, 0.25, -0.60, 0.15),
    "land_housing":        (0.016, 0.25, 0.05, 0.25),
    "property_management": (0.015, -0.10, -1.10, 0.15),
    "traffic":             (0.015, -0.20, -0.70, 0.10),
    "medical":             (0.005, 0.10, -0.40, 0.20),
    "consumer_finance":    (0.010, -0.20, -1.30, 0.15),
    "contract":            (0.009, -0.10, -0.80, 0.15),
    "other":               (0.008, -0.10, -0.60, 0.12),
}
_B0 = -8.3  # weekly log-hazard intercept, tuned for ~5-7% escalation within 90 days

# offence mix per dispute category (OFFENCE_CATEGORIES order):
# assault, intentional_injury, homicide, arson, property_damage, threat, affray, detention, other
_OFFENCE_MIX = {
    "marriage_family":     [0.38, 0.25, 0.015, 0.01, 0.08, 0.17, 0.02, 0.04, 0.035],
    "neighbor":            [0.32, 0.15, 0.005, 0.015, 0.20, 0.10, 0.17, 0.0, 0.04],
    "debt":                [0.22, 0.10, 0.005, 0.01, 0.14, 0.22, 0.05, 0.22, 0.035],
    "labor_wage":          [0.15, 0.06, 0.0, 0.01, 0.20, 0.16, 0.22, 0.17, 0.03],
    "land_housing":        [0.20, 0.18, 0.005, 0.02, 0.20, 0.10, 0.25, 0.01, 0.035],
    "property_management": [0.35, 0.08, 0.0, 0.005, 0.30, 0.17, 0.05, 0.0, 0.045],
    "traffic":             [0.45, 0.12, 0.0, 0.0, 0.18, 0.05, 0.17, 0.0, 0.03],
    "medical":             [0.40, 0.18, 0.005, 0.005, 0.20, 0.15, 0.03, 0.0, 0.03],
    "consumer_finance":    [0.15, 0.03, 0.0, 0.01, 0.30, 0.40, 0.02, 0.04, 0.05],
    "contract":            [0.25, 0.08, 0.0, 0.01, 0.15, 0.25, 0.06, 0.15, 0.05],
    "other":               [0.35, 0.12, 0.0, 0.01, 0.20, 0.15, 0.12, 0.0, 0.05],
}

# how a dispute reaches the record (SOURCES order: police_110, grid_worker,
# mediation_center, hotline_12345, petition_office, court, walk_in, other)
_DISPUTE_SOURCES = {
    "marriage_family":     [0.30, 0.25, 0.17, 0.08, 0.02, 0.03, 0.13, 0.02],
    "neighbor":            [0.20, 0.38, 0.15, 0.12, 0.01, 0.0, 0.12, 0.02],
    "debt":                [0.10, 0.10, 0.25, 0.05, 0.02, 0.20, 0.26, 0.02],
    "labor_wage":          [0.05, 0.10, 0.20, 0.35, 0.10, 0.02, 0.16, 0.02],
    "land_housing":        [0.05, 0.35, 0.20, 0.10, 0.12, 0.03, 0.13, 0.02],
    "property_management": [0.02, 0.25, 0.13, 0.45, 0.02, 0.0, 0.11, 0.02],
    "traffic":             [0.60, 0.02, 0.15, 0.03, 0.0, 0.10, 0.08, 0.02],
    "medical":             [0.08, 0.02, 0.40, 0.20, 0.05, 0.05, 0.18, 0.02],
    "consumer_finance":    [0.02, 0.03, 0.25, 0.45, 0.02, 0.05, 0.16, 0.02],
    "contract":            [0.03, 0.05, 0.30, 0.12, 0.02, 0.25, 0.21, 0.02],
    "other":               [0.20, 0.25, 0.15, 0.15, 0.02, 0.03, 0.18, 0.02],
}

_MEDIATORS = {  # MEDIATOR_TYPES order: grid_worker, people_mediation_committee, police, court, lawyer, industry, other
    "marriage_family":     [0.30, 0.50, 0.10, 0.05, 0.03, 0.0, 0.02],
    "neighbor":            [0.45, 0.40, 0.10, 0.02, 0.01, 0.0, 0.02],
    "debt":                [0.10, 0.40, 0.05, 0.25, 0.18, 0.0, 0.02],
    "labor_wage":          [0.05, 0.20, 0.02, 0.10, 0.13, 0.48, 0.02],
    "land_housing":        [0.35, 0.40, 0.03, 0.10, 0.05, 0.05, 0.02],
    "property_management": [0.35, 0.35, 0.0, 0.03, 0.02, 0.23, 0.02],
    "traffic":             [0.02, 0.25, 0.45, 0.13, 0.05, 0.08, 0.02],
    "medical":             [0.02, 0.20, 0.03, 0.10, 0.10, 0.53, 0.02],
    "consumer_finance":    [0.02, 0.15, 0.0, 0.10, 0.08, 0.63, 0.02],
    "contract":            [0.05, 0.35, 0.0, 0.25, 0.25, 0.08, 0.02],
    "other":               [0.35, 0.45, 0.08, 0.05, 0.03, 0.02, 0.02],
}

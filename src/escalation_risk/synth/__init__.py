"""Synthetic district generator: a realistic, fully fake sample in the data contract's shape.

The generator builds one district and every contract table from a single seed
(``numpy.random.default_rng(seed)``, nothing else), vectorised so that a million
people take minutes. Nothing in it is real: names, id numbers and phones are drawn
from pools and formats, and the loader pseudonymises them anyway.

How the district works (later tests check the model against this mechanism)
---------------------------------------------------------------------------
Geography. Towns hold grids (网格), grids hold places. Urban grids hold about ten
residential buildings of 4-80 households each, mixing owner families and tenants
(rented flats and sublet rooms); rural grids are villages of 80-250 households, one
``rural_village`` plot per household. Industrial places hold enterprises and worker
dormitories (``collective`` households); commercial and public places hold banks,
hospitals, markets. Coordinates scatter around a centre: town, then grid, then place.

People. Households are families (head, spouse, up to three children, up to two
parents of the head), tenants (single people, couples as ``partner``, sublet
``tenant`` rooms) and dormitory workers (``other``). Each person carries latent traits
that are never exported: aggression, alcohol use, mental-health strain and financial
stress (standard normal, shifted by sex, age, employment, migrant status). Their mix
``trait_risk`` drives both how often a person gets into conflicts and how likely a
conflict turns violent.

Organisations. Enterprises with heavy-tailed workforces (and an owner person),
banks, insurers, property managers (one per ~8 urban buildings), landlord companies
(dormitories, some rented flats), one government office per town, hospitals
(``other``).

Conflict episodes. Each episode is a pair or group in conflict: spouses, ex-spouses,
parent and adult child, siblings (``marriage_family``); neighbours in one building or
adjacent village plots (``neighbor``: noise, leaks, parking); creditor and debtor
(``debt``, with an amount); workers against their enterprise (``labor_wage``: group
episodes hit 3-60 workers of one enterprise at once, plus single workers); villagers
over homesteads, tenants against landlords, villager groups against the town
(``land_housing``); residents against property management; customers against banks
and insurers (``consumer_finance``); traffic, medical, contract and other disputes.
Parties are drawn with weights ``exp(propensity)`` so the same volatile people recur.

An episode opens with a ``dispute`` record (source by category: grid worker,
mediation centre, 12345 hotline, walk-in, 110). It then runs in weekly steps for
30 weeks with a latent *heat* h (start: noise + trait risk + category + stakes):

* follow-ups: Poisson(0.09 * exp(0.7 h) * exp(-week/6)) police calls, complaints
  and petitions (a third as many once the dispute is closed) with the same parties
  and category; about half carry ``related_incident_id`` = the dispute; each raises
  h by 0.35;
* mediations (likely in the first weeks): agreement (probability falls with h and
  trait risk) cools by 1 and usually closes the dispute, partial cools a little,
  failed heats by 0.6, pending does nothing;
* heat relaxes (h <- 0.88 h + noise);
* escalation: weekly hazard ``exp(b0 + b_cat + 0.8 h + 1.1 trait_max + 0.9 prior
  violence + 0.7 co-residence (family) + 0.25 log1p(amount/1e4) + 0.35 log(group/2)
  + u_episode) * exp(-week/12)``, times 0.3 once the dispute is closed;
  u_episode ~ N(0, 0.4), and heat keeps moving after the report (weekly noise,
  mediation outcomes), so the signal is noisy: the episode's true log-hazard at
  report time ranks disputes with an AUC of about 0.78-0.81. An escalation
  is a ``criminal_case`` days later (offence by category: assault, intentional
  injury, affray, illegal detention, property damage, threat; rarely homicide or
  arson) with the parties as suspect and victim; half of them name the dispute in
  ``related_incident_id``. The episode then stops.

Disputes close after lognormal durations (median ~30 days, longer when hot), earlier
after an agreement; ~17% never close (``closed_at`` null), which leaves about 0.2
open disputes per person on the export night. Background police calls, complaints
and crimes (suspects weighted by aggression and alcohol) happen outside episodes.
About 4-8% of disputes are followed within 90 days by a criminal case sharing a
party.

Descriptions are Chinese (~90%) or English templates; threat, weapon, drinking,
self-harm and repeated-petition phrases appear with probabilities that rise with the
heat at the time of the record (and with the person's alcohol and mental strain),
with a small base rate in calm cases.

Flags are point in time: some prior violence, mental-health and substance flags
predate the data; others are recorded after a person's first incident; every
criminal suspect usually gets ``prior_violence`` weeks after the case, some
``community_correction`` months later; people with two or more petitions become
``key_person``.

Facts recorded later (contract 1.1; ``late_facts=True``, drawn from a second random
stream so that the 1.0 tables of a seed do not change): after an escalation a household
member of the suspect is often put on the dispute days later; some crime witnesses are
named weeks after the report; a third of mediation outcomes are typed in days after the
session; suspects unemployed at export lost their job 2-10 months after their first
crime (before that their history says employed); some locals were migrants until a
date; some people were registered only during the period (unknown before). Grid
workers' return visits in the first weeks leave notes whose threat and weapon phrases
follow the heat the visit found, and most escalations leave a note on the dispute
("当事人因持刀伤人被刑事立案").

Record linkage noise. About 3.5% of people also have a second ``person_id`` created
by the police system (used on police calls and criminal cases): two thirds with the
same id number, one third without id number but with the same name, birth year and
phone. Deliberate namesakes (same name and birth year, different person) exist, and
some people lack a phone or an id number. ``person_truth`` maps every person_id to
the real person.

With ``linkage_noise=p`` (0 by default), each duplicate record is, with probability
``p``, written the way real records are (see ``synth.noise``): an old 15-digit
id, a mistyped id digit or check digit, two id digits transposed (check recomputed),
full-width digits and a lower-case ``x``, a homophone or look-alike character in the
name (张/章, 陈/程), traditional characters, inner spaces, a changed phone or a phone
written ``+86 138-...``; and, as hard negatives, the members of some households give
the head's phone number. The noise has its own random streams: the district is otherwise
the same, and ``person_truth`` gains a ``noise`` column naming what was done.

Residence as a register keeps it (``realistic_residence=True``, off by default; see
``synth.residence``): some urban households moved in during the period from a home in another
grid (a person's presence in a grid starts and ends), and about a third of the police system's
duplicate records are listed in a household too (their person's, an earlier home's, or a
relative's in the same grid). On a random stream of its own: every other table is the same.

The package holds one module a noun: ``vocab`` and ``params`` (codes, name pools, the
mechanism's parameters), ``people``, ``geography``, ``organizations``, ``relations``,
``households``, ``episodes``, ``simulation`` and ``background`` (the district and what
happens in it), ``records`` (incidents, parties and mediations, and their state at the
export), ``texts``, ``flags``, ``person_records``, ``noise`` and ``residence`` (what records say and how
they are written), ``late_facts``, ``tables`` (:func:`generate_tables`, step by step),
``writing`` and ``province``; ``draws`` and ``formats`` serve them all.
"""

from __future__ import annotations

# The vocabularies stay importable from here, where they were before the package (``X as X``: a re-export).
from .params import VISIT_WEEKS as VISIT_WEEKS
from .province import generate_province, iter_province, write_province
from .tables import generate_district, generate_tables
from .vocab import CENTRE as CENTRE
from .vocab import DISTRICT_NAME as DISTRICT_NAME
from .vocab import GIVEN as GIVEN
from .vocab import LOCAL_REGION as LOCAL_REGION
from .vocab import MIGRANT_REGIONS as MIGRANT_REGIONS
from .vocab import PHONE_PREFIXES as PHONE_PREFIXES
from .vocab import SURNAMES as SURNAMES
from .vocab import TOWN_STEMS as TOWN_STEMS
from .writing import write_tables

__all__ = ["generate_tables", "generate_district", "write_tables", "generate_province", "iter_province", "write_province"]

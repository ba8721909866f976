"""Record linkage: one canonical key per person, from probabilistic evidence.

The same person reaches the data under several ``person_id`` values (the police, the
mediation platform and the hotline each keep their own), written differently each
time: an old 15-digit id, a mistyped digit, 章 for 张, 陳 for 陈, a new phone.
:mod:`escalation_risk.normalize` brings identifiers to one form and makes hashed
linkage keys on load; this module links records on those keys, Fellegi–Sunter style:

1. **Blocking** (vectorised, sort-based): candidate pairs share the id number, or the
   birth date and sequence number written in it (a typo in the region or the check
   digit), or the id with each pair of neighbouring digits put in order (a
   transposition), or the fuzzy pinyin of the name (homophones and near-homophones
   alike) and the birth year, or the name's shape (look-alike characters) and the
   birth year, or the phone. Blocks larger than ``max_block`` are skipped (and counted).
   (:mod:`.blocking`)
2. **Comparison levels** per pair and field (:mod:`.comparisons`): id number (exact,
   check digit only, typo, transposition, different, conflict), name (exact, same
   pinyin, same fuzzy pinyin, same shape, different), birth (same id birth date, same
   year, ...), phone, gender, and from the graph (:mod:`.evidence`): counterparty
   (shared, none), place (one household, one place at overlapping times, one place, one
   grid, none) and household_held (one record in a household, or both: a household register
   keeps a resident's record, a second system's record of them is often in none; judged apart
   when an id number is missing on one side; it weighs nothing for two records sharing a
   household, which are both in one by that fact, and its m and u are read on the pairs that
   share none); missing values are a level of their own with weight 0.
3. **Match weights** ``log2(m/u)`` per level (:mod:`.parameters`): ``m`` (how often a
   true duplicate shows the level) learnt by EM on the blocked pairs for the identifiers,
   and for the graph levels read among the pairs with one id number (the law's identifier:
   one person; EM on every candidate pair took namesakes lacking an id for matches), ``u``
   (how often two different people do) from a seeded sample of random pairs; an id number
   missing on one side weighs ``log2(m/u)`` too (a second source records none, so
   duplicates lack one more often than random pairs), with term-frequency
   adjustment for exact names, phones and ids, and for a name's sound at the pinyin and
   fuzzy-pinyin levels (a common name, or 张伟's sound, is weak evidence; a rare one is
   strong), and for shared graph items (a counterpart shared by hundreds counts for
   little; two records holding many items share one by chance more often: the graph u is
   scaled by the items both hold over the holders' mean). The graph levels' u is read among
   namesakes known to be two people (same
   sound and birth year, two valid ids), the pairs the graph must tell apart, with the
   random pairs' u as its prior. The trained parameters ride with the result
   (:func:`linkage_parameters`).
4. **Decision**: a pair is accepted when its posterior match probability, from the
   summed weight and the prior of a random pair being one person, reaches
   ``threshold`` (0.99 by default: by the model, at most 1 accepted pair in 100 is
   two people; the expected number of false matches among accepted pairs is the sum
   of ``1 - p``, reported by :func:`linkage_summary`: 0.37 among 34,000 pairs on the
   noisy 1M-record benchmark district, where none was measured; :data:`GRAPH_MODEL`, the
   review linkage, takes 0.95: 1.2-1.4 stated, 1-4 false merges measured among 1,035,000
   records, its budget being 1 per 10,000). Hard rules on top:
   two valid, different id numbers (or two different other documents) are two
   people, unless the ids are one transposition apart and every other field agrees;
   the same id number is one person unless the names differ outright and the
   weights say otherwise; without id evidence a pair needs the birth year, no contrary
   sex, and a name that sounds or looks the same with either the phone or graph
   evidence (name and birth year alone never link); a
   check-digit failure is evidence of a typo, not of another person.
5. **Groups**: connected components of accepted pairs, guarded against chaining: a
   component holding two firm, different id numbers (not joined by an accepted
   transposition) or more than ``max_group`` records is re-clustered greedily by
   weight under those constraints, and a record that matches two conflicting
   identities about equally well joins neither.

The canonical key of a group is its smallest ``person_id``, or, with ``existing=``
(incremental linking), the key its known members already have. Incremental linking
compares only pairs with a new record, plus the pairs inside each existing group (so a
corrected record can leave its group); it never re-links the rest of the district.

Graph evidence is held as sparse matrices, records x items per kind
(:class:`GraphEvidence`, ``graph_evidence(tables, as_frame=False)``), built from the tables
with ids coded from their bytes; a pair's shared items are found by one sparse product of
the two records' rows, every item compared.

Everything is a function of the keys table (``person_id``, ``birth_year``, ``gender``
and the ``lk_*`` columns) and, optionally, graph evidence (:func:`graph_evidence`):
:func:`link_keys` links any such table, e.g. a province's.

Graph evidence, and the hukou and employment both records state, are compared with
:data:`GRAPH_MODEL` (``LinkageModel(graph=True, attributes=True, threshold=0.95)``: a pair
needs a posterior of 0.95, where the default model asks 0.99, in every rule that reads the
weight; ``linkage_summary``'s ``threshold`` shows it), not
in the default model that training and the night read: features at every moment of a
history read one linkage, and a link only a later incident revealed would carry that
incident into earlier features. Use it for a linkage as of one moment
(``link_persons(ds, model=GRAPH_MODEL, as_of=t)``) or a review of duplicates.

Availability: :func:`link_persons` reads what the dataset holds, i.e. linkage as of the
export; ``link_persons(ds, as_of=t)`` links as known at t: graph evidence only from
records known then (:mod:`escalation_risk.known`), and a person record only from its
``persons.recorded_at`` when the data give it (``known.persons_at``).
"""


from .evidence import GraphEvidence, graph_evidence
from .linker import Linkage, _linkage, explain_links, link_keys, link_persons, linkage_parameters, linkage_summary
from .model import DEFAULT_MODEL, FIELDS, GRAPH_FIELDS, GRAPH_MODEL, LEVELS, RULE_FALLBACK, RULE_ID, LinkageModel
from .parameters import em_m, estimate_u

__all__ = ["DEFAULT_MODEL", "FIELDS", "GRAPH_FIELDS", "GRAPH_MODEL", "GraphEvidence", "LEVELS", "RULE_FALLBACK",
           "RULE_ID", "Linkage",
           "LinkageModel", "_linkage", "em_m", "estimate_u", "explain_links", "graph_evidence", "link_keys",
           "link_persons", "linkage_parameters", "linkage_summary"]

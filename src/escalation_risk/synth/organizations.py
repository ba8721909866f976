"""Organisations: enterprises and their workers, banks, insurers, property managers, landlords, government, hospitals."""

from __future__ import annotations

import numpy as np

from .draws import _choice_p, _Groups, _pick
from .vocab import _OT, _R, TOWN_STEMS


def _organizations(rng: np.random.Generator, p: dict, g: dict, n: int) -> dict:
    """Organisations and their places, employers of workers (sets ``p["employer"]``), enterprise owners and landlords."""
    o: dict = {}
    n_ent = max(6, n // 45)
    n_bank = max(3, n // 15000)
    n_ins = max(2, n // 30000)
    n_pm = max(2, g["n_build"] // 8)
    n_ll = max(2, n // 5000)
    n_gov = g["n_town"]
    n_hosp = max(2, n // 20000)
    types = np.concatenate([np.full(n_ent, _OT["enterprise"]), np.full(n_bank, _OT["bank"]),
                            np.full(n_ins, _OT["insurer"]), np.full(n_pm, _OT["property_management"]),
                            np.full(n_ll, _OT["landlord"]), np.full(n_gov, _OT["government"]),
                            np.full(n_hosp, _OT["other"])])
    off = np.concatenate([[0], np.cumsum([n_ent, n_bank, n_ins, n_pm, n_ll, n_gov, n_hosp])])
    n_org = int(off[-1])
    place = np.empty(n_org, dtype=np.int64)
    place[:n_ent] = np.where(rng.random(n_ent) < 0.6, g["off_i"] + rng.integers(0, g["n_ind"], n_ent),
                             g["off_c"] + rng.integers(0, g["n_com"], n_ent))
    fin = slice(off[1], off[3])
    place[fin] = g["off_c"] + rng.integers(0, g["n_com"], off[3] - off[1])
    place[off[3]:off[4]] = rng.integers(0, max(g["n_build"], 1), n_pm)  # the managed estate's first building
    place[off[4]:off[5]] = g["off_c"] + rng.integers(0, g["n_com"], n_ll)
    gov_place = g["off_p"] + rng.integers(0, g["n_pub"], n_gov)
    place[off[5]:off[6]] = gov_place
    place[off[6]:] = g["off_p"] + rng.integers(0, g["n_pub"], n_hosp)
    # names
    trades = np.array(["机械", "电子", "纺织", "建筑工程", "物流", "食品", "服装", "塑料制品", "五金", "家具", "印刷", "餐饮管理"], dtype=object)
    stems = np.array(TOWN_STEMS + ["宏达", "鑫源", "华盛", "恒通", "永兴", "瑞丰", "盛世", "嘉禾"], dtype=object)
    names = np.empty(n_org, dtype=object)
    names[:n_ent] = _pick(rng, stems, n_ent) + _pick(rng, trades, n_ent) + "有限公司"
    banks = np.array(["中国工商银行", "中国农业银行", "中国建设银行", "中国银行", "农村商业银行", "邮政储蓄银行", "招商银行"], dtype=object)
    names[off[1]:off[2]] = _pick(rng, banks, n_bank) + _pick(rng, stems, n_bank) + "支行"
    ins = np.array(["人寿保险", "财产保险", "平安保险", "太平洋保险"], dtype=object)
    names[off[2]:off[3]] = _pick(rng, ins, n_ins) + _pick(rng, stems, n_ins) + "营业部"
    names[off[3]:off[4]] = _pick(rng, stems, n_pm) + "物业管理有限公司"
    names[off[4]:off[5]] = _pick(rng, stems, n_ll) + "公寓租赁有限公司"
    names[off[5]:off[6]] = g["town_name"] + np.where(np.char.endswith(g["town_name"].astype(str), "镇"), "人民政府", "办事处")
    names[off[6]:] = _pick(rng, stems, n_hosp) + np.array(["人民医院", "中医院", "社区卫生服务中心"], dtype=object)[rng.integers(0, 3, n_hosp)]
    o.update(n_org=n_org, type=types, place=place, name=names, off=off, n_ent=n_ent)
    # property manager of each building; landlord company of dorms and some rented flats
    o["build_pm"] = off[3] + rng.integers(0, n_pm, max(g["n_build"], 1))
    o["gov_of_town"] = off[5] + np.arange(n_gov)
    o["hosp"] = off[6] + np.arange(n_hosp)
    o["banks"] = off[1] + np.arange(off[3] - off[1])
    # employers: heavy-tailed enterprise sizes; dorm households work for one enterprise
    ent_w = np.minimum(rng.pareto(1.1, n_ent) + 1.0, 60.0)  # capped: one giant employer would dominate small districts
    emp = p["employment"] == 0
    employer = np.full(n, -1)
    has = emp & (rng.random(n) < 0.65)
    employer[has] = _choice_p(rng, ent_w, int(has.sum()))
    dorm_hh = np.flatnonzero(p["hh_type"] == 3)
    dorm_ent = np.full(p["H"], -1)
    dorm_ent[dorm_hh] = _choice_p(rng, ent_w * 3, len(dorm_hh))
    in_dorm = (p["htype"] == 3) & emp
    employer[in_dorm] = dorm_ent[p["hh"][in_dorm]]
    p["employer"] = employer
    # owner person of each enterprise: an employed local adult, not one of its workers
    cand = np.flatnonzero((p["age"] >= 30) & (p["age"] < 66) & (p["hukou"] == 0) & (p["employment"] == 0))
    if len(cand) == 0:
        cand = np.flatnonzero(p["adult"])
    owner = cand[rng.integers(0, len(cand), n_ent)]
    o["owner"] = owner
    employer[owner] = -1
    workers = _Groups(employer[employer >= 0], np.flatnonzero(employer >= 0), n_ent)
    # shuffle worker lists so contiguous slices are random subsets
    for_perm = rng.permutation(len(workers.members))
    key = np.argsort(employer[workers.members][for_perm] * 1.0 + 0, kind="stable")
    workers.members = workers.members[for_perm][key]
    o["workers"] = workers
    o["ent_w"] = ent_w
    # landlords of rented households: a person (owner family head) or a landlord company
    rented = np.flatnonzero(p["hh_type"] == 2)
    heads_owned = np.flatnonzero((p["role"] == _R["head"]) & (p["htype"] == 0))
    o["rented_hh"] = rented
    use_org = rng.random(len(rented)) < 0.3
    o["ll_person"] = np.where(use_org, -1, heads_owned[rng.integers(0, max(len(heads_owned), 1), len(rented))]
                              if len(heads_owned) else -1)
    o["ll_org"] = np.where(use_org, off[4] + rng.integers(0, n_ll, len(rented)), -1)
    return o

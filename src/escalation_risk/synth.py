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
``p``, written the way real records are (see :func:`_linkage_noise`): an old 15-digit
id, a mistyped id digit or check digit, two id digits transposed (check recomputed),
full-width digits and a lower-case ``x``, a homophone or look-alike character in the
name (张/章, 陈/程), traditional characters, inner spaces, a changed phone or a phone
written ``+86 138-...``; and, as hard negatives, the members of some households give
the head's phone number. The noise has its own random streams: the district is otherwise
the same, and ``person_truth`` gains a ``noise`` column naming what was done.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from escalation_risk.contract import (
    CONTRACT_1_1,
    DISPUTE_CATEGORIES,
    EMPLOYMENT,
    FLAGS,
    GENDERS,
    HUKOU,
    INCIDENT_KINDS,
    MEDIATION_OUTCOMES,
    MEDIATOR_TYPES,
    MEMBER_ROLES,
    OFFENCE_CATEGORIES,
    ORG_TYPES,
    PARTY_ROLES,
    PLACE_TYPES,
    RELATIONS,
    SOURCES,
    STATUSES,
    TABLES,
    TENURES,
)

__all__ = ["generate_tables", "generate_district", "write_tables", "generate_province", "iter_province", "write_province"]

CENTRE = (30.27, 120.16)
VISIT_WEEKS = (0, 1, 3, 7, 11)  # return visits of grid workers: the weeks after a dispute's report
DISTRICT_NAME = "示范区"

# code indices used internally
_R = {r: i for i, r in enumerate(MEMBER_ROLES)}
_PT = {p: i for i, p in enumerate(PLACE_TYPES)}
_OT = {o: i for i, o in enumerate(ORG_TYPES)}
_K = {k: i for i, k in enumerate(INCIDENT_KINDS)}
_DC = {c: i for i, c in enumerate(DISPUTE_CATEGORIES)}
_OC = {c: i for i, c in enumerate(OFFENCE_CATEGORIES)}
_S = {s: i for i, s in enumerate(SOURCES)}
_ST = {s: i for i, s in enumerate(STATUSES)}
_PR = {r: i for i, r in enumerate(PARTY_ROLES)}
_REL = {r: i for i, r in enumerate(RELATIONS)}
_MT = {m: i for i, m in enumerate(MEDIATOR_TYPES)}
_MO = {m: i for i, m in enumerate(MEDIATION_OUTCOMES)}
_FL = {f: i for i, f in enumerate(FLAGS)}

SURNAMES = np.array(list(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁"
    "任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
), dtype=object)
GIVEN = np.array(list(
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华建国文斌辉鹏宇浩然子轩梓涵一诺欣怡雨萱思远俊佳琪志"
    "海燕红梅春花秋菊玉金凤德家豪博宏晓东永福云飞翔慧婷雪琳玲倩颖晶莉凯鑫磊波亮林峰健成荣新利清"
), dtype=object)
TOWN_STEMS = ["东城", "西湖", "南山", "北岸", "青石", "白沙", "枫林", "柳河", "桃源", "金桥", "新安",
              "长乐", "龙泉", "凤鸣", "石塘", "云溪", "梅园", "兴华", "丰收", "临江"]
LOCAL_REGION = "330106"
MIGRANT_REGIONS = np.array(["410102", "420111", "430104", "510107", "360102", "340104", "370102",
                            "450103", "520102", "130102", "230103", "610113", "350203", "500103"],
                           dtype=object)
PHONE_PREFIXES = np.array(["130", "131", "132", "133", "135", "136", "137", "138", "139", "150",
                           "151", "152", "155", "157", "158", "159", "177", "180", "182", "185",
                           "186", "187", "188", "189", "199"], dtype=object)

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

# ---------------------------------------------------------------- description templates
_ZH_BODY = {
    "marriage_family": ["夫妻因家庭琐事发生争吵", "双方因离婚财产分割产生矛盾", "子女抚养问题引发家庭纠纷",
                        "婆媳关系紧张，多次争执", "赡养老人问题兄弟姐妹之间产生纠纷", "男方长期不顾家，夫妻矛盾激化"],
    "neighbor": ["楼上住户夜间噪音扰民，邻里发生口角", "楼上卫生间漏水致楼下天花板受损", "邻居车辆长期占用车位引发争执",
                 "因宅前屋后排水问题邻里纠纷", "邻居在楼道堆放杂物影响通行", "宠物狗扰民引发邻里矛盾"],
    "debt": ["借款到期未还，双方发生纠纷", "民间借贷纠纷，债务人拒不还款", "合伙做生意欠款未结清", "亲戚间借款纠纷"],
    "labor_wage": ["工人反映公司拖欠工资", "多名工人集体讨薪", "工地包工头拖欠农民工工资", "员工被辞退后要求经济补偿",
                   "工伤赔偿问题劳资双方争议"],
    "land_housing": ["村民因宅基地边界发生纠纷", "土地承包经营权纠纷", "租客与房东因押金退还发生争执",
                     "征地拆迁补偿问题村民有意见", "房东要求提前收房，租户不同意"],
    "property_management": ["业主对物业收费有异议", "小区电梯长期故障业主不满物业", "物业停水停电业主投诉",
                            "业主拒交物业费与物业公司纠纷"],
    "traffic": ["两车剐蹭双方对赔偿有争议", "电动车与行人相撞引发赔偿纠纷", "交通事故后对方拒绝赔偿"],
    "medical": ["患者家属对治疗结果不满与医院发生纠纷", "手术后出现并发症家属要求赔偿", "患者对医疗费用有异议"],
    "consumer_finance": ["客户对银行贷款逾期催收方式不满", "保险理赔被拒引发纠纷", "信用卡催收电话骚扰投诉",
                         "理财产品亏损客户要求银行赔偿"],
    "contract": ["装修合同纠纷，双方对工程质量有争议", "买卖合同货款未付", "承包合同履约纠纷"],
    "other": ["双方因琐事发生口角", "因言语冲突引发纠纷", "生活琐事引发矛盾"],
}
_EN_BODY = {
    "marriage_family": ["Couple quarrelled over household matters", "Dispute over property after divorce",
                        "Family conflict over child custody", "Siblings in conflict over care of elderly parent"],
    "neighbor": ["Noise from upstairs flat at night, neighbours argued", "Water leak from upstairs damaged ceiling",
                 "Neighbour's car blocking parking space", "Neighbours in conflict over drainage"],
    "debt": ["Loan overdue and unpaid, parties in dispute", "Private lending dispute, debtor refuses to pay"],
    "labor_wage": ["Workers report unpaid wages", "Group of workers demanding back pay", "Dismissed employee claims compensation"],
    "land_housing": ["Villagers disputing homestead boundary", "Tenant and landlord disagree over deposit",
                     "Villagers unhappy with land compensation"],
    "property_management": ["Residents dispute property management fees", "Lift broken for weeks, residents complain"],
    "traffic": ["Minor collision, parties disagree on compensation", "E-bike hit pedestrian, compensation dispute"],
    "medical": ["Patient's family unhappy with treatment outcome", "Complication after surgery, family demands compensation"],
    "consumer_finance": ["Customer complains about bank debt collection", "Insurance claim rejected"],
    "contract": ["Renovation contract dispute over quality", "Goods delivered but not paid"],
    "other": ["Argument over a trivial matter", "Verbal conflict between parties"],
}
_ZH_OFFENCE = {
    "assault": ["双方发生肢体冲突，一方被打伤", "嫌疑人殴打他人致轻微伤"],
    "intentional_injury": ["嫌疑人持械伤人致被害人受伤住院", "故意伤害致人轻伤"],
    "homicide": ["发生命案，被害人经抢救无效死亡"],
    "arson": ["嫌疑人纵火烧毁对方财物"],
    "property_damage": ["嫌疑人砸毁对方门窗财物", "故意损毁他人车辆"],
    "threat_intimidation": ["嫌疑人多次上门威胁恐吓", "嫌疑人发送恐吓信息"],
    "affray": ["双方纠集多人互殴", "聚众斗殴，多人受伤"],
    "illegal_detention": ["嫌疑人限制对方人身自由索要钱款", "讨债人员非法拘禁债务人"],
    "other": ["寻衅滋事", "扰乱公共秩序"],
}
_EN_OFFENCE = {
    "assault": ["Physical fight, one party injured"], "intentional_injury": ["Suspect injured victim with a weapon"],
    "homicide": ["Victim died of injuries"], "arson": ["Suspect set fire to victim's property"],
    "property_damage": ["Suspect smashed victim's property"], "threat_intimidation": ["Suspect repeatedly threatened victim"],
    "affray": ["Group fight, several injured"], "illegal_detention": ["Suspect held victim against their will over money"],
    "other": ["Public order offence"],
}
_ZH_PREFIX = {"dispute": ["", "当事人申请调解：", "网格员上报：", ""], "police_call": ["接110报警：", "民警出警：", "报警称："],
              "complaint": ["群众来电反映：", "12345热线投诉：", "投诉："], "petition": ["信访人反映：", "来访群众反映："],
              "criminal_case": ["立案：", "刑事案件：", ""]}
_EN_PREFIX = {"dispute": ["", "Mediation request: "], "police_call": ["110 call: ", "Police attended: "],
              "complaint": ["Hotline complaint: "], "petition": ["Petitioner states: "], "criminal_case": ["Case filed: "]}
# keyword phrases: threat, weapon, drinking, self-harm, repeated petition, calm threat-like noise
_ZH_KW = {
    "threat": ["，一方扬言要报复", "，对方放话要他好看", "，当事人扬言要让对方付出代价", "，扬言“不给钱就弄死他”"],
    "weapon": ["，现场有人持刀", "，当事人拿菜刀威胁", "，扬言要泼汽油", "，手持棍棒"],
    "drink": ["，当事人酒后滋事", "，一方醉酒", "，喝酒后情绪激动"],
    "selfharm": ["，当事人扬言要跳楼", "，一方称要自杀", "，有轻生念头"],
    "petition": ["，当事人多次上访", "，反复信访未果", "，曾多次到镇政府上访"],
    "calm": ["，一方扬言要报警处理", "，双方情绪尚平稳", "，经劝说后离开"],
}
_EN_KW = {
    "threat": ["; one party threatened revenge", "; said he would make them pay"],
    "weapon": ["; a knife was seen at the scene", "; threatened to use petrol"],
    "drink": ["; party was drunk", "; had been drinking"],
    "selfharm": ["; threatened suicide", "; said he would jump from the roof"],
    "petition": ["; has petitioned repeatedly", "; multiple petitions without result"],
    "calm": ["; said they would call the police", "; parties calm"],
}


def _sig(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _choice_p(rng: np.random.Generator, probs: np.ndarray | list[float], size: int | None = None) -> np.ndarray:
    """Draw indices from a 1-D probability vector (normalised here)."""
    p = np.asarray(probs, dtype=float)
    return rng.choice(len(p), size=size, p=p / p.sum())


def _rows_choice(rng: np.random.Generator, prob_rows: np.ndarray) -> np.ndarray:
    """One categorical draw per row of a (n, k) probability matrix."""
    c = np.cumsum(prob_rows, axis=1)
    c /= c[:, -1:]
    u = rng.random(len(prob_rows))[:, None]
    return np.minimum((u > c).sum(axis=1), prob_rows.shape[1] - 1)


def _fmt_ids(prefix: str, n: int, width: int) -> np.ndarray:
    s = pd.Series(np.arange(1, n + 1)).astype(str).str.zfill(width)
    return (prefix + s).to_numpy(dtype=object)


def _pick(rng: np.random.Generator, pool: np.ndarray, n: int) -> np.ndarray:
    return pool[rng.integers(0, len(pool), n)]


class _Groups:
    """Members of integer groups, for 'pick a random member of group g' in bulk."""

    def __init__(self, group: np.ndarray, members: np.ndarray, n_groups: int):
        order = np.argsort(group, kind="stable")
        self.members = members[order]
        counts = np.bincount(group, minlength=n_groups)
        self.count = counts
        self.start = np.concatenate([[0], np.cumsum(counts)[:-1]])

    def pick(self, rng: np.random.Generator, g: np.ndarray) -> np.ndarray:
        c = self.count[g]
        off = (rng.random(len(g)) * np.maximum(c, 1)).astype(np.int64)
        out = self.members[np.minimum(self.start[g] + off, len(self.members) - 1)] if len(self.members) else np.full(len(g), -1)
        return np.where(c > 0, out, -1)


# ============================================================== people and households
def _people(rng: np.random.Generator, n: int, year0: int) -> dict:
    H = int(n / 2.4) + 20
    while True:
        htype = _choice_p(rng, [0.45, 0.25, 0.25, 0.05], H)  # urban family, rural family, rented, dorm
        fam = htype <= 1
        head_age = np.where(fam, rng.integers(24, 78, H), np.where(htype == 2, rng.integers(19, 58, H),
                                                                  rng.integers(18, 50, H)))
        has_sp = np.where(fam, rng.random(H) < 0.82, np.where(htype == 2, rng.random(H) < 0.45, False))
        max_ch = np.clip((head_age - 20) // 4, 0, 3)
        n_ch = np.where(fam, np.minimum(rng.poisson(1.2, H), max_ch),
                        np.where((htype == 2) & has_sp, np.minimum(rng.poisson(0.6, H), max_ch), 0))
        p_par = np.where(htype == 1, 0.45, 0.22)
        n_par = np.where(fam & (head_age < 62) & (rng.random(H) < p_par), rng.integers(1, 3, H), 0)
        n_ten = np.where(htype == 3, rng.integers(3, 10, H),
                         np.where((htype == 2) & (rng.random(H) < 0.25), rng.integers(1, 4, H), 0))
        total = H + has_sp.sum() + n_ch.sum() + n_par.sum() + n_ten.sum()
        if total >= n:
            break
        H = int(H * 1.3) + 10

    hh_list, role_l, age_l, gen_l, slot_l = [], [], [], [], []
    head_male = rng.random(H) < np.where(fam, 0.74, np.where(htype == 2, 0.62, 0.68))

    def add(hh, role, age, male, slot):
        hh_list.append(hh); role_l.append(np.full(len(hh), role) if np.isscalar(role) else role)
        age_l.append(age); gen_l.append(male); slot_l.append(np.full(len(hh), slot))

    hh = np.arange(H)
    add(hh, _R["head"], head_age, head_male, 0)
    s = np.flatnonzero(has_sp)
    sp_role = np.where(htype[s] == 2, np.where(rng.random(len(s)) < 0.4, _R["partner"], _R["spouse"]), _R["spouse"])
    add(s, sp_role, np.clip(head_age[s] + np.round(rng.normal(-1.5, 3, len(s))), 18, 95).astype(int), ~head_male[s], 1)
    for k in range(3):
        c = np.flatnonzero(n_ch > k)
        age = np.maximum(0, head_age[c] - 22 - 3 * k - rng.integers(0, 9, len(c)))
        add(c, _R["child"], age, rng.random(len(c)) < 0.52, 2 + k)
    for k in range(2):
        par = np.flatnonzero(n_par > k)
        age = np.minimum(96, head_age[par] + 24 + rng.integers(0, 9, len(par)))
        male = np.full(len(par), k == 0) if k == 0 else np.zeros(len(par), bool)
        male = np.where(n_par[par] == 1, rng.random(len(par)) < 0.45, male)
        add(par, _R["parent"], age, male, 5 + k)
    for k in range(9):
        t = np.flatnonzero(n_ten > k)
        role = np.where(htype[t] == 3, _R["other"], _R["tenant"])
        add(t, role, rng.integers(18, 52, len(t)), rng.random(len(t)) < 0.64, 7 + k)

    phh = np.concatenate(hh_list)
    order = np.lexsort((np.concatenate(slot_l), phh))[:n]
    p: dict[str, Any] = {
        "hh": phh[order],
        "role": np.concatenate(role_l)[order],
        "age": np.concatenate(age_l)[order].astype(np.int64),
        "male": np.concatenate(gen_l)[order].astype(bool),
    }
    H = int(p["hh"].max()) + 1
    htype = htype[:H]
    p["htype"] = htype[p["hh"]]
    n_ = n
    age, male, pt = p["age"], p["male"], p["htype"]
    p["birth_year"] = year0 - age
    # hukou: local families, migrant tenants and dorm workers
    p_mig = np.array([0.2, 0.03, 0.75, 0.92])[pt]
    u = rng.random(n_)
    p["hukou"] = np.where(u < 0.01, 2, np.where(u < 0.01 + p_mig, 1, 0))
    # employment by age
    u = rng.random(n_)
    emp = np.full(n_, 4)
    emp = np.where(age < 16, 3, emp)
    emp = np.where((age >= 16) & (age < 23), np.where(u < 0.6, 3, np.where(u < 0.9, 0, 1)), emp)
    emp = np.where((age >= 23) & (age < 60), np.where(u < 0.80, 0, np.where(u < 0.92, 1, 4)), emp)
    emp = np.where(age >= 60, np.where(u < 0.85, 2, np.where(u < 0.95, 0, 4)), emp)
    emp = np.where((pt == 3) & (age >= 16), np.where(u < 0.97, 0, 1), emp)
    p["employment"] = emp
    # latent traits
    young_m = (male & (age >= 18) & (age < 40)).astype(float)
    adult = age >= 18
    alco = rng.normal(size=n_) + 0.5 * male + 0.2 * ((age >= 30) & (age < 60)) - 0.8 * ~adult
    aggr = rng.normal(size=n_) + 0.35 * male + 0.3 * young_m + 0.3 * alco - 0.6 * ~adult
    ment = rng.normal(size=n_)
    fin = rng.normal(size=n_) + 0.6 * (emp == 1) + 0.3 * (p["hukou"] == 1)
    p.update(aggr=aggr, alco=alco, ment=ment, fin=fin)
    p["tr"] = 0.55 * aggr + 0.30 * alco + 0.25 * ment + 0.15 * fin
    p["prop"] = np.exp(0.45 * aggr + 0.30 * alco + 0.25 * fin + 0.20 * ment) * adult
    p["adult"] = adult
    # names: household surname for head, children and head's father
    hs = _choice_p(rng, 1.0 / np.arange(1, len(SURNAMES) + 1) ** 0.9, H)
    own_sn = _choice_p(rng, 1.0 / np.arange(1, len(SURNAMES) + 1) ** 0.9, n_)
    r = p["role"]
    inherit = (r == _R["head"]) | (r == _R["child"]) | ((r == _R["parent"]) & male)
    sn = np.where(inherit, hs[p["hh"]], own_sn)
    g_w = 1.0 / np.arange(1, len(GIVEN) + 1) ** 0.5
    g1 = _choice_p(rng, g_w, n_)
    g2 = _choice_p(rng, g_w, n_)
    two = rng.random(n_) < 0.7
    p["name"] = SURNAMES[sn] + GIVEN[g1] + np.where(two, GIVEN[g2], "")
    p["H"] = H
    p["hh_type"] = htype
    return p


# A None branch for np.where: the result is an object array with None (numpy's stubs accept no bare None).
_NONE = np.array(None, dtype=object)


def _id_numbers(rng: np.random.Generator, birth_year: np.ndarray, male: np.ndarray, local: np.ndarray) -> np.ndarray:
    """18-character resident id numbers with a valid ISO 7064 MOD 11-2 check digit."""
    n = len(birth_year)
    region = np.where(local, LOCAL_REGION, _pick(rng, MIGRANT_REGIONS, n))
    month = rng.integers(1, 13, n)
    day = rng.integers(1, 29, n)
    born = (pd.Series(region.astype(str)) + pd.Series(birth_year).astype(str).str.zfill(4)
            + pd.Series(month).astype(str).str.zfill(2) + pd.Series(day).astype(str).str.zfill(2))
    # Real id numbers are unique: people born the same day in the same region and of the
    # same sex take consecutive sequence numbers from a random start.
    nth = pd.DataFrame({"b": born, "m": male}).groupby(["b", "m"]).cumcount().to_numpy()
    seq = ((_start_of(born, male, rng) + nth) % 500) * 2 + male.astype(int)
    body = born + pd.Series(seq).astype(str).str.zfill(3)
    digits = np.frombuffer("".join(body.tolist()).encode("ascii"), dtype=np.uint8).reshape(n, 17) - 48
    w = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
    chk = np.array(list("10X98765432"), dtype=object)[(digits.astype(np.int64) @ w) % 11]
    return (body + pd.Series(chk).astype(str)).to_numpy(dtype=object)


def _start_of(born: pd.Series, male: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random sequence start per (region and birth date, sex) group."""
    codes = pd.factorize(born.to_numpy(dtype=object) + np.where(male, "m", "f"))[0]
    return rng.integers(0, 500, codes.max() + 1 if len(codes) else 0)[codes]


def _phones(rng: np.random.Generator, n: int) -> np.ndarray:
    tail = pd.Series(rng.integers(0, 10**8, n)).astype(str).str.zfill(8)
    return (pd.Series(_pick(rng, PHONE_PREFIXES, n).astype(str)) + tail).to_numpy(dtype=object)


# ============================================================== geography
def _geography(rng: np.random.Generator, p: dict, n: int) -> dict:
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


# ============================================================== organisations
def _organizations(rng: np.random.Generator, p: dict, g: dict, n: int) -> dict:
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


# ============================================================== static relations and memberships
def _static_relations(rng: np.random.Generator, p: dict, g: dict, o: dict, n: int, T: float) -> dict:
    hh, role, age = p["hh"], p["role"], p["age"]
    head_of = np.full(p["H"], -1)
    is_head = role == _R["head"]
    head_of[hh[is_head]] = np.flatnonzero(is_head)
    p["head_of"] = head_of
    rel_a, rel_b, rel_t, rel_s = [], [], [], []

    def add(a, b, t, since):
        m = (a >= 0) & (b >= 0) & (a != b)
        rel_a.append(a[m]); rel_b.append(b[m]); rel_t.append(np.full(m.sum(), _REL[t]))
        rel_s.append(np.broadcast_to(since, a.shape)[m].astype(float))

    sp = np.flatnonzero((role == _R["spouse"]) | (role == _R["partner"]))
    couple = (head_of[hh[sp]], sp)
    p["couples"] = couple
    since_m = -365.25 * rng.uniform(0.5, np.maximum(age[sp] - 21, 1.0))
    since_m = np.where(rng.random(len(sp)) < 0.3, np.nan, since_m)
    is_sp = role[sp] == _R["spouse"]
    add(couple[0][is_sp], couple[1][is_sp], "spouse", since_m[is_sp])
    add(couple[0][~is_sp], couple[1][~is_sp], "partner", since_m[~is_sp])
    ch = np.flatnonzero(role == _R["child"])
    add(head_of[hh[ch]], ch, "parent_child", np.nan)
    spouse_of_hh = np.full(p["H"], -1)
    spouse_of_hh[hh[sp]] = sp
    add(spouse_of_hh[hh[ch]], ch, "parent_child", np.nan)
    par = np.flatnonzero(role == _R["parent"])
    add(par, head_of[hh[par]], "parent_child", np.nan)
    pc_pairs = (np.concatenate([head_of[hh[ch]], par]), np.concatenate([ch, head_of[hh[par]]]))
    adult_pc = p["adult"][pc_pairs[0]] & p["adult"][pc_pairs[1]]
    p["pc_pairs"] = (pc_pairs[0][adult_pc], pc_pairs[1][adult_pc])
    # siblings: consecutive children of one household
    nxt = ch[1:][hh[ch[1:]] == hh[ch[:-1]]]
    prv = ch[:-1][hh[ch[1:]] == hh[ch[:-1]]]
    add(prv, nxt, "sibling", np.nan)
    sib_adult = p["adult"][prv] & p["adult"][nxt]
    p["sib_pairs"] = (prv[sib_adult], nxt[sib_adult])
    # ex-spouses from before the data: single tenant heads of opposite sex
    singles = np.flatnonzero(is_head & (p["htype"] == 2) & (age >= 28))
    singles = singles[np.bincount(hh, minlength=p["H"])[hh[singles]] == 1]
    m_s, f_s = singles[p["male"][singles]], singles[~p["male"][singles]]
    k = min(len(m_s), len(f_s)) // 2
    ex = (rng.permutation(m_s)[:k], rng.permutation(f_s)[:k])
    add(ex[0], ex[1], "ex_spouse", -365.25 * rng.uniform(0.3, 8, k))
    p["ex_pairs"] = ex
    # landlord-tenant
    ll_p = o["ll_person"]
    ten = head_of[o["rented_hh"]]
    add(ll_p, ten, "landlord_tenant", np.where(rng.random(len(ten)) < 0.5, np.nan, -rng.uniform(30, 1500, len(ten))))
    # employer-employee for small enterprises: owner with each worker
    emp = p["employer"]
    wk = np.flatnonzero(emp >= 0)
    size = np.bincount(emp[wk], minlength=o["n_ent"])
    small = size[emp[wk]] <= 30
    add(o["owner"][emp[wk[small]]], wk[small], "employer_employee", -rng.uniform(30, 3000, small.sum()))
    # neighbours: consecutive households in one building or village
    heads = np.flatnonzero(is_head)
    hp = g["hh_place"][hh[heads]]
    key = np.where(g["pl_type"][hp] == _PT["rural_village"], -1 - g["pl_grid"][hp], hp)
    o_ = np.argsort(key, kind="stable")
    hs, ks = heads[o_], key[o_]
    same = ks[1:] == ks[:-1]
    na, nb = hs[:-1][same], hs[1:][same]
    p["nb_pairs"] = (na, nb)
    sel = rng.random(len(na)) < 0.25
    add(na[sel], nb[sel], "neighbor", np.where(rng.random(sel.sum()) < 0.5, np.nan, -rng.uniform(100, 3000, sel.sum())))
    # acquaintances inside a grid
    adults = np.flatnonzero(p["adult"])
    grp = _Groups(p["grid"][adults], adults, g["n_grid"])
    a = adults[rng.random(len(adults)) < 0.15]
    b = grp.pick(rng, p["grid"][a])
    add(a, b, "acquaintance", np.where(rng.random(len(a)) < 0.6, np.nan, -rng.uniform(100, 5000, len(a))))
    p["grid_adults"] = grp
    rel = {"a": rel_a, "b": rel_b, "t": rel_t, "s": rel_s}
    return rel


# ============================================================== conflict episodes
class _Acc:
    """Accumulates incidents, parties and mediations as arrays of internal indices."""

    def __init__(self):
        self.inc = {k: [] for k in ("kind", "cat", "t", "lag", "place", "source", "amount", "heat",
                                    "related", "ep", "who")}
        self.n = 0
        self.par = {k: [] for k in ("inc", "pid", "ptype", "role")}
        self.med = {k: [] for k in ("inc", "t", "mtype", "outcome")}

    def add_incidents(self, **cols) -> np.ndarray:
        m = len(cols["t"])
        idx = np.arange(self.n, self.n + m)
        self.n += m
        defaults = {"amount": np.nan, "heat": 0.0, "related": -1, "ep": -1, "who": -1, "place": -1}
        for k in self.inc:
            v = cols.get(k, defaults.get(k))
            self.inc[k].append(np.broadcast_to(np.asarray(v), (m,)).copy())
        return idx

    def add_parties(self, inc, pid, ptype, role):
        m = (pid >= 0)
        inc = np.broadcast_to(inc, pid.shape)[m]
        self.par["inc"].append(inc)
        self.par["pid"].append(pid[m])
        self.par["ptype"].append(np.broadcast_to(ptype, pid.shape)[m].astype(np.int8))
        self.par["role"].append(np.broadcast_to(role, pid.shape)[m].astype(np.int8))


def _episodes(rng: np.random.Generator, p: dict, g: dict, o: dict, n: int, T: float) -> dict:
    """Draw all episodes: primary parties, group members, place, amount, start day."""
    yrs = T / 365.25
    prop = p["prop"]
    parts = []

    def pairs_w(a, b):
        return prop[a] * prop[b] + 1e-9

    def draw_pairs(pairs, k):
        if len(pairs[0]) == 0 or k == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        i = _choice_p(rng, pairs_w(*pairs), k)
        return pairs[0][i], pairs[1][i]

    def draw_persons(w, k):
        return _choice_p(rng, w + 1e-12, k)

    adults = p["adult"].astype(float)

    def ep(cat, a, bp=None, bo=None, sub=0, cores=False, amount=np.nan, place=None):
        m = len(a)
        parts.append(dict(cat=np.full(m, _DC[cat]), a=a,
                          bp=np.full(m, -1) if bp is None else bp, bo=np.full(m, -1) if bo is None else bo,
                          sub=np.broadcast_to(sub, (m,)).copy(), cores=np.broadcast_to(cores, (m,)).copy(),
                          amount=np.broadcast_to(amount, (m,)).astype(float).copy(),
                          place=p["place"][a] if place is None else place))

    def count(cat):
        return rng.poisson(1.25 * _CAT_PARAMS[cat][0] * n * yrs)

    # marriage and family
    k = count("marriage_family")
    ks = rng.multinomial(k, [0.55, 0.15, 0.20, 0.10])
    a, b = draw_pairs(p["couples"], ks[0]); ep("marriage_family", a, b, sub=0, cores=True)
    a, b = draw_pairs(p["ex_pairs"], ks[1]); ep("marriage_family", a, b, sub=1, cores=False)
    a, b = draw_pairs(p["pc_pairs"], ks[2]); ep("marriage_family", a, b, sub=2, cores=p["hh"][a] == p["hh"][b])
    a, b = draw_pairs(p["sib_pairs"], ks[3]); ep("marriage_family", a, b, sub=3, cores=p["hh"][a] == p["hh"][b])
    # neighbours (rural plot neighbours fight over homesteads: land_housing)
    na, nb = p["nb_pairs"]
    rural = g["pl_type"][p["place"][na]] == _PT["rural_village"]
    k = count("neighbor")
    a, b = draw_pairs((na, nb), k)
    ep("neighbor", a, b, sub=rng.integers(0, 3, k))
    k = count("land_housing")
    ks = rng.multinomial(k, [0.5, 0.35, 0.15])
    a, b = draw_pairs((na[rural], nb[rural]), ks[0])
    ep("land_housing", a, b, sub=0, amount=np.where(rng.random(len(a)) < 0.5, np.nan, rng.lognormal(np.log(8e4), 0.9, len(a))))
    ri = rng.integers(0, max(len(o["rented_hh"]), 1), ks[1]) if len(o["rented_hh"]) else np.zeros(0, int)
    ten = p["head_of"][o["rented_hh"][ri]]
    ep("land_housing", ten, o["ll_person"][ri], o["ll_org"][ri], sub=1,
       amount=rng.lognormal(np.log(3000), 0.7, len(ri)))
    # villagers against the town government: a group of plot holders of one village
    vil_heads = np.flatnonzero((p["role"] == _R["head"]) & (p["htype"] == 1))
    k3 = ks[2] if len(vil_heads) else 0
    lead = vil_heads[rng.integers(0, max(len(vil_heads), 1), k3)]
    ep("land_housing", lead, None, o["gov_of_town"][g["grid_town"][p["grid"][lead]]], sub=2,
       amount=rng.lognormal(np.log(2e5), 0.8, k3))
    # debt: debtors weighted by financial stress; creditor in the same grid 40% of the time
    k = count("debt")
    deb = draw_persons(adults * np.exp(0.8 * p["fin"] + 0.3 * p["aggr"]), k)
    cred = np.where(rng.random(k) < 0.4, p["grid_adults"].pick(rng, p["grid"][deb]), draw_persons(adults, k))
    cred = np.where(cred == deb, draw_persons(adults, k), cred)
    ep("debt", cred, deb, amount=rng.lognormal(np.log(3e4), 1.0, k))
    # labour: group wage arrears against one enterprise, plus single workers
    k = count("labor_wage")
    k_grp = int(k * 0.35)
    wk = o["workers"]
    has_w = np.flatnonzero(wk.count > 0)
    ent_g = has_w[_choice_p(rng, (wk.count[has_w] ** 0.8) * o["ent_w"][has_w] ** 0.3, k_grp)] if len(has_w) else np.zeros(0, int)
    gsize = np.minimum(np.clip(rng.lognormal(np.log(8), 0.7, len(ent_g)).astype(int), 3, 60), wk.count[ent_g])
    off0 = (rng.random(len(ent_g)) * wk.count[ent_g]).astype(int)
    lead = wk.members[wk.start[ent_g] + off0]
    gparts = []
    ep_base = sum(len(x["a"]) for x in parts)
    for j in range(1, 60):  # loop over group-member slots, not over episodes
        mm = gsize > j
        if not mm.any():
            break
        pos = wk.start[ent_g[mm]] + (off0[mm] + j) % wk.count[ent_g[mm]]
        gparts.append((ep_base + np.flatnonzero(mm), wk.members[pos]))
    ep("labor_wage", lead, np.where(rng.random(len(ent_g)) < 0.5, o["owner"][ent_g], -1), ent_g, sub=1,
       amount=gsize * rng.lognormal(np.log(9000), 0.6, len(ent_g)))
    k_one = k - len(ent_g)
    wkr = np.flatnonzero(p["employer"] >= 0)
    one = wkr[_choice_p(rng, prop[wkr] * np.exp(0.5 * p["fin"][wkr]), k_one)] if len(wkr) else np.zeros(0, int)
    ep("labor_wage", one, None, p["employer"][one], sub=0, amount=rng.lognormal(np.log(12000), 0.8, len(one)))
    # residents against property management: sometimes a group from one building
    k = count("property_management")
    urb = np.flatnonzero((p["role"] == _R["head"]) & (g["pl_type"][p["place"]] == _PT["residential"]))
    res = urb[_choice_p(rng, prop[urb], k)] if len(urb) else np.zeros(0, int)
    pm = o["build_pm"][np.minimum(p["place"][res], len(o["build_pm"]) - 1)]
    ep_base = sum(len(x["a"]) for x in parts)
    grp_sz = np.where(rng.random(len(res)) < 0.3, rng.integers(2, 7, len(res)), 1)
    srt = urb[np.argsort(p["place"][urb], kind="stable")]
    pos_of = np.empty(n, np.int64)
    pos_of[srt] = np.arange(len(srt))
    for j in range(1, 6):
        mm = grp_sz > j
        q = np.minimum(pos_of[res[mm]] + j, len(srt) - 1)
        same = p["place"][srt[q]] == p["place"][res[mm]]
        gparts.append((ep_base + np.flatnonzero(mm)[same], srt[q][same]))
    ep("property_management", res, None, pm, amount=rng.lognormal(np.log(3000), 0.8, len(res)))
    # customers against banks and insurers
    k = count("consumer_finance")
    cu = draw_persons(adults * np.exp(0.9 * p["fin"]), k)
    bk = o["banks"][rng.integers(0, len(o["banks"]), k)]
    ep("consumer_finance", cu, None, bk, amount=rng.lognormal(np.log(2e4), 1.0, k), place=o["place"][bk])
    # traffic: two strangers at a public or commercial place
    k = count("traffic")
    a = draw_persons(adults * (1 + 0.5 * p["male"]), k)
    b = draw_persons(adults, k)
    tp = np.where(rng.random(k) < 0.5, g["off_c"] + rng.integers(0, g["n_com"], k), g["off_p"] + rng.integers(0, g["n_pub"], k))
    ep("traffic", a, np.where(a == b, -1, b), amount=rng.lognormal(np.log(5000), 1.0, k), place=tp)
    # medical: patient (or family) against a hospital
    k = count("medical")
    a = draw_persons(adults * (1 + (p["age"] > 50)), k)
    hs = o["hosp"][rng.integers(0, len(o["hosp"]), k)]
    ep("medical", a, None, hs, amount=rng.lognormal(np.log(5e4), 1.0, k), place=o["place"][hs])
    # contract: person against an enterprise or another person
    k = count("contract")
    a = draw_persons(adults * np.exp(0.3 * p["fin"]), k)
    to_org = rng.random(k) < 0.6
    b = np.where(to_org, -1, draw_persons(adults, k))
    ep("contract", a, np.where(b == a, -1, b), np.where(to_org, rng.integers(0, o["n_ent"], k), -1),
       amount=rng.lognormal(np.log(5e4), 1.2, k))
    # other: two people in one grid
    k = count("other")
    a = draw_persons(prop, k)
    b = p["grid_adults"].pick(rng, p["grid"][a])
    ep("other", a, np.where(b == a, -1, b))

    e: dict[str, Any] = {key: np.concatenate([x[key] for x in parts]) for key in parts[0]}
    # an episode with no counterpart at all gets an acquaintance in the grid
    none = (e["bp"] < 0) & (e["bo"] < 0)
    e["bp"][none] = p["grid_adults"].pick(rng, p["grid"][e["a"][none]])
    gp = [x for x in gparts if len(x[0])]
    e["g_ep"] = np.concatenate([x[0] for x in gp]) if gp else np.zeros(0, np.int64)
    e["g_pid"] = np.concatenate([x[1] for x in gp]) if gp else np.zeros(0, np.int64)
    keep = e["g_pid"] != e["a"][e["g_ep"]]
    e["g_ep"], e["g_pid"] = e["g_ep"][keep], e["g_pid"][keep]
    E = len(e["a"])
    e["E"] = E
    e["t0"] = rng.uniform(0, T, E)
    return e


def _simulate(rng: np.random.Generator, p: dict, g: dict, o: dict, e: dict, acc: _Acc, T: float) -> dict:
    """Run the episodes in weekly steps: follow-ups, mediations, heat, escalation."""
    E = e["E"]
    cat = e["cat"]
    par = np.array([_CAT_PARAMS[c] for c in DISPUTE_CATEGORIES])
    a, bp = e["a"], e["bp"]
    tr = p["tr"]
    tr_b = np.where(bp >= 0, tr[np.maximum(bp, 0)], -np.inf)
    tr_max = np.maximum(tr[a], tr_b)
    if len(e["g_ep"]):
        np.maximum.at(tr_max, e["g_ep"], tr[e["g_pid"]])
    gsize = 2 + np.bincount(e["g_ep"], minlength=E)
    pv = p["pv0"][a] | np.where(bp >= 0, p["pv0"][np.maximum(bp, 0)], False)
    amt = np.nan_to_num(np.log1p(e["amount"] / 1e4), nan=0.0)
    fam = cat == _DC["marriage_family"]
    u_e = rng.normal(0, 0.4, E)
    lin = (_B0 + par[cat, 2] + 1.1 * tr_max + 0.9 * pv + 0.7 * (fam & e["cores"]) + 0.25 * amt
           + 0.35 * np.log(gsize / 2.0) + u_e)
    h = rng.normal(0, 0.7, E) + 0.35 * tr_max + par[cat, 1] + 0.15 * amt
    e["h0"] = h.copy()
    e["lin"] = lin
    # the dispute record
    src = _rows_choice(rng, np.array([_DISPUTE_SOURCES[c] for c in DISPUTE_CATEGORIES])[cat])
    lag = np.minimum(rng.lognormal(np.log(0.25), 1.3, E), 20.0)
    lag = np.where(src == _S["police_110"], rng.uniform(0.005, 0.08, E), lag)
    e["lag"] = lag
    t_rep = e["t0"] + lag
    e["inc"] = acc.add_incidents(kind=_K["dispute"], cat=cat, t=e["t0"], lag=lag, place=e["place"], source=src,
                                 amount=e["amount"], heat=h, ep=np.arange(E), who=a)
    # closing: lognormal duration, longer when hot; some never close
    dur = rng.lognormal(np.log(30), 1.1, E) * np.exp(0.25 * h)
    never = rng.random(E) < 0.95 * par[cat, 3] * np.exp(0.2 * np.clip(h, -2, 2))
    tc = np.where(never, np.inf, t_rep + dur)
    agreed = np.zeros(E, bool)
    failed_last = np.zeros(E, bool)
    n_med = np.zeros(E, np.int64)
    alive = np.ones(E, bool)
    t_esc = np.full(E, np.nan)
    n_fu = np.zeros(E, np.int64)
    kind_p = np.array([  # follow-up kind mix (police_call, complaint, petition) per category
        [0.75, 0.15, 0.10], [0.55, 0.35, 0.10], [0.40, 0.30, 0.30], [0.20, 0.40, 0.40], [0.25, 0.30, 0.45],
        [0.10, 0.65, 0.25], [0.60, 0.25, 0.15], [0.25, 0.40, 0.35], [0.05, 0.70, 0.25], [0.20, 0.50, 0.30],
        [0.50, 0.30, 0.20]])
    fu_kinds = np.array([_K["police_call"], _K["complaint"], _K["petition"]])
    med_p = np.array([_MEDIATORS[c] for c in DISPUTE_CATEGORIES])
    S = 30
    h_visit = np.zeros((E, len(VISIT_WEEKS)), np.float32)
    for s in range(S):
        ws = e["t0"] + 7.0 * s
        lo = np.maximum(ws, t_rep)  # nothing of the episode is recorded before the dispute itself
        decay = np.exp(-s / 6.0)
        is_open = lo < tc
        # follow-up records
        rate = 0.09 * np.exp(np.clip(0.7 * h, -5, 3)) * decay * np.where(is_open, 1.0, 0.3) * alive
        nf = rng.poisson(rate)
        nf = np.minimum(nf, 3)
        for j in range(1, 4):
            ids = np.flatnonzero(nf >= j)
            if not len(ids):
                break
            kk = fu_kinds[_rows_choice(rng, kind_p[cat[ids]])]
            tt = lo[ids] + rng.uniform(0.01, 7.0, len(ids))
            fk_src = np.where(kk == _K["police_call"], _S["police_110"],
                              np.where(kk == _K["complaint"], np.where(rng.random(len(ids)) < 0.8, _S["hotline_12345"], _S["grid_worker"]),
                                       _S["petition_office"]))
            flag = rng.random(len(ids)) < np.where(kk == _K["police_call"], 0.4, np.where(kk == _K["complaint"], 0.55, 0.5))
            lg = np.where(kk == _K["police_call"], rng.uniform(0.003, 0.05, len(ids)),
                          np.where(kk == _K["complaint"], rng.lognormal(np.log(0.3), 1.0, len(ids)), rng.uniform(0.5, 5, len(ids))))
            acc.add_incidents(kind=kk, cat=cat[ids], t=tt, lag=lg, place=e["place"][ids], source=fk_src,
                              amount=np.where(rng.random(len(ids)) < 0.5, e["amount"][ids], np.nan),
                              heat=h[ids] + 0.35 * n_fu[ids] / 2, related=np.where(flag, e["inc"][ids], -1),
                              ep=ids, who=np.where((rng.random(len(ids)) < 0.3) & (bp[ids] >= 0), bp[ids], a[ids]))
            n_fu[ids] += 1
        h = h + 0.35 * nf + rng.normal(0, 0.1, E) * (nf > 0)
        # mediation sessions
        pm = np.where(s == 0, 0.55, np.where(s < 4, 0.22, 0.06)) * is_open * alive
        mids = np.flatnonzero(rng.random(E) < pm)
        if len(mids):
            tm = lo[mids] + rng.uniform(0.1, 7.0, len(mids))
            hm = h[mids]
            p_ag = _sig(0.9 - 0.9 * hm - 0.3 * tr_max[mids])
            u = rng.random(len(mids))
            out = np.where(u < 0.05, _MO["pending"], np.where(u < 0.20, _MO["partial"],
                           np.where(rng.random(len(mids)) < p_ag, _MO["agreement"], _MO["failed"])))
            acc.med["inc"].append(e["inc"][mids]); acc.med["t"].append(tm)
            acc.med["mtype"].append(_rows_choice(rng, med_p[cat[mids]])); acc.med["outcome"].append(out)
            d = np.where(out == _MO["agreement"], -1.0, np.where(out == _MO["failed"], 0.6,
                         np.where(out == _MO["partial"], -0.3, 0.0)))
            h[mids] += d + rng.normal(0, 0.2, len(mids))
            ag_t = tm[(out == _MO["agreement"])]
            ag_ids = mids[out == _MO["agreement"]]
            # a never-closed record stays open in the system even after an agreement
            close_now = (rng.random(len(ag_ids)) < 0.8) & ~never[ag_ids]
            tc[ag_ids[close_now]] = np.minimum(tc[ag_ids[close_now]], ag_t[close_now] + rng.uniform(0, 5, close_now.sum()))
            agreed[ag_ids] = True
            failed_last[mids] = out == _MO["failed"]
            n_med[mids] += 1
        # heat relaxes; escalation hazard
        h = np.clip(0.88 * h + rng.normal(0, 0.25, E), -4.0, 5.0)
        if s in VISIT_WEEKS:  # the heat a return visit at the end of this week would find
            h_visit[:, VISIT_WEEKS.index(s)] = h
        lam = np.exp(np.minimum(lin + 0.8 * h, 3.0)) * np.exp(-s / 12.0) * np.where(lo < tc, 1.0, 0.3)
        fire = alive & (rng.random(E) < -np.expm1(-lam))
        t_esc[fire] = lo[fire] + rng.uniform(0.05, 7.0, fire.sum())
        alive &= ~fire
    e.update(tc=tc, agreed=agreed, failed_last=failed_last, n_med=n_med, t_esc=t_esc, t_rep=t_rep,
             n_fu=n_fu, h_end=h, gsize=gsize, tr_max=tr_max, h_visit=h_visit)
    return e


def _escalations(rng: np.random.Generator, p: dict, o: dict, e: dict, acc: _Acc) -> None:
    """Turn fired escalations into criminal cases with suspects and victims."""
    ids = np.flatnonzero(~np.isnan(e["t_esc"]))
    cat = e["cat"][ids]
    mix = np.array([_OFFENCE_MIX[c] for c in DISPUTE_CATEGORIES])
    off = _rows_choice(rng, mix[cat])
    a, bp, bo = e["a"][ids], e["bp"][ids], e["bo"][ids]
    tr = p["tr"]
    b_person = bp >= 0
    a_susp = np.where(b_person, rng.random(len(ids)) < _sig(2.0 * (tr[a] - tr[np.maximum(bp, 0)])), True)
    susp = np.where(a_susp, a, bp)
    vict = np.where(a_susp, bp, a)
    ent = (bo >= 0) & (bo < o["n_ent"])
    vict = np.where((vict < 0) & ent & (rng.random(len(ids)) < 0.7), o["owner"][np.where(ent, bo, 0)], vict)
    rel = np.where(rng.random(len(ids)) < 0.5, e["inc"][ids], -1)
    lag = np.where(rng.random(len(ids)) < 0.85, rng.uniform(0.01, 0.5, len(ids)), rng.uniform(0.5, 20, len(ids)))
    place = np.where(rng.random(len(ids)) < 0.7, e["place"][ids], p["place"][susp])
    inc = acc.add_incidents(kind=_K["criminal_case"], cat=off, t=e["t_esc"][ids], lag=lag, place=place,
                            source=np.where(rng.random(len(ids)) < 0.9, _S["police_110"], _S["other"]),
                            heat=e["h_end"][ids] + 2.0, related=rel, ep=ids, who=susp)
    acc.add_parties(inc, susp, 0, _PR["suspect"])
    acc.add_parties(inc, vict, 0, _PR["victim"])
    org_victim = (bo >= 0) & ((off == _OC["property_damage"]) | (rng.random(len(ids)) < 0.3))
    acc.add_parties(inc, np.where(org_victim, bo, -1), 1, _PR["victim"])
    # group fights and detentions pull in group members as co-suspects
    if len(e["g_ep"]):
        pos = np.full(e["E"], -1)
        pos[ids] = np.arange(len(ids))
        gi = pos[e["g_ep"]]
        m = (gi >= 0) & (rng.random(len(gi)) < 0.35)
        acc.add_parties(inc[gi[m]], e["g_pid"][m], 0, _PR["suspect"])
    wit = rng.random(len(ids)) < 0.25
    hh_mate = p["grid_adults"].pick(rng, p["grid"][vict.clip(0)])
    acc.add_parties(inc, np.where(wit & (vict >= 0), hh_mate, -1), 0, _PR["witness"])
    e["crime_inc"] = inc
    e["crime_susp"] = susp


def _episode_parties(e: dict, acc: _Acc, rng: np.random.Generator) -> None:
    """Parties of the dispute and of its follow-ups: the same people in the same roles."""
    inc = np.concatenate(acc.inc["ep"])
    kinds = np.concatenate(acc.inc["kind"])
    sel = np.flatnonzero((inc >= 0) & (kinds != _K["criminal_case"]))
    ep = inc[sel]
    acc.add_parties(sel, e["a"][ep], 0, _PR["complainant"])
    acc.add_parties(sel, e["bp"][ep], 0, _PR["respondent"])
    acc.add_parties(sel, e["bo"][ep], 1, _PR["respondent"])
    if len(e["g_ep"]):
        # group members on the dispute always, on each follow-up sometimes
        order = np.argsort(ep, kind="stable")
        ep_s, sel_s = ep[order], sel[order]
        start = np.searchsorted(ep_s, e["g_ep"], side="left")
        end = np.searchsorted(ep_s, e["g_ep"], side="right")
        reps = end - start
        gi = np.repeat(np.arange(len(e["g_ep"])), reps)
        pos = np.repeat(start, reps) + (np.arange(reps.sum()) - np.repeat(np.cumsum(reps) - reps, reps))
        incs = sel_s[pos]
        is_disp = kinds[incs] == _K["dispute"]
        keep = is_disp | (rng.random(len(incs)) < 0.4)
        acc.add_parties(incs[keep], e["g_pid"][gi[keep]], 0, _PR["complainant"])


def _background(rng: np.random.Generator, p: dict, g: dict, o: dict, acc: _Acc, n: int, T: float) -> None:
    """Police calls, complaints and crimes that belong to no recorded dispute."""
    yrs = T / 365.25
    adults = p["adult"].astype(float)
    grid_adults = p["grid_adults"]
    # police calls about a volatile person
    k = rng.poisson(0.075 * n * yrs)
    w = adults * np.exp(0.6 * p["aggr"] + 0.6 * p["alco"] + 0.3 * p["ment"])
    resp = _choice_p(rng, w, k)
    cat = _choice_p(rng, [0.3, 0.3, 0.04, 0.0, 0.0, 0.0, 0.14, 0.0, 0.0, 0.02, 0.2], k)
    hh_members = _Groups(p["hh"], np.arange(n), p["H"])
    hhm = hh_members.pick(rng, p["hh"][resp])
    comp = np.where(cat == _DC["marriage_family"], hhm, grid_adults.pick(rng, p["grid"][resp]))
    comp = np.where(comp == resp, -1, comp)
    inc = acc.add_incidents(kind=_K["police_call"], cat=cat, t=rng.uniform(0, T, k), lag=rng.uniform(0.003, 0.05, k),
                            place=p["place"][resp], source=_S["police_110"],
                            heat=rng.normal(-0.3, 0.8, k) + 0.4 * p["aggr"][resp], who=resp)
    acc.add_parties(inc, comp, 0, _PR["complainant"])
    acc.add_parties(inc, resp, 0, _PR["respondent"])
    # complaints against organisations
    k = rng.poisson(0.025 * n * yrs)
    who = _choice_p(rng, adults * np.exp(0.3 * p["fin"]), k)
    u = rng.random(k)
    urb_pm = o["build_pm"][np.minimum(p["place"][who], len(o["build_pm"]) - 1)]
    org = np.where(u < 0.4, urb_pm, np.where(u < 0.7, o["banks"][rng.integers(0, len(o["banks"]), k)],
                                             rng.integers(0, o["n_ent"], k)))
    cat = np.where(u < 0.4, _DC["property_management"], np.where(u < 0.7, _DC["consumer_finance"],
                   np.where(rng.random(k) < 0.5, _DC["labor_wage"], _DC["contract"])))
    inc = acc.add_incidents(kind=_K["complaint"], cat=cat, t=rng.uniform(0, T, k), lag=rng.lognormal(np.log(0.3), 1.0, k),
                            place=p["place"][who], source=_S["hotline_12345"], heat=rng.normal(-0.5, 0.7, k), who=who)
    acc.add_parties(inc, who, 0, _PR["complainant"])
    acc.add_parties(inc, org, 1, _PR["respondent"])
    # crime with no dispute behind it, committed mostly by aggressive drinkers
    k = rng.poisson(0.0085 * n * yrs)
    susp = _choice_p(rng, adults * np.exp(1.1 * p["aggr"] + 0.5 * p["alco"]), k)
    vict = np.where(rng.random(k) < 0.25, hh_members.pick(rng, p["hh"][susp]), grid_adults.pick(rng, p["grid"][susp]))
    vict = np.where(rng.random(k) < 0.15, _choice_p(rng, adults, k), vict)
    vict = np.where(vict == susp, -1, vict)
    off = _choice_p(rng, [0.30, 0.10, 0.004, 0.006, 0.16, 0.10, 0.18, 0.01, 0.14], k)
    inc = acc.add_incidents(kind=_K["criminal_case"], cat=off, t=rng.uniform(0, T, k), lag=rng.uniform(0.01, 1.0, k),
                            place=np.where(rng.random(k) < 0.5, p["place"][susp],
                                           g["off_c"] + rng.integers(0, g["n_com"], k)),
                            source=_S["police_110"], heat=rng.normal(1.0, 1.0, k) + 0.3 * p["aggr"][susp], who=susp)
    acc.add_parties(inc, susp, 0, _PR["suspect"])
    acc.add_parties(inc, vict, 0, _PR["victim"])


def _descriptions(rng: np.random.Generator, kind: np.ndarray, cat: np.ndarray, heat: np.ndarray,
                  alco: np.ndarray, ment: np.ndarray, amount: np.ndarray, n_prior: np.ndarray) -> np.ndarray:
    """Template text: risk phrases appear more often the hotter the record."""
    N = len(kind)
    en = rng.random(N) < 0.10
    out = np.empty(N, dtype=object)
    out[:] = ""
    is_crime = kind == _K["criminal_case"]
    for _lang, mask_l, body_d, off_d, pre_d in ((0, ~en, _ZH_BODY, _ZH_OFFENCE, _ZH_PREFIX), (1, en, _EN_BODY, _EN_OFFENCE, _EN_PREFIX)):
        for ki, kname in enumerate(INCIDENT_KINDS):
            m = mask_l & (kind == ki)
            if not m.any():
                continue
            idx = np.flatnonzero(m)
            pre = np.array(pre_d[kname], dtype=object)
            text = pre[rng.integers(0, len(pre), len(idx))]
            codes = OFFENCE_CATEGORIES if kname == "criminal_case" else DISPUTE_CATEGORIES
            src = off_d if kname == "criminal_case" else body_d
            body = np.empty(len(idx), dtype=object)
            for ci, cname in enumerate(codes):
                cm = cat[idx] == ci
                if cm.any():
                    opts = np.array(src[cname], dtype=object)
                    body[cm] = opts[rng.integers(0, len(opts), cm.sum())]
            out[idx] = text + body
    h = np.clip(heat, -4, 6)
    kw_d = (_ZH_KW, _EN_KW)
    probs = {
        "threat": _sig(-3.0 + 1.1 * h),
        "weapon": _sig(-4.4 + 1.0 * h),
        "drink": _sig(-3.4 + 0.8 * alco + 0.35 * h),
        "selfharm": _sig(-4.8 + 0.8 * ment + 0.45 * h),
        "petition": np.where(kind == _K["petition"], _sig(-2.0 + 0.9 * n_prior), _sig(-5.0 + 0.5 * n_prior + 0.3 * h)),
        "calm": np.where(cat == _DC["neighbor"], 0.12, 0.04) * (~is_crime),
    }
    for key, pr in probs.items():
        m = rng.random(N) < pr
        for li, lm in ((0, ~en), (1, en)):
            mm = np.flatnonzero(m & lm)
            if len(mm):
                opts = np.array(kw_d[li][key], dtype=object)
                out[mm] = out[mm] + opts[rng.integers(0, len(opts), len(mm))]
    has_amt = ~np.isnan(amount) & (rng.random(N) < 0.6)
    if has_amt.any():
        idx = np.flatnonzero(has_amt)
        a = pd.Series(np.round(amount[idx]).astype(np.int64)).astype(str).to_numpy(dtype=object)
        out[idx] = out[idx] + np.where(en[idx], "; amount about " + a + " yuan", "，涉及金额约" + a + "元")
    out = out + np.where(en, ".", "。")
    return out


# ============================================================== late facts (contract 1.1)
_ZH_VISIT = {"calm": ["回访：双方情绪平稳", "回访：已按协议履行", "回访：矛盾基本化解", "回访：双方未再发生争执"],
             "open": ["回访：矛盾仍未化解", "回访：双方仍有争执", "回访：当事人情绪激动，拒不接受调解",
                      "回访：双方僵持不下"]}
_EN_VISIT = {"calm": ["Return visit: parties calm", "Return visit: the agreement is being kept"],
             "open": ["Return visit: conflict unresolved", "Return visit: parties still arguing, hostile"]}
_ZH_AFTER_CRIME = {
    "assault": "当事人因殴打他人被公安机关立案", "intentional_injury": "当事人因持刀伤人被刑事立案",
    "homicide": "当事人持刀致人死亡，已被刑事拘留", "arson": "当事人泼汽油纵火，已被刑事拘留",
    "property_damage": "当事人因故意毁坏财物被立案", "threat_intimidation": "当事人因威胁恐吓他人被立案",
    "affray": "双方发生斗殴，已移送公安机关", "illegal_detention": "当事人因非法拘禁被刑事立案",
    "other": "当事人涉嫌违法犯罪，已移送公安机关",
}
_EN_AFTER_CRIME = "Party now under criminal investigation (case opened by the police)"


def _late_facts(rng: np.random.Generator, *, p: dict, e: dict, n: int, T: float, new_of: np.ndarray,
                kind: np.ndarray, cat: np.ndarray, rep: np.ndarray, closed: np.ndarray, ep_of: np.ndarray,
                pinc: np.ndarray, ppid: np.ndarray, ptype: np.ndarray, prole: np.ndarray, med_t: np.ndarray,
                cs_p: np.ndarray, cs_t: np.ndarray) -> dict:
    """Facts recorded after the report (contract 1.1), drawn from their own random stream so
    that every 1.0 table of a seed stays as it was.

    - parties added later: a household member of the suspect put on the dispute days
      after an escalation (35%), a relative of a party joining a dispute (4%), a crime's
      witness named weeks after the report (half of them);
    - outcomes typed in days after the session (35% of mediations);
    - hukou and employment histories written back from the export values: a suspect
      unemployed at export lost their job months after the crime; some locals were
      migrants before; some people were registered only during the period (unknown before);
    - notes: return visits in the first weeks, with danger words as likely as the heat then
      found makes them, and a note on the dispute after its escalation to a crime.
    """
    out: dict = {}
    hh = _Groups(p["hh"], np.arange(n), p["H"])
    persons_on = set((pinc[ptype == 0].astype(np.int64) * (n + 1) + ppid[ptype == 0]).tolist())
    # -- a witness of a crime named only later
    added = np.full(len(pinc), np.nan)
    wit = np.flatnonzero((ptype == 0) & (prole == _PR["witness"]) & (kind[pinc] == _K["criminal_case"]))
    wit = wit[rng.random(len(wit)) < 0.5]
    tw = rep[pinc[wit]] + rng.uniform(1, 30, len(wit))
    added[wit[tw < T]] = tw[tw < T]
    out["party_added"] = added
    # -- new parties: a relative of the suspect after an escalation; a relative joining a quarrel
    esc = np.flatnonzero(~np.isnan(e["t_esc"]))
    crime = new_of[e["crime_inc"]]
    disp = new_of[e["inc"][esc]]
    ok = (crime >= 0) & (disp >= 0)
    esc, crime, disp, susp = esc[ok], crime[ok], disp[ok], e["crime_susp"][ok]
    rel = hh.pick(rng, p["hh"][np.maximum(susp, 0)])
    t_rel = rep[crime] + rng.uniform(0.5, 20, len(crime))
    m1 = (rng.random(len(crime)) < 0.35) & (susp >= 0) & (rel >= 0) & (rel != susp) & (t_rel < T)
    d_all = np.flatnonzero((kind == _K["dispute"]) & (ep_of >= 0))
    a = e["a"][ep_of[d_all]]
    rel2 = hh.pick(rng, p["hh"][a])
    t_rel2 = rep[d_all] + rng.lognormal(np.log(10), 0.8, len(d_all))
    m2 = (rng.random(len(d_all)) < 0.04) & (rel2 >= 0) & (rel2 != a) & (t_rel2 < T)
    li = np.concatenate([disp[m1], d_all[m2]])
    lp = np.concatenate([rel[m1], rel2[m2]])
    lt = np.concatenate([t_rel[m1], t_rel2[m2]])
    new = ~np.isin(li.astype(np.int64) * (n + 1) + lp, np.fromiter(persons_on, np.int64, len(persons_on)))
    li, lp, lt = li[new], lp[new], lt[new]
    _, first = np.unique(li.astype(np.int64) * (n + 1) + lp, return_index=True)
    out["late_parties"] = (li[first], lp[first], lt[first])
    # -- outcomes typed in later
    delay = med_t + rng.lognormal(np.log(4), 0.9, len(med_t))
    out["outcome_at"] = np.where((rng.random(len(med_t)) < 0.35) & (delay < T), delay, np.nan)
    # -- attribute histories, consistent with the export-time values in persons
    ap, aa, av, at = [], [], [], []

    def rows(pid, attr, value, t):
        ap.append(pid); aa.append(np.full(len(pid), attr, dtype=object)); av.append(value); at.append(t)

    order = np.lexsort((cs_t, cs_p))
    cp, ct = cs_p[order], cs_t[order]
    first_crime = np.r_[True, cp[1:] != cp[:-1]] if len(cp) else np.zeros(0, bool)
    cp, ct = cp[first_crime], ct[first_crime]
    lost = ct + rng.uniform(60, 300, len(cp))
    m = (p["employment"][cp] == 1) & (lost < T) & (rng.random(len(cp)) < 0.8)
    cp, lost = cp[m], lost[m]
    rows(cp, "employment", np.full(len(cp), "employed", dtype=object), -rng.uniform(30, 2000, len(cp)))
    rows(cp, "employment", np.full(len(cp), "unemployed", dtype=object), lost)
    loc = np.flatnonzero((p["hukou"] == 0) & p["adult"] & (rng.random(n) < 0.03))
    rows(loc, "hukou", np.full(len(loc), "migrant", dtype=object), -rng.uniform(100, 3000, len(loc)))
    rows(loc, "hukou", np.full(len(loc), "local", dtype=object), rng.uniform(0, T, len(loc)))
    late = np.flatnonzero(p["adult"] & (rng.random(n) < 0.01))
    rows(late, "employment", np.asarray(EMPLOYMENT, dtype=object)[p["employment"][late]], rng.uniform(0, T, len(late)))
    out["attributes"] = tuple(np.concatenate(x) for x in (ap, aa, av, at))
    # -- notes: return visits, and what was written after an escalation
    ni, nt, nx = [], [], []
    d_ep = ep_of[d_all]
    for k, w in enumerate(VISIT_WEEKS):
        tv = np.maximum(e["t0"][d_ep] + 7.0 * (w + 1), rep[d_all]) + rng.uniform(0, 2, len(d_all))
        open_then = np.isnan(closed[d_all]) | (tv < closed[d_all])
        m = open_then & (tv < T) & (rng.random(len(d_all)) < 0.4)
        h = e["h_visit"][d_ep[m], k].astype(float)
        en = rng.random(m.sum()) < 0.10
        calm = h < 0.3
        text = np.where(en, np.where(calm, np.asarray(_EN_VISIT["calm"], object)[rng.integers(0, 2, m.sum())],
                                     np.asarray(_EN_VISIT["open"], object)[rng.integers(0, 2, m.sum())]),
                        np.where(calm, np.asarray(_ZH_VISIT["calm"], object)[rng.integers(0, 4, m.sum())],
                                 np.asarray(_ZH_VISIT["open"], object)[rng.integers(0, 4, m.sum())]))
        for key, pr in (("threat", _sig(-3.0 + 1.1 * h)), ("weapon", _sig(-4.4 + 1.0 * h))):
            hit = rng.random(m.sum()) < pr
            pick_zh = np.asarray(_ZH_KW[key], object)[rng.integers(0, len(_ZH_KW[key]), m.sum())]
            pick_en = np.asarray(_EN_KW[key], object)[rng.integers(0, len(_EN_KW[key]), m.sum())]
            text = np.where(hit, text + np.where(en, pick_en, pick_zh), text)
        ni.append(d_all[m]); nt.append(tv[m]); nx.append(text + np.where(en, ".", "。"))
    off = np.asarray(OFFENCE_CATEGORIES, object)[cat[crime]]
    t_note = rep[crime] + rng.uniform(0.5, 15, len(crime))
    m = (rng.random(len(crime)) < 0.6) & (t_note < T)
    en = rng.random(m.sum()) < 0.10
    ni.append(disp[m]); nt.append(t_note[m])
    nx.append(np.where(en, _EN_AFTER_CRIME, np.array([_ZH_AFTER_CRIME[o] for o in off[m]], dtype=object)) + "。")
    out["notes"] = (np.concatenate(ni), np.concatenate(nt), np.concatenate(nx))
    return out


# ============================================================== assembly
def _days_to_ts(t0: np.datetime64, days: np.ndarray) -> np.ndarray:
    days = np.asarray(days, dtype=float)
    ok = np.isfinite(days)
    sec = np.where(ok, np.round(np.where(ok, days, 0) * 86400), 0).astype(np.int64)
    out = t0 + sec.astype("timedelta64[s]")
    out = out.astype("datetime64[us]")
    out[~ok] = np.datetime64("NaT")
    return out


# Homophones and look-alikes clerks write for one another (same or near pinyin).
_NAME_SWAPS = {
    "张": "章", "王": "汪", "陈": "程", "伟": "玮", "刘": "柳", "杨": "阳", "林": "凌", "静": "婧",
    "丽": "莉", "军": "君", "明": "铭", "华": "桦", "芳": "方", "敏": "闵", "涛": "滔", "斌": "彬",
    "辉": "晖", "鹏": "朋", "浩": "昊", "俊": "骏", "琪": "淇", "志": "智", "燕": "艳", "红": "宏",
    "春": "纯", "东": "冬", "永": "勇", "云": "芸", "飞": "菲", "翔": "祥", "慧": "惠", "婷": "亭",
    "琳": "玲", "晶": "静", "凯": "恺", "鑫": "新", "峰": "锋", "健": "建", "成": "程", "荣": "蓉",
    "清": "青", "周": "州", "吴": "武", "徐": "许", "朱": "珠", "郭": "国", "罗": "骆", "唐": "汤",
    "金": "晶", "娜": "那", "磊": "垒", "刚": "钢", "宇": "雨", "梅": "媚", "亮": "良", "利": "力",
}
_FULLWIDTH = {ord(c): ord(c) + 0xFEE0 for c in "0123456789X"}
# Look-alike characters (形近字) a clerk copying a handwritten form writes for one another,
# sounding different: the generator's own list of plausible misreadings of its names.
_LOOKALIKES = {
    "王": "玉", "伟": "伦", "明": "朋", "李": "季", "吴": "昊", "郑": "邓", "曹": "曾", "贾": "贯",
    "夏": "复", "杜": "社", "金": "全", "熊": "能", "孟": "盂", "雷": "雪", "龙": "尤", "万": "方",
    "史": "吏", "尹": "伊", "冯": "马", "秦": "泰", "白": "自", "田": "由", "余": "佘", "梅": "海",
    "秀": "季", "东": "车", "云": "去", "佳": "住", "军": "车", "洋": "详", "成": "戍", "林": "材",
    "文": "丈", "晓": "烧", "宇": "字", "平": "半", "颖": "频", "倩": "清", "娟": "捐", "霞": "瑕",
}


def _linkage_noise(rng: np.random.Generator, name: np.ndarray, idn: np.ndarray, phone: np.ndarray,
                   rate: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Write duplicate records as real systems do; returns (name, id, phone, noise kinds).

    A noisy record gets one to three kinds, each where it applies: ``id_old15`` (the
    15-digit form: no century, no check digit), ``id_typo`` (one body digit mistyped,
    check not recomputed), ``id_check`` (the check digit mistyped), ``id_transposed``
    (two adjacent body digits swapped and the check recomputed, as systems that compute
    it do), ``id_format`` (full-width digits, inner spaces, lower-case x), ``name_homophone``,
    ``name_traditional``, ``name_spacing``, ``phone_changed``, ``phone_format``; and, on a
    stream of its own, ``name_lookalike`` (a character misread for a look-alike that
    sounds different, 伟/伦) on a tenth as many records.
    """
    import zhconv  # the generator writes traditional forms with the same table the loader reads

    from .normalize import gb11643_check_digit

    m = len(name)
    name, idn, phone = name.copy(), idn.copy(), phone.copy()
    kinds: list[list[str]] = [[] for _ in range(m)]
    noisy = np.flatnonzero(rng.random(m) < rate)
    id_kinds = ["id_old15", "id_typo", "id_check", "id_transposed", "id_format"]
    id_p = np.array([0.25, 0.25, 0.1, 0.1, 0.3])
    all_kinds = ["id", "name_homophone", "name_traditional", "name_spacing", "phone_changed", "phone_format"]
    all_p = np.array([0.35, 0.2, 0.12, 0.08, 0.12, 0.13])
    for r in noisy:
        for kind in rng.choice(all_kinds, size=int(rng.integers(1, 4)), replace=False, p=all_p):
            if kind == "id":
                if idn[r] is None:
                    continue
                kind = str(rng.choice(id_kinds, p=id_p))
                v = str(idn[r])
                if kind == "id_old15" and v[6:8] == "19":
                    v = v[:6] + v[8:17]
                elif kind == "id_typo":
                    pos = int(rng.integers(0, 17))
                    v = v[:pos] + str((int(v[pos]) + int(rng.integers(1, 10))) % 10) + v[pos + 1:]
                elif kind == "id_check":
                    v = v[:17] + str(rng.choice([c for c in "0123456789X" if c != v[17]]))
                elif kind == "id_transposed":
                    pos = int(rng.integers(0, 16))
                    if v[pos] == v[pos + 1]:
                        continue
                    body = v[:pos] + v[pos + 1] + v[pos] + v[pos + 2:17]
                    v = body + gb11643_check_digit(body)
                elif kind == "id_format":
                    v = v.translate(_FULLWIDTH) if rng.random() < 0.5 else v[:6] + " " + v[6:14] + " " + v[14:]
                    v = v.replace("X", "x").replace("Ｘ", "ｘ")
                else:
                    continue
                idn[r] = v
            elif kind == "name_homophone":
                chars = [i for i, c in enumerate(name[r]) if c in _NAME_SWAPS]
                if not chars:
                    continue
                i = int(rng.choice(chars))
                name[r] = name[r][:i] + _NAME_SWAPS[name[r][i]] + name[r][i + 1:]
            elif kind == "name_traditional":
                trad = zhconv.convert(name[r], "zh-tw")
                if trad == name[r]:
                    continue
                name[r] = trad
            elif kind == "name_spacing":
                name[r] = name[r][0] + ("\u3000" if rng.random() < 0.5 else " ") + name[r][1:]
            elif kind == "phone_changed":
                if phone[r] is None:
                    continue
                phone[r] = _phones(rng, 1)[0]
            elif kind == "phone_format":
                if phone[r] is None:
                    continue
                v = str(phone[r])
                phone[r] = f"+86 {v[:3]}-{v[3:7]}-{v[7:]}" if rng.random() < 0.5 else v.translate(_FULLWIDTH)
            kinds[r].append(kind)
    # Look-alike characters, on their own stream so the kinds above stay as they were.
    lrng = np.random.default_rng(rng.integers(0, 2**32))
    for r in np.flatnonzero(lrng.random(m) < 0.1 * rate):
        chars = [i for i, c in enumerate(name[r]) if c in _LOOKALIKES]
        if not chars:
            continue
        i = int(lrng.choice(chars))
        name[r] = name[r][:i] + _LOOKALIKES[name[r][i]] + name[r][i + 1:]
        kinds[r].append("name_lookalike")
    return name, idn, phone, np.array([",".join(k) for k in kinds], dtype=object)


def generate_tables(n_persons: int, seed: int = 0, start: str = "2021-07-01",
                    end: str = "2025-06-30", late_facts: bool = True, linkage_noise: float = 0.0
                    ) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Generate a synthetic district: the contract tables and the person truth.

    Returns ``(tables, person_truth)``: ``tables`` maps each contract table name to a
    DataFrame with exactly the contract's columns (raw, with fake PII on persons);
    ``person_truth(person_id, true_person)`` maps every person_id, including the
    duplicate records of the police system, to the real person.

    ``late_facts`` (default) adds contract 1.1's facts recorded after a report (see
    :func:`_late_facts`); they come from their own random stream, so the 1.0 tables and
    columns of a seed are the same either way. ``late_facts=False`` gives a 1.0 export.
    ``linkage_noise`` is the share of duplicate records written with record-linkage noise
    (module docstring).
    """
    if not 0.0 <= float(linkage_noise) <= 1.0:
        raise ValueError(f"linkage_noise must be between 0 and 1, got {linkage_noise!r}")
    if int(n_persons) < 50:
        raise ValueError(f"n_persons must be at least 50, got {n_persons!r}")
    n = int(n_persons)
    rng = np.random.default_rng(seed)
    t_start = np.datetime64(pd.Timestamp(start).normalize().to_datetime64(), "s")
    t_end = np.datetime64(pd.Timestamp(end).normalize().to_datetime64(), "s")
    if t_end <= t_start:
        raise ValueError(f"end must be after start, got start={start!r} end={end!r}")
    T = float((t_end - t_start) / np.timedelta64(1, "D")) + 1.0  # the end day is included
    year0 = pd.Timestamp(start).year

    p = _people(rng, n, year0)
    g = _geography(rng, p, n)
    o = _organizations(rng, p, g, n)
    # prior violence on record before the data begins
    p["pv0"] = rng.random(n) < _sig(-5.3 + 1.4 * p["aggr"]) * p["adult"]
    rel = _static_relations(rng, p, g, o, n, T)
    acc = _Acc()
    e = _episodes(rng, p, g, o, n, T)
    _simulate(rng, p, g, o, e, acc, T)
    _escalations(rng, p, o, e, acc)
    _episode_parties(e, acc, rng)
    _background(rng, p, g, o, acc, n, T)

    # ---- incidents: drop what is reported after the export, order by report time
    inc = {k: np.concatenate(v) for k, v in acc.inc.items()}
    occ = inc["t"]
    rep = occ + inc["lag"]
    keep = rep < T
    N0 = len(occ)
    order = np.flatnonzero(keep)[np.argsort(rep[keep], kind="stable")]
    new_of = np.full(N0, -1)
    new_of[order] = np.arange(len(order))
    N = len(order)
    kind, cat = inc["kind"][order], inc["cat"][order]
    occ, rep = occ[order], rep[order]
    ep_of = inc["ep"][order]
    related = inc["related"][order]
    related = np.where(related >= 0, new_of[np.maximum(related, 0)], -1)
    # closing and status at export time
    closed = np.full(N, np.nan)
    status = np.full(N, _ST["closed"])
    is_d = kind == _K["dispute"]
    de = ep_of[is_d]
    tc = e["tc"][de].copy()
    esc = ~np.isnan(e["t_esc"][de])
    transfer = esc & (rng.random(len(de)) < 0.6)
    tr_t = e["t_esc"][de] + rng.uniform(1, 10, len(de))
    tc = np.where(transfer, np.minimum(tc, tr_t), tc)
    st = np.where(transfer & (tc == tr_t), _ST["transferred"],
                  np.where(e["agreed"][de], _ST["resolved"], np.where(e["failed_last"][de], _ST["failed"], _ST["closed"])))
    open_ = ~(tc < T)
    st = np.where(open_, np.where(e["n_med"][de] > 0, _ST["mediating"], _ST["open"]), st)
    closed[is_d] = np.where(open_, np.nan, tc)
    status[is_d] = st
    for kname, lo, hi, p_open, st_open, st_closed in (
            ("police_call", 0.02, 0.3, 0.0, "open", "closed"),
            ("complaint", 0.5, 20, 0.08, "open", "resolved"),
            ("petition", 10, 60, 0.25, "open", "closed"),
            ("criminal_case", 20, 300, 0.15, "open", "transferred")):
        m = np.flatnonzero(kind == _K[kname])
        c = rep[m] + rng.uniform(lo, hi, len(m))
        c = np.where(rng.random(len(m)) < p_open, np.nan, c)
        c = np.where(c < T, c, np.nan)
        closed[m] = c
        status[m] = np.where(np.isnan(c), _ST[st_open], _ST[st_closed])
    # descriptions need who is speaking and how many earlier petitions
    who = inc["who"][order]
    n_prior = np.zeros(N)
    pet = kind == _K["petition"]
    if pet.any():
        pe = ep_of[pet]
        ordp = np.lexsort((rep[pet], pe))
        pes = pe[ordp]
        first = np.r_[True, pes[1:] != pes[:-1]]
        grp_start = np.maximum.accumulate(np.where(first, np.arange(len(pes)), 0))
        cnt = np.empty(len(pes))
        cnt[ordp] = np.arange(len(pes)) - grp_start
        n_prior[pet] = cnt
    w_ok = who >= 0
    alco = np.where(w_ok, p["alco"][np.maximum(who, 0)], 0.0)
    ment = np.where(w_ok, p["ment"][np.maximum(who, 0)], 0.0)
    desc = _descriptions(rng, kind, cat, inc["heat"][order], alco, ment, inc["amount"][order], n_prior)

    # ---- parties
    par = {k: np.concatenate(v) for k, v in acc.par.items()}
    pinc = new_of[par["inc"]]
    pk = pinc >= 0
    pinc, ppid, ptype, prole = pinc[pk], par["pid"][pk], par["ptype"][pk], par["role"][pk]
    # one row per (incident, party): a person can't be both complainant and respondent
    dedup = pd.DataFrame({"i": pinc, "p": ppid, "t": ptype}).duplicated().to_numpy()
    pinc, ppid, ptype, prole = pinc[~dedup], ppid[~dedup], ptype[~dedup], prole[~dedup]

    # ---- mediations
    med = {k: np.concatenate(v) if v else np.zeros(0) for k, v in acc.med.items()}
    minc = new_of[med["inc"].astype(np.int64)] if len(med["inc"]) else np.zeros(0, np.int64)
    mk = (minc >= 0) & (med["t"] < T)
    med_t = np.maximum(med["t"][mk], rep[minc[mk]] + 0.01)
    mo = np.argsort(med_t, kind="stable")
    med_inc, med_t = minc[mk][mo], med_t[mo]
    med_type, med_out = med["mtype"][mk][mo], med["outcome"][mk][mo]

    # ---- divorces after marriage conflicts end a membership and start a new household
    H = p["H"]
    mem_hh = p["hh"].copy()
    mem_pid = np.arange(n)
    mem_role = p["role"].copy()
    ht = p["hh_type"]
    mem_start = np.full(n, np.nan)
    mem_end = np.full(n, np.nan)
    # tenants move in and out
    hh_start = np.where((ht == 2) & (rng.random(H) < 0.6), rng.uniform(-200, T, H),
                        np.where(rng.random(H) < 0.1, rng.uniform(0, T, H), np.nan))
    hh_start = np.where(hh_start < 0, np.nan, hh_start)
    base = np.where(np.isnan(hh_start), 0.0, hh_start)
    hh_end = np.where((ht >= 2) & (rng.random(H) < 0.3), base + rng.lognormal(np.log(400), 0.6, H), np.nan)
    hh_end = np.where(hh_end < T, hh_end, np.nan)
    mem_start = hh_start[mem_hh]
    mem_end = hh_end[mem_hh]
    child_later = (mem_role == _R["child"]) & (p["age"] < 4) & (rng.random(n) < 0.5)
    born_by = np.where(np.isnan(mem_end), T, mem_end)  # a baby joins before the family moves out
    mem_start = np.where(child_later & np.isnan(mem_start), rng.uniform(0, 1, n) * born_by, mem_start)
    d_ep = np.flatnonzero((e["cat"] == _DC["marriage_family"]) & (e["sub"] == 0) & (rng.random(e["E"]) < 0.04 + 0.10 * _sig(e["h0"])))
    t_div = e["t0"][d_ep] + rng.uniform(60, 400, len(d_ep))
    spouse_p = np.where(p["role"][e["bp"][d_ep]] == _R["head"], e["a"][d_ep], e["bp"][d_ep])
    ok = (t_div < T) & np.isnan(mem_end[spouse_p]) & ~(mem_start[spouse_p] >= t_div)
    spouse_p, t_div, d_ep = spouse_p[ok], t_div[ok], d_ep[ok]
    _, first = np.unique(spouse_p, return_index=True)
    spouse_p, t_div, d_ep = spouse_p[first], t_div[first], d_ep[first]
    mem_end[spouse_p] = t_div
    n_new = len(spouse_p)
    new_hh = H + np.arange(n_new)
    res_places = np.flatnonzero(g["pl_type"] == _PT["residential"])
    new_place = res_places[rng.integers(0, max(len(res_places), 1), n_new)] if len(res_places) else g["hh_place"][p["hh"][spouse_p]]
    hh_place = np.concatenate([g["hh_place"], new_place])
    tenure = np.concatenate([np.array([_tenure for _tenure in (0, 0, 1, 2)])[ht], np.full(n_new, 1)])
    tenure = np.where(rng.random(len(tenure)) < 0.01, 3, tenure)
    mem_hh = np.concatenate([mem_hh, new_hh])
    mem_pid = np.concatenate([mem_pid, spouse_p])
    mem_role = np.concatenate([mem_role, np.full(n_new, _R["head"])])
    mem_start = np.concatenate([mem_start, t_div + rng.uniform(0, 30, n_new)])
    mem_end = np.concatenate([mem_end, np.full(n_new, np.nan)])
    other_p = np.where(e["a"][d_ep] == spouse_p, e["bp"][d_ep], e["a"][d_ep])
    rel["a"].append(other_p); rel["b"].append(spouse_p); rel["t"].append(np.full(n_new, _REL["ex_spouse"]))
    rel["s"].append(t_div)
    # ties learnt from episodes: debts and neighbours become known relations
    dm = np.flatnonzero((e["cat"] == _DC["debt"]) & (rng.random(e["E"]) < 0.6))
    rel["a"].append(e["a"][dm]); rel["b"].append(e["bp"][dm]); rel["t"].append(np.full(len(dm), _REL["creditor_debtor"]))
    rel["s"].append(e["t0"][dm] - rng.uniform(30, 700, len(dm)))
    nm = np.flatnonzero((e["cat"] == _DC["neighbor"]) & (rng.random(e["E"]) < 0.5))
    rel["a"].append(e["a"][nm]); rel["b"].append(e["bp"][nm]); rel["t"].append(np.full(len(nm), _REL["neighbor"]))
    rel["s"].append(np.full(len(nm), np.nan))
    ra, rb = np.concatenate(rel["a"]), np.concatenate(rel["b"])
    rt, rs = np.concatenate(rel["t"]), np.concatenate(rel["s"])
    rok = (ra >= 0) & (rb >= 0) & (ra != rb)
    ra, rb, rt, rs = ra[rok], rb[rok], rt[rok], rs[rok]
    rs = np.where(rs < T, rs, np.nan)
    lo_, hi_ = np.minimum(ra, rb), np.maximum(ra, rb)
    rdup = pd.DataFrame({"a": lo_, "b": hi_, "t": rt}).duplicated().to_numpy()
    ra, rb, rt, rs = ra[~rdup], rb[~rdup], rt[~rdup], rs[~rdup]

    # ---- flags, point in time
    fl_p, fl_f, fl_t = [], [], []

    def flag(pid, f, t):
        fl_p.append(pid); fl_f.append(np.full(len(pid), _FL[f])); fl_t.append(t)

    pv0 = np.flatnonzero(p["pv0"])
    flag(pv0, "prior_violence", -rng.uniform(30, 2500, len(pv0)))
    person_rows = ptype == 0
    first_seen = np.full(n, np.inf)
    np.minimum.at(first_seen, ppid[person_rows], rep[pinc[person_rows]])
    for f, trait in (("mental_health", p["ment"]), ("substance", p["alco"])):
        who_f = np.flatnonzero(rng.random(n) < _sig(-5.2 + 1.5 * trait) * p["adult"])
        after = np.isfinite(first_seen[who_f]) & (rng.random(len(who_f)) < 0.5)
        t_f = np.where(after, first_seen[who_f] + rng.uniform(1, 60, len(who_f)),
                       np.where(rng.random(len(who_f)) < 0.6, -rng.uniform(30, 2000, len(who_f)), rng.uniform(0, T, len(who_f))))
        flag(who_f, f, t_f)
    cc0 = np.flatnonzero(rng.random(n) < _sig(-6.5 + 1.0 * p["aggr"]) * p["adult"])
    flag(cc0, "community_correction", -rng.uniform(30, 1000, len(cc0)))
    crime_susp = person_rows & (prole == _PR["suspect"])
    cs_p, cs_t = ppid[crime_susp], rep[pinc[crime_susp]]
    sel = rng.random(len(cs_p)) < 0.7
    flag(cs_p[sel], "prior_violence", cs_t[sel] + rng.uniform(1, 30, sel.sum()))
    sel = rng.random(len(cs_p)) < 0.3
    flag(cs_p[sel], "community_correction", cs_t[sel] + rng.uniform(60, 300, sel.sum()))
    pet_rows = person_rows & (kind[pinc] == _K["petition"])
    pp, pt_ = ppid[pet_rows], rep[pinc[pet_rows]]
    o2 = np.lexsort((pt_, pp))
    pp, pt_ = pp[o2], pt_[o2]
    second = np.r_[False, pp[1:] == pp[:-1]] & ~np.r_[False, False, (pp[2:] == pp[:-2])]
    flag(pp[second], "key_person", pt_[second] + rng.uniform(1, 30, second.sum()))
    kp0 = np.flatnonzero(rng.random(n) < 0.002 * p["adult"])
    flag(kp0, "key_person", -rng.uniform(30, 1500, len(kp0)))
    ot = np.flatnonzero(rng.random(n) < 0.003 * p["adult"])
    flag(ot, "other", rng.uniform(-1000, T, len(ot)))
    fp, ff, ftt = np.concatenate(fl_p), np.concatenate(fl_f), np.concatenate(fl_t)
    fk = ftt < T
    fp, ff, ftt = fp[fk], ff[fk], ftt[fk]
    fdup = pd.DataFrame({"p": fp, "f": ff}).duplicated().to_numpy()
    fp, ff, ftt = fp[~fdup], ff[~fdup], ftt[~fdup]

    # ---- PII, namesakes, missing values
    male = p["male"]
    by = p["birth_year"].copy()
    names = p["name"].copy()
    adults = np.flatnonzero(p["adult"])
    srt = adults[np.lexsort((by[adults], male[adults]))]
    same = (by[srt[1:]] == by[srt[:-1]]) & (male[srt[1:]] == male[srt[:-1]]) & (p["hh"][srt[1:]] != p["hh"][srt[:-1]])
    cand = np.flatnonzero(same)
    ns = cand[rng.random(len(cand)) < 0.006]
    names[srt[ns + 1]] = names[srt[ns]]
    idn_all = _id_numbers(rng, by, male, p["hukou"] == 0)
    idn = idn_all.copy()
    phone = _phones(rng, n)
    no_phone = (p["age"] < 14) | (rng.random(n) < 0.04)
    no_id = rng.random(n) < np.where(p["hukou"] == 1, 0.05, 0.015)
    phone = np.where(no_phone, _NONE, phone)
    idn = np.where(no_id, _NONE, idn)
    if linkage_noise > 0:
        # Hard negatives for linkage: some families give one phone number for everyone.
        frng = np.random.default_rng([seed, 18])
        hh = p["hh"]
        head_of = np.full(int(hh.max()) + 1, -1)
        heads = np.flatnonzero(p["role"] == _R["head"])
        head_of[hh[heads]] = heads
        family = frng.random(int(hh.max()) + 1) < 0.5 * linkage_noise
        share = family[hh] & (head_of[hh] >= 0) & (phone != None) & (p["role"] != _R["head"])  # noqa: E711
        share &= phone[np.maximum(head_of[hh], 0)] != None  # noqa: E711
        phone = np.where(share, phone[np.maximum(head_of[hh], 0)], phone)

    # ---- duplicate police-system records of people who meet the police
    pol = (kind == _K["police_call"]) | (kind == _K["criminal_case"])
    in_pol = np.zeros(n, bool)
    in_pol[ppid[person_rows & pol[pinc]]] = True
    in_any = np.zeros(n, bool)
    in_any[ppid[person_rows]] = True
    w = p["adult"] * (1.0 + 6.0 * in_pol + 1.0 * in_any)
    n_dup = int(round(0.035 * n))
    dup_src = np.sort(rng.choice(n, size=n_dup, replace=False, p=w / w.sum()))
    no_id_dup = (rng.random(n_dup) < 1 / 3) & (phone[dup_src] != None)  # noqa: E711
    dup_idn = np.where(no_id_dup, _NONE, idn[dup_src])
    # the police copy of an id-less person keeps only name, birth year and phone
    dup_phone = np.where(no_id_dup, phone[dup_src], np.where(rng.random(n_dup) < 0.6, phone[dup_src], _NONE))
    # A duplicated person whose first record lacked the id number gets their own one back.
    idn[dup_src[~no_id_dup]] = np.where(idn[dup_src[~no_id_dup]] == None,  # noqa: E711
                                        idn_all[dup_src[~no_id_dup]], idn[dup_src[~no_id_dup]])
    dup_idn = np.where(no_id_dup, _NONE, idn[dup_src])
    n_tot = n + n_dup
    dup_of = np.full(n, -1)
    dup_of[dup_src] = n + np.arange(n_dup)
    swap = person_rows & pol[pinc] & (dup_of[np.where(person_rows, ppid, 0)] >= 0) & (rng.random(len(ppid)) < 0.7)
    ppid = np.where(swap, dup_of[np.where(person_rows, ppid, 0)], ppid)
    # police flags on a duplicated person sometimes land on the police record
    fswap = np.isin(ff, [_FL["prior_violence"], _FL["community_correction"]]) & (dup_of[fp] >= 0) & (rng.random(len(fp)) < 0.5)
    fp = np.where(fswap, dup_of[fp], fp)
    true_of = np.concatenate([np.arange(n), dup_src])
    dup_name = names[dup_src]
    dup_noise = np.full(n_dup, "", dtype=object)
    if linkage_noise > 0:
        dup_name, dup_idn, dup_phone, dup_noise = _linkage_noise(
            np.random.default_rng([seed, 17]), dup_name, dup_idn, dup_phone, float(linkage_noise))

    # ---- ids
    pw = max(6, len(str(n_tot)))
    perm = rng.permutation(n_tot)  # ids carry no information about households or duplicates
    pid_str = _fmt_ids("P", n_tot, pw)[perm]
    ow = max(5, len(str(o["n_org"])))
    oid_str = _fmt_ids("O", o["n_org"], ow)
    n_pl = len(g["pl_grid"])
    plid = _fmt_ids("L", n_pl, max(6, len(str(n_pl))))
    hid = _fmt_ids("H", len(hh_place), max(6, len(str(len(hh_place)))))
    gid = _fmt_ids("G", g["n_grid"], max(4, len(str(g["n_grid"]))))
    iid = _fmt_ids("I", N, max(7, len(str(N))))
    mid = _fmt_ids("M", len(med_inc), max(7, len(str(len(med_inc)))))
    tp_true = _fmt_ids("T", n, max(6, len(str(n))))

    def codes(vocab, idx):
        return np.asarray(vocab, dtype=object)[idx]

    def ts(d):
        return _days_to_ts(t_start, d)

    persons = pd.DataFrame({
        "person_id": pid_str,
        "birth_year": pd.array(np.concatenate([by, by[dup_src]]), dtype="Int64"),
        "gender": codes(GENDERS, np.concatenate([np.where(male, 0, 1), np.where(male[dup_src], 0, 1)])),
        "hukou": codes(HUKOU, np.concatenate([p["hukou"], p["hukou"][dup_src]])),
        "employment": codes(EMPLOYMENT, np.concatenate([p["employment"], np.where(rng.random(n_dup) < 0.5, p["employment"][dup_src], 4)])),
        "name": np.concatenate([names, dup_name]),
        "id_number": np.concatenate([idn, dup_idn]),
        "phone": np.concatenate([phone, dup_phone]),
    })
    persons = persons.iloc[np.argsort(perm, kind="stable")].reset_index(drop=True)
    truth = pd.DataFrame({"person_id": pid_str, "true_person": tp_true[true_of]})
    if linkage_noise > 0:
        truth["noise"] = np.concatenate([np.full(n, "", dtype=object), dup_noise])
    truth = truth.iloc[np.argsort(perm, kind="stable")].reset_index(drop=True)
    places = pd.DataFrame({
        "place_id": plid, "grid_id": gid[g["pl_grid"]], "town": g["town_name"][g["grid_town"][g["pl_grid"]]],
        "district": DISTRICT_NAME, "place_type": codes(PLACE_TYPES, g["pl_type"]),
        "lat": np.round(g["pl_ll"][:, 0], 6), "lon": np.round(g["pl_ll"][:, 1], 6),
    })
    households = pd.DataFrame({"household_id": hid, "place_id": plid[hh_place], "tenure": codes(TENURES, tenure)})
    members = pd.DataFrame({
        "household_id": hid[mem_hh], "person_id": pid_str[mem_pid], "role": codes(MEMBER_ROLES, mem_role),
        "start_date": ts(mem_start), "end_date": ts(mem_end),
    })
    orgs = pd.DataFrame({"org_id": oid_str, "org_type": codes(ORG_TYPES, o["type"]), "place_id": plid[o["place"]],
                         "name": o["name"]})
    incidents = pd.DataFrame({
        "incident_id": iid, "kind": codes(INCIDENT_KINDS, kind),
        "category": np.where(kind == _K["criminal_case"], codes(OFFENCE_CATEGORIES, np.where(kind == _K["criminal_case"], cat, 0)),
                             codes(DISPUTE_CATEGORIES, np.where(kind == _K["criminal_case"], 0, cat))),
        "occurred_at": ts(occ), "reported_at": ts(rep),
        "place_id": np.where(inc["place"][order] >= 0, plid[np.maximum(inc["place"][order], 0)], None),
        "source": codes(SOURCES, inc["source"][order]), "status": codes(STATUSES, status), "closed_at": ts(closed),
        "amount": np.round(inc["amount"][order], 2), "description": desc,
        "related_incident_id": np.where(related >= 0, iid[np.maximum(related, 0)], None),
    })
    parties = pd.DataFrame({
        "incident_id": iid[pinc],
        "party_id": np.where(ptype == 0, pid_str[np.where(ptype == 0, ppid, 0)], oid_str[np.where(ptype == 1, ppid, 0)]),
        "party_type": codes(("person", "organization"), ptype), "role": codes(PARTY_ROLES, prole),
    })
    parties = parties.iloc[np.argsort(pinc, kind="stable")].reset_index(drop=True)
    mediations = pd.DataFrame({
        "mediation_id": mid, "incident_id": iid[med_inc], "held_at": ts(med_t),
        "mediator_type": codes(MEDIATOR_TYPES, med_type), "outcome": codes(MEDIATION_OUTCOMES, med_out),
    })
    relations = pd.DataFrame({"person_a": pid_str[ra], "person_b": pid_str[rb], "relation": codes(RELATIONS, rt),
                              "since": ts(rs)})
    fo = np.argsort(ftt, kind="stable")
    flags = pd.DataFrame({"person_id": pid_str[fp[fo]], "flag": codes(FLAGS, ff[fo]), "recorded_at": ts(ftt[fo])})
    tables = {
        "persons": persons, "person_flags": flags, "places": places, "households": households,
        "household_members": members, "organizations": orgs, "incidents": incidents,
        "incident_parties": parties, "mediations": mediations, "relations": relations,
    }
    if late_facts:
        lf = _late_facts(np.random.default_rng([int(seed), 11]), p=p, e=e, n=n, T=T, new_of=new_of, kind=kind,
                         cat=cat, rep=rep, closed=closed, ep_of=ep_of, pinc=pinc, ppid=ppid, ptype=ptype,
                         prole=prole, med_t=med_t, cs_p=cs_p, cs_t=cs_t)
        added = pd.Series(ts(lf["party_added"]))
        li, lp, lt = lf["late_parties"]
        parties = pd.concat([
            parties.assign(added_at=added.iloc[np.argsort(pinc, kind="stable")].to_numpy()),
            pd.DataFrame({"incident_id": iid[li], "party_id": pid_str[lp], "party_type": "person", "role": "other",
                          "added_at": ts(lt)})], ignore_index=True)
        tables["incident_parties"] = parties
        tables["mediations"] = mediations.assign(outcome_at=ts(lf["outcome_at"]))
        ap, aa, av, at = lf["attributes"]
        tables["person_attributes"] = pd.DataFrame({"person_id": pid_str[ap], "attribute": aa, "value": av,
                                                    "recorded_at": ts(at)}).sort_values("recorded_at",
                                                                                        ignore_index=True)
        ni, nt, nx = lf["notes"]
        no = np.argsort(nt, kind="stable")
        tables["incident_notes"] = pd.DataFrame({
            "note_id": _fmt_ids("N", len(ni), max(7, len(str(len(ni))))), "incident_id": iid[ni[no]],
            "recorded_at": ts(nt[no]), "text": nx[no]})
    # persons.recorded_at left null: every record known throughout (training's features read
    # one linkage, as of the export; see escalation_risk.linking on availability).
    tables["persons"] = tables["persons"].assign(
        recorded_at=pd.Series(pd.NaT, index=tables["persons"].index, dtype=tables["incidents"]["reported_at"].dtype))
    for name, df in tables.items():
        cols = TABLES[name].column_names
        if not late_facts:  # a 1.0 export: without the columns contract 1.1 added
            cols = [c for c in cols if c not in CONTRACT_1_1.get(name, ())]
        tables[name] = df[cols]
    return tables, truth


def generate_district(n_persons: int, seed: int = 0, start: str = "2021-07-01", end: str = "2025-06-30",
                      pseudonym_key: str | bytes | None = None, late_facts: bool = True):
    """Generate a district and load it as a validated, pseudonymised ``Dataset``."""
    from escalation_risk.dataset import Dataset  # lazy: the loader imports heavier modules

    tables, _ = generate_tables(n_persons, seed=seed, start=start, end=end, late_facts=late_facts)
    return Dataset.from_frames(pseudonym_key=pseudonym_key, **tables)


def write_tables(tables: dict[str, pd.DataFrame], out_dir: str | Path, fmt: str = "parquet",
                 truth: pd.DataFrame | None = None) -> Path:
    """Write one ``NAME.parquet`` (or ``NAME.csv``) per table; truth goes to ``truth/``."""
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"fmt must be 'parquet' or 'csv', got {fmt!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    def _write(df: pd.DataFrame, path: Path) -> None:
        if fmt == "parquet":
            df.to_parquet(path.with_suffix(".parquet"), index=False)
        else:
            df.to_csv(path.with_suffix(".csv"), index=False, encoding="utf-8", date_format="%Y-%m-%dT%H:%M:%S")

    for name, df in tables.items():
        _write(df, out / name)
    if truth is not None:
        (out / "truth").mkdir(exist_ok=True)
        _write(truth, out / "truth" / "person_truth")
    return out


def generate_province(n_districts: int, n_persons: int, seed: int = 0, shared: float = 0.02,
                      start: str = "2021-07-01", end: str = "2025-06-30") -> dict[str, dict[str, pd.DataFrame]]:
    """A synthetic province: district code -> raw contract tables (see :func:`iter_province`)."""
    return dict(iter_province(n_districts, n_persons, seed=seed, shared=shared, start=start, end=end))


def iter_province(n_districts: int, n_persons: int, seed: int = 0, shared: float = 0.02,
                  start: str = "2021-07-01", end: str = "2025-06-30"):
    """The districts of a synthetic province, one at a time: (district code, raw contract tables).

    Each district is :func:`generate_tables` with its own seed, so ids repeat across
    districts (they are unique inside a district only). A fraction ``shared`` of each
    district's people (after the first) are people of the previous district
    registered here too: their name, id number, phone, birth year and gender are
    copied from a person there, so linkage joins them and their histories span both.
    """
    if n_districts < 1 or not 0 <= shared < 1:
        raise ValueError(f"need n_districts >= 1 and 0 <= shared < 1, got {n_districts!r}, {shared!r}")
    rng = np.random.default_rng(seed)
    prev: pd.DataFrame | None = None
    for i in range(n_districts):
        tables, _ = generate_tables(n_persons, seed=seed * 1000 + i, start=start, end=end)
        persons = tables["persons"]
        if prev is not None and shared > 0:
            # people with one record and an id number on both sides, so one copy makes one link
            def single(p: pd.DataFrame) -> np.ndarray:
                ok = p["id_number"].notna() & ~p["id_number"].duplicated(keep=False)
                return np.flatnonzero(ok.to_numpy())
            here, there = single(persons), single(prev)
            k = min(int(round(shared * len(persons))), len(here), len(there))
            dst = rng.choice(here, size=k, replace=False)
            src = rng.choice(there, size=k, replace=False)
            persons = persons.copy()
            for c in ("name", "id_number", "phone", "birth_year", "gender"):
                persons.loc[persons.index[dst], c] = prev[c].to_numpy()[src]
            tables["persons"] = persons
        yield f"3301{i + 1:02d}", tables
        prev = persons


def write_province(province, out_dir: str | Path, fmt: str = "parquet") -> Path:
    """Write a province (a dict or :func:`iter_province`): one dataset folder per district code."""
    out = Path(out_dir)
    for code, tables in (province.items() if isinstance(province, dict) else province):
        write_tables(tables, out / code, fmt=fmt)
    return out

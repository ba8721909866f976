"""Vocabularies of the synthetic district: internal code indices and the pools fake names are drawn from."""

from __future__ import annotations

import numpy as np

from escalation_risk.contract import (
    DISPUTE_CATEGORIES,
    FLAGS,
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
)

CENTRE = (30.27, 120.16)
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

"""Record-linkage noise: duplicate records written the way real systems write them."""

from __future__ import annotations

import numpy as np

from .people import _phones
from .vocab import _R

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

    from ..normalize import gb11643_check_digit

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


def _shared_family_phones(seed: int, p: dict, phone: np.ndarray, rate: float) -> np.ndarray:
    """Hard negatives for linkage: some families give the head's phone number for everyone.

    On a stream of its own (``[seed, 18]``), so the district's other draws stay as they are."""
    frng = np.random.default_rng([seed, 18])
    hh = p["hh"]
    head_of = np.full(int(hh.max()) + 1, -1)
    heads = np.flatnonzero(p["role"] == _R["head"])
    head_of[hh[heads]] = heads
    family = frng.random(int(hh.max()) + 1) < 0.5 * rate
    share = family[hh] & (head_of[hh] >= 0) & (phone != None) & (p["role"] != _R["head"])  # noqa: E711
    share &= phone[np.maximum(head_of[hh], 0)] != None  # noqa: E711
    return np.where(share, phone[np.maximum(head_of[hh], 0)], phone)

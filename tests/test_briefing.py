"""The daily briefing, rendered by a real headless Chromium: sections, text, screenshot,
and not one request leaving the page. Chromium comes from scripts/ensure-chromium.sh
(run by `make test`); without it these tests fail, they never skip."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import KEY
from PIL import Image
from test_governance import _district_tables

from escalation_risk import AlertStore, Dataset
from escalation_risk.briefing import build_briefing, write_briefing
from escalation_risk.response import PLANS

NIGHT = "2024-03-26"
SECTIONS_ZH = ["今日风险等级统计", "新增红色、橙色预警", "超期未处置预警（按责任人）", "网格风险热力表",
               "基层治理指数 · 2024-03", "模型漂移监测"]
SECTIONS_EN = ["Tonight's counts by level", "New red and orange alerts", "Overdue alerts by owner",
               "Where risk concentrates: grids", "Governance index · 2024-03", "Model drift"]
PHONE = (390, 2200)


def _chromium() -> str:
    # Without a Chinese font the screenshot would show empty boxes and prove nothing.
    fonts = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True).stdout
    if not fonts.strip():
        pytest.fail("no Chinese font: run `bash scripts/ensure-chromium.sh` (make test does)")
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("headless Chromium is required: run `bash scripts/ensure-chromium.sh` (make test does)")


def _run_chromium(page: Path, tmp: Path, *extra: str) -> subprocess.CompletedProcess:
    # Browser-internal background traffic is switched off, and whatever is left goes to a
    # dead proxy on loopback: nothing leaves the machine, and the net log still records it.
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-default-apps", "--disable-extensions", "--no-pings", "--proxy-server=http://127.0.0.1:9",
           f"--user-data-dir={tmp / 'profile'}", *extra, page.resolve().as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def _page_requests(netlog: Path) -> list[str]:
    """URLs the page itself asked for (browser-internal requests have no page initiator)."""
    log = json.loads(netlog.read_text())
    names = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    urls = []
    for e in log["events"]:
        p = e.get("params", {})
        if names.get(e["type"]) == "URL_REQUEST_START_JOB" and "url" in p and p.get("initiator") != "not an origin":
            urls.append(p["url"])
    return urls


def _scores(rows: list[tuple[str, str, float, list[str], str]]) -> pd.DataFrame:
    return pd.DataFrame({"dispute_id": [r[0] for r in rows], "probability": [r[2] for r in rows],
                         "level": [r[1] for r in rows], "trend": "new", "delta": None,
                         "reasons": [r[3] for r in rows], "plan": [r[4] for r in rows]})


@pytest.fixture(scope="module")
def district() -> Dataset:
    return Dataset.from_frames(pseudonym_key=KEY, **_district_tables())


@pytest.fixture(scope="module")
def store_url(tmp_path_factory) -> str:
    """Two nights: 2024-03-15 (d0 red, d4 orange, d6 red, d5 yellow, d30 blue) and 2024-03-26
    (d1 red and d7 orange raised; d6 still red and overdue; d8 blue)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('briefing') / 'alerts.db'}"
    with AlertStore(url) as st:
        st.record_night(_scores([
            ("d0", "red", 0.61, ["the parties have 3 police calls in 30 days"], "weapon_threat_response"),
            ("d4", "orange", 0.30, ["a failed mediation"], "family_mediation"),
            ("d6", "red", 0.55, ["threats recorded"], "weapon_threat_response"),
            ("d5", "yellow", 0.12, ["repeat dispute"], "family_mediation"),
            ("d30", "blue", 0.01, [], "routine_follow_up")]), pd.Timestamp("2024-03-15"), "m1")
        ids = st.alerts().set_index("dispute_id")["alert_id"]
        st.assign(ids["d6"], to="王网格员", by="center", at="2024-03-15T08:00")
        st.update(ids["d0"], "in_progress", by="w", at="2024-03-15T09:00")
        st.update(ids["d0"], "resolved", by="w", at="2024-03-15T20:00")
        st.record_night(_scores([
            ("d1", "red", 0.72, ["the parties have 2 criminal cases as suspect on record together"],
             "weapon_threat_response"),
            ("d7", "orange", 0.33, ["threats recorded in the follow-ups"], "family_mediation"),
            ("d6", "red", 0.58, ["threats recorded"], "weapon_threat_response"),
            ("d8", "blue", 0.02, [], "routine_follow_up")]), NIGHT, "m1")
    return url


@pytest.fixture(scope="module")
def pages(district, store_url, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("pages")
    return {lang: write_briefing(district, store_url, NIGHT, out, lang=lang) for lang in ("zh", "en")}


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.refs += [v for k, v in attrs if k in ("src", "href", "srcset", "action", "poster") and v]


def test_page_is_self_contained(pages):
    html = pages["zh"].read_text(encoding="utf-8")
    p = _Refs()
    p.feed(html)
    assert "script" not in p.tags and "link" not in p.tags and "iframe" not in p.tags
    assert p.refs == []
    assert not re.search(r"url\(|@import|https?://", html)
    assert "default-src 'none'" in html and 'name="viewport"' in html


def test_briefing_renders_in_chromium_zh(pages, tmp_path):
    shot, netlog = tmp_path / "zh.png", tmp_path / "net.json"
    res = _run_chromium(pages["zh"], tmp_path, f"--window-size={PHONE[0]},{PHONE[1]}", f"--screenshot={shot}",
                        f"--log-net-log={netlog}")
    assert res.returncode == 0, res.stderr[-2000:]
    dom = _run_chromium(pages["zh"], tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    text = re.sub(r"<[^>]+>", " ", dom.stdout)
    for heading in SECTIONS_ZH:
        assert heading in text, heading
    assert "矛盾纠纷风险日报 · 2024-03-26" in text
    # Counts: tonight 4 scored (2 red, 1 orange, 1 blue); two new alerts (d1, d7).
    tiles = re.findall(r'class="tile t-(\w+)"><small>[^<]*</small><b>(\d+)</b>', dom.stdout)
    assert dict(tiles) == {"scored": "4", "red": "2", "orange": "1", "yellow": "0", "blue": "1", "new": "2"}
    # New alerts: d1 (red) before d7 (orange), with reasons and the Chinese plan; d6 is not new.
    cards = re.findall(r'<article class="card card-(\w+)">(.*?)</article>', dom.stdout, re.S)
    assert [c[0] for c in cards] == ["red", "orange"]
    assert "d1" in cards[0][1] and "2 criminal cases" in cards[0][1]
    assert PLANS["weapon_threat_response"].zh in cards[0][1]
    assert "d7" in cards[1][1] and PLANS["family_mediation"].zh in cards[1][1]
    assert not any(" d6 " in c[1] for c in cards)
    # Overdue by owner: d6 (red, due by the end of 03-16) with 王网格员, 10.0 days at the end of 03-26; d4 (orange,
    # due 03-18) with its raiser.
    overdue = dom.stdout[dom.stdout.index('id="overdue"'):dom.stdout.index('id="heat"')]
    assert "王网格员" in overdue and "10.0" in overdue
    # Heat table: tonight's scores by grid (all four disputes are in g1).
    heat = dom.stdout[dom.stdout.index('id="heat"'):dom.stdout.index('id="governance"')]
    assert re.search(r"<td>g1</td><td class=\"n\">4</td><td class=\"n\">2</td><td class=\"n\">1</td>", heat)
    assert "<td>g2</td>" not in heat
    # Governance: towns t1 and t2 in March 2024; t1 participation 12/20 = 60.0.
    gov = dom.stdout[dom.stdout.index('id="governance"'):dom.stdout.index('id="drift"')]
    assert "<td>t1</td>" in gov and "<td>t2</td>" in gov and "60.0" in gov and "数据不足" in gov
    assert "本次未检测模型漂移" in text
    # Not one request left the page.
    assert _page_requests(netlog) == []
    # The screenshot: a phone-wide picture with the red tile and the dark header in it.
    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert img.shape[1] == PHONE[0]
    red = (abs(img[..., 0] - 198) < 12) & (abs(img[..., 1] - 40) < 12) & (abs(img[..., 2] - 40) < 12)
    assert red.sum() > 2000
    header = (abs(img[..., 0] - 38) < 6) & (abs(img[..., 1] - 50) < 6) & (abs(img[..., 2] - 56) < 6)
    assert header[:120].sum() > 10000
    assert img.std() > 20


def test_net_log_catches_an_external_request(tmp_path):
    """The check above can fail: a page that loads an image from elsewhere is caught."""
    page = tmp_path / "leaky.html"
    page.write_text('<!DOCTYPE html><html><body><img src="http://127.0.0.1:9/pixel.png">x</body></html>')
    netlog = tmp_path / "net.json"
    res = _run_chromium(page, tmp_path, "--window-size=300,300", f"--screenshot={tmp_path / 'l.png'}",
                        f"--log-net-log={netlog}")
    assert res.returncode == 0, res.stderr[-2000:]
    assert _page_requests(netlog) == ["http://127.0.0.1:9/pixel.png"]


def test_briefing_in_english(pages, tmp_path):
    dom = _run_chromium(pages["en"], tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    text = re.sub(r"<[^>]+>", " ", dom.stdout)
    for heading in SECTIONS_EN:
        assert heading in text, heading
    assert PLANS["family_mediation"].en in text
    assert pages["en"].name == "briefing-2024-03-26.en.html"


def test_drift_line_and_language_check(district, store_url):
    class _D:
        verdict, verdict_zh = "retrain: 1 feature(s) moved (log_amount)", "建议重新训练：1 个特征漂移（log_amount）"
    html = build_briefing(district, store_url, NIGHT, drift=_D())
    assert "建议重新训练" in html and "drift-retrain" in html
    with pytest.raises(ValueError, match="lang"):
        build_briefing(district, store_url, NIGHT, lang="fr")


def test_briefing_cli(district, store_url, tmp_path):
    from escalation_risk.cli import main
    data = tmp_path / "data"
    district.write(data)
    res = CliRunner(env={"ESCALATION_RISK_PSEUDONYM_KEY": KEY}).invoke(
        main, ["briefing", str(data), "--store", store_url, "--as-of", NIGHT, "--out", str(tmp_path / "out"),
               "--lang", "en"])
    assert res.exit_code == 0, res.output
    path = tmp_path / "out" / "briefing-2024-03-26.en.html"
    assert path.exists() and "Overdue alerts by owner" in path.read_text(encoding="utf-8")


def test_nightly_report_writes_the_briefing(small_district, small_model, tmp_path):
    from escalation_risk.cli import main
    data, model, out = tmp_path / "data", tmp_path / "model", tmp_path / "out"
    small_district.write(data)
    small_model.save(model)
    res = CliRunner(env={"ESCALATION_RISK_PSEUDONYM_KEY": KEY}).invoke(
        main, ["nightly", str(data), "--model", str(model), "--as-of", "2025-06-30",
               "--store", f"sqlite:///{tmp_path / 'alerts.db'}", "--out", str(out), "--report"])
    assert res.exit_code == 0, res.output
    page = out / "briefing-2025-06-30.html"
    assert f"briefing: {page}" in res.output and "drift: " in res.output
    dom = _run_chromium(page, tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    for heading in SECTIONS_ZH[:4]:
        assert heading in dom.stdout, heading
    # The drift line is the night's verdict, in Chinese; the alerts' reasons are the Chinese ones.
    drift = dom.stdout[dom.stdout.index('id="drift"'):]
    assert re.search("建议重新训练|关注|稳定", drift)
    # The first night recorded: every red and orange alert is new.
    cards = re.findall(r'<article class="card card-\w+">(.*?)</article>', dom.stdout, re.S)
    assert cards
    assert re.search(r"<li>[^<]*[\u4e00-\u9fff]", cards[0])

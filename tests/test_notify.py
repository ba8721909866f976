"""Alerts that reach people: webhook messages against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pytest
import standardwebhooks
from click.testing import CliRunner

from escalation_risk.alerts import AlertStore
from escalation_risk.alerts.notify import (
    ID_HEADER,
    SIGNATURE_HEADER,
    Notifier,
    Webhook,
    verify_signature,
)
from escalation_risk.cli.alerts import alerts as alerts_cli
from escalation_risk.masking import mask_identifiers

SECRET = b"test-webhook-secret-not-for-production"
NIGHT1 = pd.Timestamp("2025-06-30")
NIGHT2 = pd.Timestamp("2025-07-01")


class Receiver:
    """A webhook endpoint on a free loopback port: records each request; ``fail_first``
    answers 500 that many times, ``hang_s`` holds each request that long before answering."""

    def __init__(self, fail_first: int = 0, hang_s: float = 0.0) -> None:
        self.fail_first, self.hang_s = fail_first, hang_s
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.delivered: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the http.server API)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.requests.append((dict(self.headers), body))
                    fail = receiver.fail_first > 0
                    if fail:
                        receiver.fail_first -= 1
                if receiver.hang_s:
                    time.sleep(receiver.hang_s)
                if not fail and not receiver.hang_s:
                    # Recorded before answering: the sender returns once it has the answer.
                    with receiver.lock:
                        receiver.delivered.append(json.loads(body))
                self.send_response(500 if fail else 200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def scores(as_of, rows):
    return pd.DataFrame({
        "dispute_id": [r[0] for r in rows], "as_of": pd.Timestamp(as_of),
        "probability": [r[1] for r in rows], "level": [r[2] for r in rows], "trend": [r[3] for r in rows],
        "delta": [np.nan if r[3] == "new" else 0.1 for r in rows],
        "reasons": [["the two parties have 3 and 2 other disputes in the last year",
                     "caller gave phone 13812345678 and id 110101198001011234"]] * len(rows),
        "plan": ["debt_mediation_judicial"] * len(rows),
    })


@pytest.fixture
def store():
    with AlertStore("sqlite://") as s:
        s.record_night(scores(NIGHT1, [("d1", 0.91, "red", "new"), ("d2", 0.40, "orange", "new"),
                                       ("d3", 0.20, "yellow", "new"), ("d4", 0.02, "blue", "new")]), NIGHT1, "m1")
        yield s


def notifier(store, url, **kw):
    kw.setdefault("sleep", lambda s: None)  # backoff without waiting in tests
    return Notifier(store, Webhook(url, secret=SECRET, timeout_s=kw.pop("timeout_s", 2.0)), **kw)


def test_messages_of_a_night_are_its_new_alerts_at_or_above_the_level(store, receiver):
    n = notifier(store, receiver.url)
    report = n.notify_night(NIGHT1)
    assert report.ok and report.delivered == 2
    got = {m["dispute_id"]: m for m in receiver.delivered}
    assert set(got) == {"d1", "d2"}  # yellow and blue are below orange
    d1 = got["d1"]
    assert (d1["level"], d1["event"], d1["plan"]) == ("red", "new", "debt_mediation_judicial")
    assert d1["plan_zh"] and d1["plan_en"] and d1["text"].startswith("【红色新增预警】纠纷 d1")
    assert d1["due_at"] and d1["owner"] == "system" and d1["probability"] == pytest.approx(0.91)


def test_a_rising_alert_is_sent_and_an_unchanged_one_is_not(store, receiver):
    n = notifier(store, receiver.url)
    n.notify_night(NIGHT1)
    store.record_night(scores(NIGHT2, [("d1", 0.92, "red", "steady"), ("d2", 0.45, "orange", "steady"),
                                       ("d3", 0.70, "red", "rising"), ("d5", 0.6, "orange", "new")]), NIGHT2, "m1")
    receiver.delivered.clear()
    assert n.notify_night(NIGHT2).ok
    got = {m["dispute_id"]: m for m in receiver.delivered}
    assert set(got) == {"d3", "d5"}
    assert (got["d3"]["event"], got["d3"]["previous_level"], got["d3"]["level"]) == ("rising", "yellow", "red")
    assert "黄色→红色" in got["d3"]["text"]
    assert got["d5"]["event"] == "new"


def test_a_rerun_sends_nothing(store, receiver):
    n = notifier(store, receiver.url)
    n.notify_night(NIGHT1)
    sent = len(receiver.requests)
    report = n.notify_night(NIGHT1)
    assert report.delivered == 0 and len(receiver.requests) == sent == 2
    # A new Notifier on the same store (a new process) knows too.
    assert notifier(store, receiver.url).notify_night(NIGHT1).delivered == 0


def test_a_flaky_server_gets_each_message_exactly_once(store):
    r = Receiver(fail_first=2)
    try:
        report = notifier(store, r.url, retries=3, max_consecutive_failures=5).notify_night(NIGHT1)
        assert report.ok and report.delivered == 2
        ids = [m["message_id"] for m in r.delivered]
        assert len(ids) == len(set(ids)) == 2
        assert len(r.requests) == 4  # two 500s, then each message once
    finally:
        r.close()


def test_a_dead_endpoint_times_out_leaves_messages_pending_then_deliver_sends_them(store, receiver):
    dead = Receiver(hang_s=1.5)
    try:
        n = notifier(store, dead.url, timeout_s=0.3, retries=2, max_consecutive_failures=2)
        t0 = time.monotonic()
        report = n.notify_night(NIGHT1)
        took = time.monotonic() - t0
        assert not report.ok and report.pending == 2 and report.delivered == 0
        assert took < 5  # two timeouts, then the circuit opens: the night is not held
        pending = n.pending()
        # The first message was tried twice and timed out; the circuit then opened, so
        # the second was not tried at all.
        assert pending["attempts"].tolist() == [2, 0]
        assert "timed out" in pending["last_error"].iloc[0] and pd.isna(pending["last_error"].iloc[1])
    finally:
        dead.close()
    # Later, the endpoint is back: `alerts deliver` sends what is pending, once.
    later = notifier(store, receiver.url)
    assert later.deliver().delivered == 2
    assert later.pending().empty and len(receiver.delivered) == 2
    log = later.log()
    assert (log["status"] == "delivered").all() and log["attempts"].tolist() == [3, 1]
    assert log["last_error"].isna().all() and log["delivered_at"].notna().all()


def test_signatures_verify_and_forgeries_do_not(store, receiver):
    notifier(store, receiver.url).notify_night(NIGHT1)
    headers, body = receiver.requests[0]
    assert verify_signature(body, headers, SECRET)
    assert not verify_signature(body + b" ", headers, SECRET)
    assert not verify_signature(body, headers, b"another secret of at least thirty-two bytes")
    assert not verify_signature(body, {**headers, ID_HEADER: "er_someone_else"}, SECRET)  # the id is signed
    # A captured request replayed an hour later is refused (the timestamp is signed too).
    hook = Webhook(receiver.url, secret=SECRET)
    old = hook.headers(headers[ID_HEADER], body, at=datetime.now(timezone.utc) - timedelta(hours=1))
    assert not verify_signature(body, old, SECRET)
    assert headers[SIGNATURE_HEADER].startswith("v1,")
    # The receiver's own check, with the standardwebhooks package directly.
    assert standardwebhooks.Webhook(SECRET).verify(body, headers)["message_id"] == headers[ID_HEADER]


def test_no_personal_data_in_any_body(store, receiver):
    n = notifier(store, receiver.url)
    n.notify_night(NIGHT1)
    n.remind(at="2025-07-05 09:00")
    bodies = b"\n".join(b for _, b in receiver.requests).decode("utf-8")
    assert "13812345678" not in bodies and "110101198001011234" not in bodies
    assert not re.search(r"(?<!\d)1[3-9]\d{9}(?!\d)", bodies)
    assert not re.search(r"(?<!\d)\d{17}[\dXx](?!\d)", bodies)


def test_messages_use_the_shared_masking():
    assert mask_identifiers("call 13812345678 now") == "call [phone] now"
    assert mask_identifiers("id 11010119800101123X.") == "id [id number]."
    assert mask_identifiers("138-1234-5678") == "[phone]"
    assert mask_identifiers("amount 20000 yuan, 3 calls") == "amount 20000 yuan, 3 calls"


def test_reminders_one_per_owner_and_an_office_summary_idempotent_per_day(store, receiver):
    d1 = int(store.alerts(dispute_id="d1")["alert_id"].iloc[0])
    d2 = int(store.alerts(dispute_id="d2")["alert_id"].iloc[0])
    store.assign(d1, to="grid worker 07", by="duty officer", at="2025-06-30 08:00")
    store.assign(d2, to="grid worker 09", by="duty officer", at="2025-06-30 08:00")
    n = notifier(store, receiver.url)
    # Raised on 30 June: red was due that day (overdue now), orange is due on 3 July (today),
    # yellow on 7 July (nothing to say to its owner yet).
    report = n.remind(at="2025-07-03 09:00")
    assert report.ok
    by_type = {}
    for m in receiver.delivered:
        by_type.setdefault(m["type"], []).append(m)
    owners = {m["owner"]: m for m in by_type["reminder"]}
    assert set(owners) == {"grid worker 07", "grid worker 09"}
    assert owners["grid worker 07"]["overdue"] == 1 and owners["grid worker 07"]["alerts"][0]["dispute_id"] == "d1"
    assert owners["grid worker 09"]["due_today"] == 1 and owners["grid worker 09"]["overdue"] == 0
    summary = by_type["summary"][0]
    assert summary["open_by_level"] == {"red": 1, "orange": 1, "yellow": 1, "blue": 0}
    assert summary["overdue_by_owner"]["grid worker 07"] == 1
    sent = len(receiver.requests)
    assert n.remind(at="2025-07-03 17:00").delivered == 0 and len(receiver.requests) == sent
    assert n.remind(at="2025-07-04 09:00").delivered > 0  # a new day, a new review


def test_platform_shape_sends_the_chinese_text(store, receiver):
    n = Notifier(store, Webhook(receiver.url, secret=SECRET, shape="wecom"), sleep=lambda s: None)
    n.notify_night(NIGHT1)
    m = receiver.delivered[0]
    assert m["msgtype"] == "text" and m["text"]["content"].startswith("【红色新增预警】")


def test_bad_settings_are_refused(store):
    with pytest.raises(ValueError, match="http"):
        Webhook("ftp://example.invalid/x")
    with pytest.raises(ValueError, match="shape"):
        Webhook("http://127.0.0.1:9/x", shape="fax")
    with pytest.raises(ValueError, match="min_level"):
        Notifier(store, Webhook("http://127.0.0.1:9/x"), min_level="blue")


def test_cli_deliver_and_remind(tmp_path, receiver):
    url = f"sqlite:///{tmp_path / 'alerts.db'}"
    with AlertStore(url) as s:
        s.record_night(scores(NIGHT1, [("d1", 0.91, "red", "new")]), NIGHT1, "m1")
        Notifier(s, Webhook("http://127.0.0.1:9/unreachable", timeout_s=0.2), sleep=lambda x: None).queue_night(NIGHT1)
    env = {"ESCALATION_RISK_NOTIFY_SECRET": SECRET.decode()}
    res = CliRunner().invoke(alerts_cli, ["deliver", "--store", url, "--notify", receiver.url], env=env)
    assert res.exit_code == 0, res.output
    assert "1 delivered, 0 pending" in res.output and len(receiver.delivered) == 1
    res = CliRunner().invoke(alerts_cli, ["remind", "--store", url, "--notify", receiver.url,
                                          "--at", "2025-07-02 09:00"], env=env)
    assert res.exit_code == 0, res.output
    assert {m["type"] for m in receiver.delivered[1:]} == {"reminder", "summary"}
    _, body = receiver.requests[-1]
    assert verify_signature(body, receiver.requests[-1][0], SECRET)


def test_the_nightly_job_sends_its_new_alerts_once(small_district, small_model, tmp_path, receiver):
    from escalation_risk.nightly import run_night

    hook = Webhook(receiver.url, secret=SECRET, timeout_s=2.0)
    with AlertStore(f"sqlite:///{tmp_path / 'alerts.db'}") as st:
        report = run_night(small_district, small_model, "2025-06-30", store=st, out_dir=tmp_path, notify=hook,
                           check_drift=False)
        assert report.delivery is not None and report.delivery.ok
        alerts = st.alerts()
        wanted = set(alerts.loc[alerts["level"].isin(["red", "orange"]), "dispute_id"])
        assert wanted and {m["dispute_id"] for m in receiver.delivered} == wanted
        again = run_night(small_district, small_model, "2025-06-30", store=st, out_dir=tmp_path, notify=hook,
                          check_drift=False)
        assert again.delivery is not None and again.delivery.delivered == 0
    assert len(receiver.delivered) == len(wanted)


# ---------------------------------------------------------------------------
# exactly once per message id, and the secret


@pytest.mark.parametrize("shape", ["json", "wecom", "dingtalk", "feishu"])
def test_every_shape_carries_the_messages_id_signed(store, receiver, shape):
    n = Notifier(store, Webhook(receiver.url, secret=SECRET, shape=shape), sleep=lambda s: None)
    assert n.notify_night(NIGHT1).delivered == 2
    stored = set(n.log()["webhook_id"])
    sent = [h[ID_HEADER] for h, _ in receiver.requests]
    assert sorted(sent) == sorted(stored) and len(stored) == 2
    for headers, body in receiver.requests:
        assert verify_signature(body, headers, SECRET)
        if shape == "json":
            assert json.loads(body)["message_id"] == headers[ID_HEADER]
        else:  # a platform's text body has no room for an id: the header carries it
            assert headers[ID_HEADER] not in body.decode("utf-8")


def test_a_secret_is_required_to_send_and_never_shown(store, receiver, tmp_path):
    from escalation_risk.alerts.notify import WebhookSecretError

    short = b"0123456789abcdef-short"
    with pytest.raises(WebhookSecretError, match="22 bytes; at least 32") as err:
        Webhook(receiver.url, secret=short)
    assert short.decode() not in str(err.value)
    unsigned = Notifier(store, Webhook(receiver.url), sleep=lambda s: None)
    assert unsigned.queue_night(NIGHT1) == 2
    with pytest.raises(WebhookSecretError, match="required to send"):
        unsigned.deliver()
    assert receiver.requests == [] and set(unsigned.pending()["status"]) == {"pending"}  # nothing claimed
    # A platform URL carries its key: repr, errors and the log show it without.
    hook = Webhook("http://127.0.0.1:9/cgi-bin/webhook/send?key=TOKEN-IN-QUERY-0123", secret=SECRET,
                   timeout_s=0.5)
    feishu = Webhook("https://open.feishu.cn/open-apis/bot/v2/hook/0f3c9a7e-55aa-4d1b-9c1e-TOKEN", secret=SECRET)
    for shown in (repr(hook), repr(feishu), repr(Notifier(store, hook))):
        assert "TOKEN" not in shown and SECRET.decode() not in shown and "secret=<set>" in shown
    report = Notifier(store, hook, retries=1, max_consecutive_failures=1, sleep=lambda s: None).deliver()
    assert not report.ok and report.errors
    logged = " ".join(str(e) for e in report.errors) + " ".join(map(str, unsigned.pending()["last_error"]))
    assert "TOKEN" not in logged and SECRET.decode() not in logged and "unreachable" in logged
    # the command line: no secret, or a short one, is refused before anything is sent, and never echoed
    url = store.url.render_as_string()
    res = CliRunner().invoke(alerts_cli, ["deliver", "--store", url, "--notify", receiver.url], env={
        "ESCALATION_RISK_NOTIFY_SECRET": ""})
    assert res.exit_code == 2 and "--notify-secret" in res.output and "required to send" in res.output
    res = CliRunner().invoke(alerts_cli, ["deliver", "--store", url, "--notify", receiver.url],
                             env={"ESCALATION_RISK_NOTIFY_SECRET": short.decode()})
    assert res.exit_code == 2 and short.decode() not in res.output and "at least 32" in res.output


def scores_by_district(as_of, district, rows):
    return scores(as_of, rows).assign(district=district)


def test_a_requeued_old_night_sends_that_nights_picture_under_that_nights_key(receiver):
    with AlertStore("sqlite://") as s:
        s.record_night(scores(NIGHT1, [("d1", 0.40, "orange", "new")]), NIGHT1, "m1")
        later = scores(NIGHT2, [("d1", 0.95, "red", "rising")]).assign(plan="police_joint", reasons=[["later"]] * 1)
        s.record_night(later, NIGHT2, "m1")
        n = notifier(s, receiver.url)
        # NIGHT1 queued only now, after NIGHT2 moved the alert to red: NIGHT1's picture is sent
        assert n.notify_night(NIGHT1).delivered == 1
        m = receiver.delivered[-1]
        assert (m["level"], m["trend"], m["plan"], m["probability"]) == ("orange", "new", "debt_mediation_judicial",
                                                                          0.4)
        assert "later" not in m["reasons"] and m["night"].startswith("2025-06-30")
        assert n.log()["key"].tolist() == ["alert::d1:2025-06-30T00:00:00:orange"]
        assert n.queue_night(NIGHT1) == 0  # the same night again: the same key, nothing new
        assert n.notify_night(NIGHT2).delivered == 1
        assert (receiver.delivered[-1]["level"], receiver.delivered[-1]["previous_level"]) == ("red", "orange")


def test_rising_compares_the_same_dispute_in_the_same_district(receiver):
    with AlertStore("sqlite://") as s:
        # dispute ids are unique only inside a district: "d1" of district A and of district B
        s.record_night(scores_by_district(NIGHT1, "A", [("d1", 0.30, "yellow", "new")]), NIGHT1, "m1")
        s.record_night(scores_by_district(NIGHT1, "B", [("d1", 0.95, "red", "new")]), NIGHT1, "m1")
        s.record_night(scores_by_district(NIGHT2, "A", [("d1", 0.92, "red", "rising")]), NIGHT2, "m1")
        n = notifier(s, receiver.url)
        messages = n.night_messages(NIGHT2)
        assert [(m["district"], m["event"], m["previous_level"], m["level"]) for m in messages] == [
            ("A", "rising", "yellow", "red")]


def test_queueing_is_insert_or_ignore(store, receiver):
    n = notifier(store, receiver.url)
    messages = n.night_messages(NIGHT1)
    assert n._enqueue(messages) == 2
    assert n._enqueue(messages + messages) == 0  # a second queuer with the same keys adds nothing, raises nothing
    assert len(n.log()) == 2


# ---------------------------------------------------------------------------
# the allow-list: one declared field list per body, in escalation_risk.outputs


def _paths(value, prefix=""):
    """Every key path of a JSON body ("text.content"), lists looked into."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield f"{prefix}{k}"
            yield from _paths(v, f"{prefix}{k}.")
    elif isinstance(value, list):
        for v in value:
            yield from _paths(v, prefix)


def test_body_fields_are_the_allow_lists():
    from escalation_risk import outputs
    from escalation_risk.alerts.notify import BODY_FIELDS

    for kind, fields in BODY_FIELDS.items():
        assert fields == outputs.output(f"webhook_{kind}").columns
        assert set(fields) <= set(outputs.output("webhook").columns)


@pytest.mark.parametrize("shape", ["json", "wecom", "dingtalk", "feishu"])
def test_every_shape_carries_only_declared_fields(store, receiver, shape):
    from escalation_risk import outputs

    d1 = int(store.alerts(dispute_id="d1")["alert_id"].iloc[0])
    # Free text typed by staff, with a name, a phone and an id number: never in a body.
    store.assign(d1, to="grid worker 07", by="duty officer", at="2025-06-30 08:00",
                 note="张三 13812345678 110101198001011234")
    n = Notifier(store, Webhook(receiver.url, secret=SECRET, shape=shape), sleep=lambda s: None)
    n.notify_night(NIGHT1)
    n.remind(at="2025-07-03 09:00")
    bodies = [json.loads(b) for _, b in receiver.requests]
    assert {"alert", "reminder", "summary"} <= {m.get("type") for m in bodies} or shape != "json"
    assert len(bodies) >= 4
    for body in bodies:
        if shape == "json":
            declared = set(outputs.output(f"webhook_{body['type']}").columns)
            extra = set(body) - declared
            for item in body.get("alerts") or []:
                extra |= set(item) - set(outputs.output("webhook_reminder_item").columns)
        else:
            extra = set(_paths(body)) - set(outputs.output(f"webhook_{shape}").columns)
        assert not extra, f"{shape}: fields outside the allow-list: {sorted(extra)}"
        text = json.dumps(body, ensure_ascii=False)
        assert "张三" not in text and "13812345678" not in text and "110101198001011234" not in text


def test_a_field_outside_the_list_fails_the_check(store):
    from escalation_risk.alerts.notify import _declared

    with pytest.raises(ValueError, match="not declared"):
        _declared({"message_id": "x", "type": "summary", "day": "2025-07-03", "note": "张三"})

"""The ASGI app: the desk's pages and the JSON API (FastAPI, Jinja2, served by uvicorn).

Pages (server-rendered, no script needed, Chinese first, ``?lang=en`` switches):
``/login``, ``/logout``, ``/alerts`` (my alerts), ``/alerts/{alert_id}`` and its actions
(``take``, ``assign``, ``follow-up``, ``close``, each a POST form), ``/supervisor`` and
``/supervisor/briefing``. JSON: ``POST /api/v1/score``, ``GET /api/v1/alerts``,
``/healthz``; the OpenAPI document at ``/openapi.json``.

Security: a signed, HttpOnly, SameSite=Lax cookie carries a random session id whose
digest is in the store (so signing out ends it for good) and the language; every form
carries the session's CSRF token and a POST without the right one is refused (403) and
logged; a worker asking for another grid's alert gets 403 and the attempt is logged;
failed sign-ins are counted per user name and per address (see ``users``); API calls
need a bearer token with the route's scope. Errors are JSON naming the field, and its
value only for numeric and date fields (as the quarantine report does), never a
traceback, never a personal identifier or free text.

What leaves goes through the allow-list (:mod:`escalation_risk.outputs`): the API's alert
rows (``api_alerts``), the score answer (``score_answer``), each error item
(``api_error``), the pages' alerts (``desk_alert``) and audit trail (``alert_events``).
Outcomes and notes typed by staff are shown by their length, never as typed.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import math
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import jinja2
import pandas as pd
from fastapi import Depends, FastAPI, Form, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from .._version import __version__
from ..alerts import LEVELS, OUTCOMES, STATUSES, AlertNotFoundError, AlertTransitionError
from ..dataset import DataValidationError
from ..dataset.problems import SHOWN_KINDS, column_kind, shown_value
from ..masking import mask_identifiers
from ..outputs import allowed, only
from .pool import ScorePool, plain
from .service import Desk, TTLCache
from .text import EVENT_NAMES, LANGS, LEVEL_NAMES, OUTCOME_NAMES, STATUS_NAMES, TEXT, TREND_NAMES
from .users import User

__all__ = ["create_app", "check_proxies", "SESSION_COOKIE"]

log = logging.getLogger("escalation_risk.desk")
SESSION_COOKIE = "er_desk"
SESSION_MAX_AGE = 12 * 3600
MAX_NOTE = 500
#: Alerts per page of "my alerts": a phone's worth of scrolling.
PAGE_SIZE = 100
TOKEN_SECONDS = 30.0
#: The kinds of the API's own fields (outside the contract's tables): an error shows a bad
#: value only for numeric and date fields.
_PARAM_KINDS = {"as_of": "timestamp", "top_reasons": "int", "limit": "int", "offset": "int"}
_FIELD_OF_TABLE = {"incidents": "dispute", "incident_parties": "parties", "mediations": "mediations",
                   "incident_notes": "notes", "score_dispute": ""}


class _LoginRequired(Exception):
    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class _Refused(Exception):
    """A page request refused with ``status`` and a message key of ``TEXT``."""

    def __init__(self, status: int, key: str) -> None:
        self.status, self.key = status, key


class _ApiError(Exception):
    def __init__(self, status: int, detail: Any, headers: dict[str, str] | None = None) -> None:
        self.status, self.detail, self.headers = status, detail, headers


class ScoreRequest(BaseModel):
    """``score_dispute``'s input: the dispute (``incidents`` columns), its parties (``incident_parties``),
    optional mediations and notes (``incident_notes``), an optional ``as_of`` and how many reasons."""

    dispute: dict[str, Any] = Field(description="one row in the contract's incidents columns")
    parties: list[dict[str, Any]] = Field(description="rows in the incident_parties columns (incident_id optional)")
    mediations: list[dict[str, Any]] = Field(default_factory=list)
    notes: list[dict[str, Any]] = Field(default_factory=list)
    as_of: str | None = Field(default=None, description="ISO 8601; a date means the end of that day; default now")
    top_reasons: int = Field(default=3, ge=0, le=10)


def _shown(table: str, column: str, value: Any) -> str | None:
    """A bad value as an error may show it: only in a numeric or date field (masked, short,
    by the quarantine report's rule); None for anything else."""
    kind = column_kind(table, column) or _PARAM_KINDS.get(column)
    if kind not in SHOWN_KINDS or value is None:
        return None
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]  # a problem row carries a string's repr: judge the value itself
    return shown_value(table, column, value, kind=kind)


def _error(**item: Any) -> dict[str, Any]:
    """One item of an error body, cut to the declared ``api_error`` fields."""
    return only(item, "api_error")


def _page_alert(a: dict[str, Any]) -> dict[str, Any]:
    """An alert as a page may show it (``desk_alert``): its audit trail's notes and its
    outcome typed by staff as their lengths."""
    out = only(a, "desk_alert")
    if "events" in out:
        out["events"] = [only(e, "alert_events") for e in out["events"]]
    return out


def check_proxies(proxies: Sequence[str]) -> list[str]:
    """``proxies`` as IP addresses or networks (``10.0.0.0/8``); ``ValueError`` naming a value
    that is neither. ``*`` (trust any client's header) is refused: anyone could then choose
    the address their failed sign-ins count against."""
    out = []
    for p in proxies:
        p = p.strip()
        try:
            if "/" in p:
                ipaddress.ip_network(p, strict=False)
            else:
                ipaddress.ip_address(p)
        except ValueError:
            raise ValueError(f"trusted proxy {p!r}: not an IP address or network") from None
        out.append(p)
    return out


def _address(request: Request) -> str:
    return request.client.host if request.client else ""


def create_app(desk: Desk, *, secret_key: str | bytes | None = None, secure_cookies: bool = False,
               trusted_proxies: Sequence[str] = (), pool: ScorePool | None = None) -> FastAPI:
    """The desk and API over ``desk``. ``secret_key`` signs the cookies (random when None:
    sessions then end when the process does); ``secure_cookies`` sends them over HTTPS only.

    ``trusted_proxies`` (addresses or networks, see :func:`check_proxies`): a request that
    comes from one of them is taken to be from the address its ``X-Forwarded-For`` names
    (the nearest hop that is not itself a trusted proxy), for sign-in limits and the
    access log alike; from anywhere else the header is ignored. None trusted by default.

    ``pool`` scores the API's calls (see :mod:`.pool`; default: in the server's event loop);
    the app closes it when the server stops."""
    scoring = pool if pool is not None else ScorePool(desk.scorer)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            scoring.close()

    app = FastAPI(title="escalation_risk desk", version=__version__, lifespan=lifespan,
                  description="The alert desk's JSON API: score a dispute, read alerts. Bearer tokens from "
                              "`escalation-risk tokens add NAME --scope score[,alerts]`.")
    key = secret_key if secret_key is not None else secrets.token_hex(32)
    app.add_middleware(SessionMiddleware, secret_key=key.decode() if isinstance(key, bytes) else key,
                       session_cookie=SESSION_COOKIE, max_age=SESSION_MAX_AGE, same_site="lax",
                       https_only=secure_cookies)
    proxies = check_proxies(trusted_proxies)
    if proxies:
        # Added last, so it runs first: every later layer sees the client's address.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=proxies)
    app.state.desk = desk
    env = jinja2.Environment(loader=jinja2.PackageLoader("escalation_risk", "desk/templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)

    # -- plumbing ---------------------------------------------------------------------

    def lang_of(request: Request) -> str:
        wanted = request.query_params.get("lang")
        if wanted in LANGS:
            request.session["lang"] = wanted
        lang = request.session.get("lang", "zh")
        return lang if lang in LANGS else "zh"

    def pre_csrf(request: Request) -> str:
        token = request.session.get("csrf")
        if not token:
            token = request.session["csrf"] = secrets.token_urlsafe(32)
        return str(token)

    def current(request: Request) -> tuple[User, str] | None:
        sid = request.session.get("sid")
        return desk.directory.session(str(sid)) if sid else None

    def signed_in(request: Request) -> tuple[User, str]:
        found = current(request)
        if found is None:
            raise _LoginRequired(request.url.path)
        return found

    def check_csrf(request: Request, given: str, expected: str, who: str) -> None:
        if not given or not hmac.compare_digest(given.encode(), expected.encode()):
            desk.directory.record("csrf_refused", who, _address(request), f"{request.method} {request.url.path}")
            raise _Refused(403, "csrf")

    def render(request: Request, name: str, status: int = 200, user: User | None = None, csrf: str = "",
               **ctx: Any) -> HTMLResponse:
        lang = lang_of(request)
        page = env.get_template(name).render(
            t=TEXT[lang], lang=lang, html_lang="zh-CN" if lang == "zh" else "en", user=user, csrf=csrf,
            path=request.url.path, levels=LEVEL_NAMES[lang], trends=TREND_NAMES[lang],
            statuses=STATUS_NAMES[lang], events=EVENT_NAMES[lang], outcomes=OUTCOME_NAMES[lang],
            fmt_time=_fmt_time, pct=_pct, **ctx)
        return HTMLResponse(page, status_code=status, headers=_page_headers())

    def owned(request: Request, user: User, alert_id: int) -> dict[str, Any]:
        try:
            a = desk.alert(alert_id)
        except AlertNotFoundError:
            raise _Refused(404, "not_found") from None
        if not user.can_see(a["grid"], a["place_district"]):
            desk.directory.record("forbidden", user.username, _address(request), f"alert {alert_id}")
            raise _Refused(403, "forbidden")
        return a

    @app.exception_handler(_LoginRequired)
    def _to_login(request: Request, exc: _LoginRequired) -> Response:
        return RedirectResponse("/login", status_code=303, headers=_page_headers())

    @app.exception_handler(_Refused)
    def _refused(request: Request, exc: _Refused) -> Response:
        found = current(request)
        return render(request, "message.html.j2", exc.status, user=found[0] if found else None,
                      csrf=found[1] if found else "", key=exc.key)

    @app.exception_handler(_ApiError)
    def _api_error(request: Request, exc: _ApiError) -> Response:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    def _invalid(request: Request, exc: RequestValidationError) -> Response:
        detail = []
        for e in exc.errors():
            loc = [str(x) for x in e.get("loc", ()) if x not in ("body", "query", "path", "form")]
            column = loc[-1] if loc else ""
            value = e.get("input")
            # Only our own numeric and date parameters are echoed; the dispute's parts may hold anything.
            shown = _shown("", column, value) if len(loc) == 1 else None
            detail.append(_error(field=".".join(loc), value=shown, reason=e.get("msg")))
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(DataValidationError)
    def _bad_data(request: Request, exc: DataValidationError) -> Response:
        detail = []
        for p in exc.problems.head(20).itertuples():
            table, column = str(p.table), str(p.column or "")
            field = _FIELD_OF_TABLE.get(table, table)
            row = None if p.row is None or pd.isna(p.row) else int(p.row)
            if field in ("parties", "mediations", "notes") and row is not None:
                field = f"{field}[{row}]"
            detail.append(_error(field=".".join(x for x in (field, column) if x), table=table, column=column,
                                 value=_shown(table, column, p.value), reason=mask_identifiers(str(p.reason))))
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    def _http(request: Request, exc: StarletteHTTPException) -> Response:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

    @app.exception_handler(Exception)
    def _crash(request: Request, exc: Exception) -> Response:
        ref = uuid.uuid4().hex[:12]
        # The type only: a message can carry a value from the request.
        log.error("unhandled %s on %s %s (ref %s)", type(exc).__name__, request.method, request.url.path, ref)
        return JSONResponse({"detail": "internal error", "ref": ref}, status_code=500)

    # -- health -------------------------------------------------------------------------

    @app.get("/healthz", tags=["service"])
    def healthz() -> dict[str, Any]:
        """Alive, with the model's version, the store's schema and whether the caches are warm."""
        return {"status": "ok", "version": __version__, "model_version": desk.scorer.model.version,
                "schema_version": desk.store.schema_version, "warm": desk.warmed}

    # -- signing in and out ----------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    def home() -> Response:
        return RedirectResponse("/alerts", status_code=303)

    @app.get("/login", include_in_schema=False, response_class=HTMLResponse)
    def login_page(request: Request) -> Response:
        if current(request) is not None:
            return RedirectResponse("/alerts", status_code=303)
        return render(request, "login.html.j2", csrf=pre_csrf(request), error="", username="")

    @app.post("/login", include_in_schema=False, response_class=HTMLResponse)
    def login(request: Request, username: str = Form(""), password: str = Form(""),
              csrf_token: str = Form("")) -> Response:
        address = _address(request)
        username = username.strip()[:64]
        check_csrf(request, csrf_token, pre_csrf(request), username)
        if desk.directory.login_blocked(username, address):
            desk.directory.record("login_limited", username, address)
            return render(request, "login.html.j2", 429, csrf=pre_csrf(request), error="limited", username=username)
        user = desk.directory.authenticate(username, password, address)
        if user is None:
            return render(request, "login.html.j2", 401, csrf=pre_csrf(request), error="bad_login",
                          username=username)
        sid, _ = desk.directory.start_session(user)
        lang = request.session.get("lang")
        request.session.clear()  # a new session id and CSRF token after signing in
        request.session["sid"] = sid
        if lang:
            request.session["lang"] = lang
        return RedirectResponse("/alerts", status_code=303)

    @app.get("/logout", include_in_schema=False, response_class=HTMLResponse)
    def logout_page(request: Request) -> Response:
        found = current(request)
        if found is None:
            return RedirectResponse("/login", status_code=303)
        return render(request, "logout.html.j2", user=found[0], csrf=found[1])

    @app.post("/logout", include_in_schema=False)
    def logout(request: Request, csrf_token: str = Form("")) -> Response:
        found = current(request)
        if found is not None:
            user, csrf = found
            check_csrf(request, csrf_token, csrf, user.username)
            desk.directory.end_session(str(request.session.get("sid")))
            desk.directory.record("logout", user.username, _address(request))
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    # -- my alerts and one alert ------------------------------------------------------------

    @app.get("/alerts", include_in_schema=False, response_class=HTMLResponse)
    def my_alerts(request: Request, page: int = Query(1, ge=1), who: tuple[User, str] = Depends(signed_in)
                  ) -> Response:
        user, csrf = who
        df, counts = desk.my_alerts(user)
        pages = max(1, -(-len(df) // PAGE_SIZE))
        page = min(page, pages)
        rows = [_page_alert(r) for r in df.iloc[(page - 1) * PAGE_SIZE:page * PAGE_SIZE].to_dict("records")]
        return render(request, "alerts.html.j2", user=user, csrf=csrf, alerts=rows, counts=counts,
                      page=page, pages=pages)

    @app.get("/alerts/{alert_id}", include_in_schema=False, response_class=HTMLResponse)
    def one_alert(request: Request, alert_id: int, who: tuple[User, str] = Depends(signed_in)) -> Response:
        user, csrf = who
        a = owned(request, user, alert_id)
        return _alert_page(request, user, csrf, a, "done" if request.query_params.get("done") else "")

    def _alert_page(request: Request, user: User, csrf: str, a: dict[str, Any], message: str = "",
                    error: str = "", status: int = 200) -> HTMLResponse:
        lang = lang_of(request)
        reasons = (a.get("reasons_zh") or a["reasons"]) if lang == "zh" else a["reasons"]
        workers = desk.workers_for(a["grid"]) if user.role in ("supervisor", "admin") else []
        similar = allowed(pd.DataFrame(desk.similar(a)), "cases").to_dict("records")
        return render(request, "alert.html.j2", status, user=user, csrf=csrf, a=_page_alert(a), reasons=reasons,
                      plan=a["plan_zh"] if lang == "zh" else a["plan_en"], similar=similar,
                      workers=workers, outcome_codes=OUTCOMES, message=message, error=error)

    def act(request: Request, user: User, csrf: str, alert_id: int, given: str,
            action: Callable[[dict[str, Any]], dict[str, Any]]) -> Response:
        check_csrf(request, given, csrf, user.username)
        a = owned(request, user, alert_id)
        try:
            desk.changed(action(a))
        except (AlertTransitionError, ValueError) as e:
            return _alert_page(request, user, csrf, desk.alert(alert_id), error=mask_identifiers(str(e)),
                               status=409)
        return RedirectResponse(f"/alerts/{alert_id}?done=1", status_code=303)

    @app.post("/alerts/{alert_id}/take", include_in_schema=False)
    def take(request: Request, alert_id: int, csrf_token: str = Form(""),
             who: tuple[User, str] = Depends(signed_in)) -> Response:
        user, csrf = who
        return act(request, user, csrf, alert_id, csrf_token,
                   lambda a: desk.store.assign(alert_id, to=user.username, by=user.username))

    @app.post("/alerts/{alert_id}/assign", include_in_schema=False)
    def assign(request: Request, alert_id: int, to: str = Form(""), csrf_token: str = Form(""),
               who: tuple[User, str] = Depends(signed_in)) -> Response:
        user, csrf = who

        def do(a: dict[str, Any]) -> Any:
            if user.role not in ("supervisor", "admin"):
                raise _Refused(403, "forbidden")
            if to not in desk.workers_for(a["grid"]):
                raise ValueError(f"to: not a worker of grid {a['grid']}")
            return desk.store.assign(alert_id, to=to, by=user.username)
        return act(request, user, csrf, alert_id, csrf_token, do)

    @app.post("/alerts/{alert_id}/follow-up", include_in_schema=False)
    def follow_up(request: Request, alert_id: int, status: str = Form(""), note: str = Form(""),
                  csrf_token: str = Form(""), who: tuple[User, str] = Depends(signed_in)) -> Response:
        user, csrf = who

        def do(a: dict[str, Any]) -> Any:
            if status not in STATUSES:
                raise ValueError(f"status: expected one of {', '.join(a['next'])}")
            return desk.store.update(alert_id, status, by=user.username, note=note.strip()[:MAX_NOTE])
        return act(request, user, csrf, alert_id, csrf_token, do)

    @app.post("/alerts/{alert_id}/close", include_in_schema=False)
    def close(request: Request, alert_id: int, outcome: str = Form(""), escalated: str = Form("unknown"),
              note: str = Form(""), csrf_token: str = Form(""),
              who: tuple[User, str] = Depends(signed_in)) -> Response:
        user, csrf = who

        def do(a: dict[str, Any]) -> Any:
            if outcome not in OUTCOMES:
                raise ValueError(f"outcome: expected one of {', '.join(OUTCOMES)}")
            crime = {"yes": True, "no": False}.get(escalated)
            return desk.store.close(alert_id, by=user.username, outcome=outcome, escalated_to_crime=crime,
                                    note=note.strip()[:MAX_NOTE])
        return act(request, user, csrf, alert_id, csrf_token, do)

    # -- supervisor -----------------------------------------------------------------------------

    @app.get("/supervisor", include_in_schema=False, response_class=HTMLResponse)
    def supervisor(request: Request, district: str | None = None,
                   who: tuple[User, str] = Depends(signed_in)) -> Response:
        user, csrf = who
        if user.role not in ("supervisor", "admin"):
            desk.directory.record("forbidden", user.username, _address(request), "supervisor page")
            raise _Refused(403, "forbidden")
        if user.role == "supervisor" and district not in (None, "", user.district):
            desk.directory.record("forbidden", user.username, _address(request), "another district")
            raise _Refused(403, "forbidden")
        view = desk.supervisor(user, district or None)
        view["late"] = [_page_alert(r) for r in view["late"]]
        return render(request, "supervisor.html.j2", user=user, csrf=csrf, v=view,
                      district=district or user.district)

    @app.get("/supervisor/briefing", include_in_schema=False, response_class=HTMLResponse)
    def briefing(request: Request, who: tuple[User, str] = Depends(signed_in)) -> Response:
        user, csrf = who
        if user.role not in ("supervisor", "admin"):
            desk.directory.record("forbidden", user.username, _address(request), "briefing")
            raise _Refused(403, "forbidden")
        page = desk.briefing(lang_of(request))
        if page is None:
            return render(request, "message.html.j2", 404, user=user, csrf=csrf, key="no_briefing")
        return HTMLResponse(page, headers=_page_headers())

    # -- the JSON API ------------------------------------------------------------------------

    # A token's scopes are looked up in the store at most every TOKEN_SECONDS (a revoked
    # token stops working within that time): a query per call is a noticeable share of a score.
    tokens = TTLCache(1024, TOKEN_SECONDS)

    def scope(name: str) -> Callable[[Request], Awaitable[str]]:
        # Async on purpose: a sync dependency costs a hop to the thread pool per call. A cached
        # token costs nothing; a look-up or a refusal is one short query.
        async def check(request: Request) -> str:
            auth = request.headers.get("authorization", "")
            kind, _, token = auth.partition(" ")
            if kind.lower() != "bearer" or not token.strip():
                raise _ApiError(401, "a bearer token is required (Authorization: Bearer TOKEN)",
                                {"WWW-Authenticate": "Bearer"})
            token = token.strip()
            found = tokens.get(hashlib.sha256(token.encode()).hexdigest(), lambda: desk.directory.token(token))
            if found is None:
                desk.directory.record("token_refused", "", _address(request), request.url.path)
                raise _ApiError(401, "unknown or revoked token", {"WWW-Authenticate": "Bearer"})
            service, scopes = found
            if name not in scopes:
                desk.directory.record("token_refused", service, _address(request), f"needs scope {name}")
                raise _ApiError(403, f"this token lacks the scope {name!r}",
                                {"WWW-Authenticate": f'Bearer scope="{name}"'})
            return service
        return check

    @app.post("/api/v1/score", tags=["api"])
    async def score(body: ScoreRequest, service: str = Depends(scope("score"))) -> JSONResponse:
        """Score one dispute: ``Scorer.score_dispute``'s input as JSON, its answer as JSON."""
        kind, what, took = await scoring.score({
            "dispute": body.dispute, "parties": body.parties, "mediations": body.mediations, "notes": body.notes,
            "as_of": body.as_of, "top_reasons": body.top_reasons})
        if kind == "invalid":
            raise DataValidationError(what)
        if kind == "refused":  # a request shape score_dispute refuses (several disputes, ...)
            raise _ApiError(422, [_error(field="dispute", value=None, reason=mask_identifiers(str(what))[:200])])
        return JSONResponse(what, headers={"Server-Timing": f"score;dur={took:.2f}"})

    @app.get("/api/v1/alerts", tags=["api"])
    def api_alerts(status: str | None = Query(None, description="a status, or 'open'"),
                   level: str | None = Query(None, description=f"one of {', '.join(LEVELS)}"),
                   district: str | None = None, dispute_id: str | None = None,
                   limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0),
                   service: str = Depends(scope("alerts"))) -> JSONResponse:
        """Alerts, newest first, filtered like ``AlertStore.alerts``."""
        for field, value, codes in (("status", status, (*STATUSES, "open")), ("level", level, LEVELS)):
            if value is not None and value not in codes:
                raise _ApiError(422, [_error(field=field, value=_shown("", field, value),
                                             reason=f"expected one of {', '.join(codes)}")])
        df = desk.store.alerts(status=status, level=level, district=district, dispute_id=dispute_id)
        page = df.iloc[offset:offset + limit]
        lists = ("reasons", "reasons_zh")  # JSON text in the store, lists in the answer
        rows = [plain(only({**r, **{c: json.loads(r[c]) if isinstance(r[c], str) else [] for c in lists}},
                            "api_alerts"))
                for r in page.to_dict("records")]
        return JSONResponse({"count": int(len(df)), "offset": offset, "alerts": rows})

    return app


def _page_headers() -> dict[str, str]:
    return {"Cache-Control": "no-store", "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
            "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                                   "form-action 'self'"}


def _fmt_time(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NaT:
        return ""
    return f"{pd.Timestamp(v):%Y-%m-%d %H:%M}"


def _pct(v: Any) -> str:
    return "" if v is None or not math.isfinite(float(v)) else f"{100 * float(v):.0f}%"


"""The console's pages and changes under /console: a Quart blueprint on agentkit's own port.

Every page needs a session (else 303 to the login page); every POST needs
the session's CSRF token; a viewer changes nothing, and only an approver
signed in as themselves (never the shared login) decides approvals.
Responses forbid inline scripts, framing and caching. Pages refresh a live
part of themselves by polling it as a fragment (``?fragment=1``), so the
operator keeps their place.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from markupsafe import Markup
from quart import Blueprint, Response, g, render_template, request
from werkzeug.datastructures import MultiDict

from agentkit.approvals.desk import ApprovalConfig, ApprovalDesk, ApprovalError
from agentkit.approvals.slack import facts
from agentkit.console.access import LoginLimiter
from agentkit.console.health import Health, read_health
from agentkit.console.operations import (
    CALLBACK_KINDS,
    FLOW_KINDS,
    REASON_LIMIT,
    ConsoleOperations,
    OperationError,
)
from agentkit.console.search import read_search
from agentkit.console.session import SESSION_COOKIE, SESSION_SECONDS, ConsoleAccess, Operator
from agentkit.console.story import call_outcome, diff, timeline
from agentkit.errors import AgentkitError
from agentkit.logs import get_logger
from agentkit.odygy.client import OdygyClient
from agentkit.redact import mask_segments
from agentkit.replay.render import render_html_body, report_css
from agentkit.replay.reports import ReportError, list_reports, load_report
from agentkit.store.base import Approval, ApprovalDecision, CallCursor, Store, StoreError

log = get_logger("agentkit.console")

PREFIX = "/console"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
# Pages that answer without a session.
_OPEN_ENDPOINTS = frozenset({"console.login", "console.login_form", "console.static"})
_NOTES = {
    "retried": "The job is queued again; the workers run it shortly.",
    "retried-group": "The group's jobs are queued again.",
    "discarded": "The dead letter was discarded, with your reason.",
    "cancelled": "The callback was cancelled; no further attempt is placed.",
    "reverted": "The flow change was reverted.",
    "approved": "Approved: the workers carry out the action shortly.",
    "rejected": "Rejected: the action will not be done.",
}
# Pending approvals counted for the navigation; more shows as "100+".
_PENDING_SHOWN = 100


@dataclass(frozen=True)
class ConsoleConfig:
    """What the console is told at start-up.

    ``url_token``: a token the login page takes from its URL (the sandbox's own,
    as Jupyter prints one); never set outside the sandbox. ``replay_dir``: the
    folder of saved replay reports (``AGENTKIT_REPLAY_DIR``); None: no reports.
    """

    access: ConsoleAccess
    bots: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    calls_daily_max: int = 0
    url_token: str | None = None
    page_size: int = 50
    limiter: LoginLimiter = field(default_factory=LoginLimiter)
    transcript_timeout: float = 3.0
    replay_dir: Path | None = None


def console_blueprint(
    config: ConsoleConfig,
    store: Store,
    operations: ConsoleOperations,
    *,
    api: OdygyClient | None = None,
    approvals: ApprovalDesk | None = None,
) -> Blueprint:
    """The console, to register on the receiver's Quart app.

    ``approvals``: the desk decisions go through; without one, a desk over ``store``
    (its decisions' jobs are then found by polling workers).
    """
    bp = Blueprint("console", __name__, url_prefix=PREFIX, template_folder="templates",
                   static_folder="static")
    access = config.access
    desk = approvals or ApprovalDesk(store, ApprovalConfig())

    @bp.before_request
    async def need_session() -> Response | None:
        g.operator = access.operator(request.cookies.get(SESSION_COOKIE))
        if request.endpoint in _OPEN_ENDPOINTS:
            return None
        if g.operator is None:
            target = request.full_path.rstrip("?") if request.method == "GET" else None
            query = f"?{urlencode({'next': target})}" if target else ""
            return _see(f"{PREFIX}/login{query}")
        if request.method == "POST":
            form = await request.form
            sent = str(form.get("csrf", ""))
            if not sent or not hmac.compare_digest(sent, g.operator.csrf):
                return await _error(403, "This form is out of date or came from another site "
                                    "(its CSRF token does not match your session): reload the "
                                    "page and try again.")
            if request.endpoint != "console.logout" and not g.operator.can_change:
                return await _error(403, "Your role is viewer: you may look, not change. Ask "
                                    "an operator.")
        return None

    @bp.after_request
    async def secure(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    @bp.errorhandler(StoreError)
    async def store_failed(exc: StoreError) -> Response:
        log.error("console.store_unavailable", error=str(exc))
        return await _error(503, "The store cannot be read right now; try again shortly.")

    # signing in and out

    @bp.get("/login")
    async def login_form() -> Response:
        token = request.args.get("token", "")
        if token and config.url_token and hmac.compare_digest(token, config.url_token):
            operator = await access.sign_in_by_url(token)
            if operator is not None:
                return _signed_in(operator, _next_page(request.args.get("next")))
        return await _page("login.html", status=200, next=_next_page(request.args.get("next")),
                           problem=None)

    @bp.post("/login")
    async def login() -> Response:
        address = request.remote_addr or "unknown"
        # Counted before anything is looked at: a refused attempt counts too.
        if not config.limiter.attempt(address):
            response = await _page("login.html", status=429, next=PREFIX + "/calls",
                                   problem="Too many sign-in attempts from your address: "
                                           "wait a minute, then try again.")
            response.headers["Retry-After"] = str(int(config.limiter.window))
            return response
        form = await request.form
        target = _next_page(form.get("next"))
        if not _same_origin():
            return await _page("login.html", status=403, next=target,
                               problem="This sign-in came from another site.")
        operator = await access.sign_in(str(form.get("token", "")), str(form.get("name", "")))
        if operator is None:
            log.warning("console.login_refused", address=address)
            return await _page("login.html", status=401, next=target,
                               problem="That token is not right.")
        log.info("console.login", name=operator.name, role=operator.role,
                 shared=operator.shared, address=address)
        return _signed_in(operator, target)

    @bp.post("/logout")
    async def logout() -> Response:
        response = _see(f"{PREFIX}/login")
        response.delete_cookie(SESSION_COOKIE, path=PREFIX)
        return response

    def _signed_in(operator: Operator, target: str) -> Response:
        response = _see(target)
        response.set_cookie(
            SESSION_COOKIE, access.cookie(operator), max_age=SESSION_SECONDS, path=PREFIX,
            httponly=True, samesite="Strict", secure=request.scheme == "https",
        )
        return response

    # pages

    @bp.get("/")
    async def home() -> Response:
        return _see(f"{PREFIX}/calls")

    @bp.get("/calls")
    async def calls() -> Response:
        search = read_search(request.args.get("q", ""), bots=config.bots,
                             regions=config.regions)
        try:
            before = _cursor(request.args.get("before"))
        except OperationError as exc:
            return await _error(exc.status, str(exc))
        rows = await store.list_calls(search.query, limit=config.page_size + 1, before=before)
        more = len(rows) > config.page_size
        rows = rows[:config.page_size]
        activity = await store.call_activity([row.call_id for row in rows])
        listed = [{"row": row, "outcome": call_outcome(activity.get(row.call_id)),
                   "bots": activity[row.call_id].bots if row.call_id in activity else []}
                  for row in rows]
        later = _cursor_text(rows[-1].started_at, rows[-1].call_id) if more else None
        return await _live("_calls.html", top="_search.html", search=search, calls=listed,
                           later=later, health=await _health(), before=request.args.get("before"))

    @bp.get("/calls/<call_id>")
    async def call(call_id: str) -> Response:
        row = await store.get_call(call_id)
        if row is None:
            return await _error(404, f"agentkit has no call {call_id!r}.")
        events = await store.events_of_call(call_id)
        items = timeline(
            events=events, runs=await store.bot_runs_of_call(call_id),
            answers=await store.model_answers_of_call(call_id),
            actions=await store.actions_for_call(call_id),
            jobs=await store.jobs_of_call(call_id),
        )
        placed = await store.placed_call(call_id)
        origin = None
        if placed is not None:
            action = await store.get_action(placed.action_key)
            origin_event = await store.get_event(action.event_id) if action else None
            origin = {"key": placed.action_key, "attempt": placed.attempt,
                      "call_id": origin_event.call_id if origin_event else None}
        has_transcript = any(e.type == "transcript.ready" for e in events)
        return await _live("_call.html", top="_call_top.html", call=row, items=items,
                           origin=origin, has_transcript=has_transcript)

    @bp.get("/calls/<call_id>/transcript")
    async def transcript(call_id: str) -> Response:
        if await store.get_call(call_id) is None:
            return await _error(404, f"agentkit has no call {call_id!r}.")
        segments: list[dict[str, Any]] = []
        problem = None
        if api is None:
            problem = "this process has no phone.systems client"
        else:
            try:
                found = await asyncio.wait_for(api.calls.transcript(call_id),
                                               timeout=config.transcript_timeout)
                texts = mask_segments([s.text for s in found.segments])
                segments = [{"t": s.t, "speaker": s.speaker, "text": text}
                            for s, text in zip(found.segments, texts, strict=True)]
            except TimeoutError:
                problem = "phone.systems did not answer in time"
            except AgentkitError as exc:
                problem = str(exc)
        return await _fragment("_transcript.html", segments=segments, problem=problem)

    @bp.get("/dead")
    async def dead() -> Response:
        groups = await store.dead_groups(limit=200)
        return await _live("_dead.html", groups=groups)

    @bp.get("/dead/group")
    async def dead_group() -> Response:
        bot = request.args.get("bot") or None
        error = request.args.get("error", "")
        jobs = await store.dead_in_group(bot, error, limit=200)
        return await _live("_dead_group.html", bot=bot, error=error, jobs=jobs)

    @bp.get("/callbacks")
    async def callbacks() -> Response:
        open_ = await store.open_actions(CALLBACK_KINDS, limit=200)
        return await _live("_callbacks.html", callbacks=open_)

    @bp.get("/flows")
    async def flows() -> Response:
        changes = []
        for kind in (*FLOW_KINDS, "revert_flow", "revert_attach"):
            changes += await store.actions_of_kind(kind, limit=100)
        changes.sort(key=lambda a: a.created_at, reverse=True)
        reverted = {str(a.detail.get("reverts")) for a in changes if a.detail.get("reverts")}
        shown = [{"action": a, "diff": diff(a.detail.get("before"), a.detail.get("after")),
                  "revertible": a.kind in FLOW_KINDS and a.state == "done"
                  and a.detail.get("outcome") != "dry_run" and a.key not in reverted,
                  "reverted": a.key in reverted}
                 for a in changes[:100]]
        return await _live("_flows.html", changes=shown)

    @bp.get("/approvals")
    async def approvals_page() -> Response:
        shown = [_approval_item(a) for a in await desk.pending(limit=200)]
        return await _live("_approvals.html", approvals=shown)

    @bp.get("/health")
    async def health() -> Response:
        return await _live("_health.html", health=await _health())

    # Not live: a saved report does not change, and the list reads every file it shows.
    @bp.get("/replay")
    async def replay() -> Response:
        folder = config.replay_dir
        reports = await asyncio.to_thread(list_reports, folder) if folder is not None else []
        return await _page("replay.html", status=200, reports=reports, folder=folder)

    @bp.get("/replay/report.css")
    async def replay_css() -> Response:
        return Response(report_css(), status=200, content_type="text/css; charset=utf-8")

    @bp.get("/replay/<name>")
    async def replay_report(name: str) -> Response:
        back = f"{PREFIX}/replay"
        if config.replay_dir is None:
            return await _error(404, "This console keeps no replay reports.", back=back)
        try:
            report = await asyncio.to_thread(load_report, config.replay_dir, name)
        except ReportError as exc:
            return await _error(404, f"{exc}.", back=back)
        if request.args.get("download") == "1":
            return Response(report.model_dump_json(indent=2), status=200,
                            content_type="application/json; charset=utf-8",
                            headers={"Content-Disposition": f'attachment; filename="{name}"'})
        # Markup: the replay renderer escapes every value itself, with autoescape.
        body = Markup(render_html_body(report, calls_url=f"{PREFIX}/calls/"))
        return await _page("replay_report.html", status=200, name=name, body=body)

    # changes

    @bp.post("/dead/<int:job_id>/retry")
    async def retry(job_id: int) -> Response:
        return await _change(lambda op: operations.retry(op, job_id), "retried")

    @bp.post("/dead/<int:job_id>/discard")
    async def discard(job_id: int) -> Response:
        form = await request.form
        reason = str(form.get("reason", ""))
        return await _change(lambda op: operations.discard(op, job_id, reason), "discarded")

    @bp.post("/dead/retry-group")
    async def retry_group() -> Response:
        form = await request.form
        bot, error = form.get("bot") or None, str(form.get("error", ""))
        return await _change(lambda op: operations.retry_group(op, bot, error), "retried-group")

    @bp.post("/callbacks/cancel")
    async def cancel() -> Response:
        form = await request.form
        key = str(form.get("key", ""))
        return await _change(lambda op: operations.cancel_callback(op, key), "cancelled")

    @bp.post("/flows/revert")
    async def revert() -> Response:
        form = await request.form
        key, force = str(form.get("key", "")), form.get("force") == "1"
        return await _change(lambda op: operations.revert_flow(op, key, force=force),
                             "reverted")

    @bp.post("/approvals/<approval_id>/approve")
    async def approve(approval_id: str) -> Response:
        return await _decide(approval_id, "approved")

    @bp.post("/approvals/<approval_id>/reject")
    async def reject(approval_id: str) -> Response:
        return await _decide(approval_id, "rejected")

    # helpers

    async def _decide(approval_id: str, decision: ApprovalDecision) -> Response:
        form = await request.form
        back = _back(form) if form.get("back") else f"{PREFIX}/approvals"
        operator: Operator = g.operator
        if not operator.can_approve:
            return await _error(403, _not_an_approver(operator), back=back)
        reason = " ".join(str(form.get("reason", "")).split())
        if len(reason) > REASON_LIMIT:
            return await _error(400, f"the reason is longer than {REASON_LIMIT} characters",
                                back=back)
        try:
            verdict = await desk.decide(approval_id, decision, by=f"console:{operator.name}",
                                        reason=reason)
        except ApprovalError:
            return await _error(404, f"agentkit has no approval {approval_id!r}.", back=back)
        if not verdict.decided:
            return await _error(409, f"Nothing was done: {verdict.explain()}.", back=back)
        log.info("console.approval_decided", approval=approval_id, decision=decision,
                 by=operator.name)
        return _see(_with_query(back, note=decision))

    async def _change(act: Callable[[Operator], Awaitable[Any]], note: str) -> Response:
        form = await request.form
        try:
            await act(g.operator)
        except OperationError as exc:
            return await _error(exc.status, str(exc), back=_back(form))
        return _see(_with_query(_back(form), note=note))

    async def _health() -> Health:
        return await read_health(store, calls_daily_max=config.calls_daily_max)

    async def _live(partial: str, *, top: str | None = None, **values: Any) -> Response:
        if request.args.get("fragment") == "1":
            return await _fragment(partial, **values)
        refresh = _with_query(request.full_path.rstrip("?"), fragment="1")
        note = _NOTES.get(request.args.get("note", ""))
        return await _page("page.html", status=200, partial=partial, top=top, refresh=refresh,
                           note=note, **values)

    async def _fragment(partial: str, **values: Any) -> Response:
        body = await render_template(f"console/{partial}", **_common(), **values)
        return Response(body, status=200, content_type="text/html; charset=utf-8")

    async def _page(template: str, *, status: int, **values: Any) -> Response:
        body = await render_template(f"console/{template}", **_common(),
                                     pending=await _pending_count(), **values)
        return Response(body, status=status, content_type="text/html; charset=utf-8")

    async def _error(status: int, message: str, *, back: str | None = None) -> Response:
        return await _page("error.html", status=status, message=message,
                           back=back or f"{PREFIX}/calls")

    async def _pending_count() -> str:
        """How many approvals wait, for the navigation ("" when none, or unreadable)."""
        if g.get("operator") is None:
            return ""
        try:
            count = len(await desk.pending(limit=_PENDING_SHOWN + 1))
        except StoreError:
            return ""
        if not count:
            return ""
        return f"{_PENDING_SHOWN}+" if count > _PENDING_SHOWN else str(count)

    def _common() -> dict[str, Any]:
        operator: Operator | None = g.get("operator")
        return {"operator": operator, "csrf": operator.csrf if operator else "",
                "prefix": PREFIX, "here": _page_path(),
                "endpoint": request.endpoint or "", "fmt_time": _fmt_time}

    return bp


def _approval_item(approval: Approval) -> dict[str, Any]:
    """An approval as its page shows it: the masked facts, the action as the heading."""
    rows = facts(approval)
    diff = approval.what.get("diff")
    return {"approval": approval, "title": rows[0][1],
            "facts": [(label, text) for label, text in rows[1:] if label not in ("Bot", "Call")],
            "diff": str(diff) if diff else None}


def _not_an_approver(operator: Operator) -> str:
    if operator.shared:
        return ("You signed in with the shared token, whose name proves nothing: it never "
                "decides approvals. Sign in with your own token of role approver (agentkit "
                "console add-user NAME --role approver).")
    return (f"Your role is {operator.role}: only an approver decides approvals. Ask one, "
            "or have your role changed in the console's users file.")


def _see(location: str) -> Response:
    """303 See Other: after a form, the browser fetches ``location`` with GET."""
    return Response("", status=303, headers={"Location": location})


def _same_origin() -> bool:
    """A browser says where a form came from; a sign-in posted from another site is refused."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    # The host only: behind a TLS proxy that is not trusted, the scheme seen here differs.
    return urlsplit(origin).netloc == request.host


def _next_page(value: Any) -> str:
    """Only a console page of this site: never an open redirect."""
    text = str(value or "")
    if text.startswith(PREFIX + "/") and "\\" not in text and ".." not in text \
            and not text.startswith(PREFIX + "/login"):
        return text
    return f"{PREFIX}/calls"


def _page_path() -> str:
    """This page's path and query, without ``fragment``: where a change made here returns,
    even from a live part fetched as a fragment."""
    kept = [(k, v) for k, v in request.args.items(multi=True) if k not in ("fragment", "note")]
    return request.path + ("?" + urlencode(kept) if kept else "")


def _back(form: MultiDict[str, Any]) -> str:
    return _next_page(form.get("back"))


def _with_query(path: str, **values: str) -> str:
    """``path`` with ``values`` set in its query; a note shown once is not carried on."""
    base, _, query = path.partition("?")
    kept = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True)
            if k not in values and k != "note"]
    return base + "?" + urlencode([*kept, *values.items()])


def _cursor_text(started_at: datetime, call_id: str) -> str:
    raw = f"{started_at.isoformat()}|{call_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _cursor(text: str | None) -> CallCursor | None:
    if not text:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        at, call_id = raw.split("|", 1)
        return CallCursor(datetime.fromisoformat(at), call_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise OperationError("the page cursor is not one the console made: start from the first "
                         "page", status=400) from None


def _fmt_time(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S") if at is not None else ""

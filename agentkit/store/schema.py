"""The store's schema, as numbered migrations for each engine.

A migration is applied once, in order, under a lock every process takes before
it looks at the version (SQLite: an exclusive transaction; PostgreSQL: an
advisory lock), so several processes starting at once migrate exactly once.
Add a migration by appending to both lists; never edit one that has shipped.
"""

from __future__ import annotations

from agentkit.store.base import DEAD_ERROR_CHARS, JOIN_TIMER_PREFIX

# What migration 10 built indexes on: the queries must use these same expressions
# for the indexes to serve them, and a shipped migration never changes, so neither do they.

# The characters Python's str.strip() takes off (str.isspace()), as code points.
_SPACES = (0x9, 0xA, 0xB, 0xC, 0xD, 0x1C, 0x1D, 0x1E, 0x1F, 0x20, 0x85, 0xA0, 0x1680,
           *range(0x2000, 0x200B), 0x2028, 0x2029, 0x202F, 0x205F, 0x3000)
_SQLITE_TRIMMED = f"trim(coalesce(last_error, ''), char({', '.join(map(str, _SPACES))}))"
# ``dead_error(last_error)`` in SQL, over a jobs row: the group of a dead letter.
SQLITE_DEAD_ERROR = (
    f"substr({_SQLITE_TRIMMED}, 1, "
    f"min(instr({_SQLITE_TRIMMED} || char(10), char(10)) - 1, {DEAD_ERROR_CHARS}))"
)
POSTGRES_DEAD_ERROR = (
    "left(split_part(btrim(coalesce(last_error, ''), E'"
    + "".join(f"\\u{c:04x}" for c in _SPACES)
    + f"'), E'\\n', 1), {DEAD_ERROR_CHARS})"
)
# An action's outcome word (``detail.outcome``): the call list's outcome filters read it,
# and its index gives the planner the statistics to tell a rare outcome from a common one.
SQLITE_OUTCOME = "json_extract(detail, '$.outcome')"
POSTGRES_OUTCOME = "detail ->> 'outcome'"
# A join's timer task still pending (job_counts and health leave these out of the queue).
JOIN_TIMER = (f"state = 'pending' AND kind = 'task' "
              f"AND substr(name, 1, {len(JOIN_TIMER_PREFIX)}) = '{JOIN_TIMER_PREFIX}'")
# The events whose data names the call's numbers and direction (``data.from``...).
PARTY_TYPES = ("call.initiated", "call.answered", "call.completed", "voicemail.received")
_PARTY_TYPES = "(" + ", ".join(f"'{t}'" for t in PARTY_TYPES) + ")"
# The actions that call someone back (a day's report counts them by outcome); migration
# 13's partial index is on this term, so a query must say it the same way to use it.
IS_CALLBACK = "kind IN ('callback', 'escalation')"


def _sqlite_first_in_data(field: str) -> str:
    """The first ``data.<field>`` a call's events say, in the order they were stored."""
    value = f"json_extract(CAST(e.body AS TEXT), '$.data.{field}')"
    return (f"(SELECT {value} FROM events e WHERE e.call_id = calls.call_id "
            f"AND e.type IN {_PARTY_TYPES} AND json_valid(CAST(e.body AS TEXT)) "
            f"AND {value} IS NOT NULL ORDER BY e.seq LIMIT 1)")


SQLITE_MIGRATIONS: list[str] = [
    # 1: events, jobs, bot runs, the action log
    """
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        type TEXT NOT NULL,
        created_at REAL NOT NULL,
        received_at REAL NOT NULL,
        call_id TEXT,
        routable INTEGER NOT NULL,
        body BLOB NOT NULL
    );
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        event_id TEXT NOT NULL REFERENCES events(id),
        seq INTEGER NOT NULL,
        call_id TEXT,
        bot TEXT,
        name TEXT NOT NULL DEFAULT '',
        payload TEXT NOT NULL DEFAULT '{}',
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL,
        run_at REAL NOT NULL,
        lease_owner TEXT,
        lease_expires_at REAL,
        last_error TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE UNIQUE INDEX jobs_once ON jobs (event_id, kind, COALESCE(bot, ''), name);
    CREATE INDEX jobs_due ON jobs (state, run_at);
    CREATE INDEX jobs_open_by_call ON jobs (call_id, seq) WHERE state IN ('pending', 'running');
    CREATE TABLE bot_runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id INTEGER NOT NULL,
        event_id TEXT NOT NULL,
        bot TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        started_at REAL NOT NULL,
        finished_at REAL NOT NULL,
        outcome TEXT NOT NULL,
        error TEXT,
        prompt_tokens INTEGER NOT NULL DEFAULT 0,
        completion_tokens INTEGER NOT NULL DEFAULT 0,
        cost_usd REAL NOT NULL DEFAULT 0
    );
    CREATE INDEX bot_runs_by_event ON bot_runs (event_id);
    CREATE TABLE actions (
        key TEXT PRIMARY KEY,
        event_id TEXT NOT NULL,
        bot TEXT NOT NULL,
        kind TEXT NOT NULL,
        state TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '{}',
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX actions_by_event ON actions (event_id);
    """,
    # 2: the model answer cache, joins of a call's events, calls agentkit placed
    """
    CREATE TABLE llm_cache (
        key TEXT PRIMARY KEY,
        model TEXT NOT NULL,
        answer TEXT NOT NULL,
        prompt_tokens INTEGER NOT NULL,
        completion_tokens INTEGER NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE joins (
        key TEXT PRIMARY KEY,
        events TEXT NOT NULL DEFAULT '{}',
        fired INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE placed_calls (
        call_id TEXT PRIMARY KEY,
        action_key TEXT NOT NULL,
        number TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX placed_calls_by_number ON placed_calls (number, created_at);
    """,
    # 3: which job fired a join (so its retry may fire it again), rotation counters
    """
    ALTER TABLE joins ADD COLUMN fired_by TEXT;
    CREATE TABLE counters (
        name TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    );
    """,
    # 4: a lease reads due jobs of one kind in run_at order from an index of its own
    """
    CREATE INDEX jobs_routes_due ON jobs (run_at, id) WHERE state = 'pending' AND kind = 'route';
    CREATE INDEX jobs_work_due ON jobs (run_at, id) WHERE state = 'pending' AND kind <> 'route';
    """,
    # 5: nothing; PostgreSQL adds the shared rate limits here (a SQLite store runs in one
    # process, so its client keeps the limits in memory)
    """
    SELECT 1;
    """,
    # 6: a placed callback finds its call's call.completed if it came before the record
    """
    CREATE INDEX events_completed_by_call ON events (call_id) WHERE type = 'call.completed';
    """,
    # 7: dialling: each call claimed before it is placed (the caps count claims), the
    # do-not-call list, deployment switches (calls paused), one open callback per number
    # (kept once it reached the caller, for the requests made before it did)
    """
    CREATE TABLE dial_claims (
        action_key TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        number TEXT NOT NULL,
        bot TEXT NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (action_key, attempt)
    );
    CREATE INDEX dial_claims_by_number ON dial_claims (number, created_at);
    CREATE INDEX dial_claims_by_time ON dial_claims (created_at);
    CREATE TABLE do_not_call (
        number TEXT PRIMARY KEY,
        reason TEXT NOT NULL DEFAULT '',
        added_by TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL
    );
    CREATE TABLE switches (
        name TEXT PRIMARY KEY,
        value INTEGER NOT NULL,
        changed_by TEXT NOT NULL DEFAULT '',
        updated_at REAL NOT NULL
    );
    CREATE TABLE open_callbacks (
        number TEXT NOT NULL,
        kind TEXT NOT NULL,
        action_key TEXT NOT NULL,
        created_at REAL NOT NULL,
        reached_at REAL,
        PRIMARY KEY (number, kind)
    );
    """,
    # retention and erasure
    # 8: retention: old rows found by age, the action log's rows masked once, and
    # claims that one process of a deployment wins (the daily purge, once-only alerts)
    """
    ALTER TABLE actions ADD COLUMN masked INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX actions_to_mask ON actions (updated_at, key) WHERE masked = 0;
    CREATE INDEX llm_cache_by_age ON llm_cache (created_at);
    CREATE INDEX joins_by_age ON joins (updated_at);
    CREATE TABLE once_claims (
        name TEXT PRIMARY KEY,
        claimed_at REAL NOT NULL
    );
    """,
    # 9: a call's events found by call id (``ctx.history.actions()``: this call's actions)
    """
    CREATE INDEX events_by_call ON events (call_id) WHERE call_id IS NOT NULL;
    """,
    # 10: the operator console's reads: one row per call (newest first, by number), how
    # often an event came again, actions found by call, the jobs a page of calls had, dead
    # letters grouped by error, the health figures from indexes, and model answers by call
    f"""
    CREATE TABLE calls (
        call_id TEXT PRIMARY KEY,
        started_at REAL NOT NULL,
        last_at REAL NOT NULL,
        from_number TEXT,
        to_number TEXT,
        direction TEXT,
        events INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX calls_newest ON calls (started_at, call_id);
    CREATE INDEX calls_by_from ON calls (from_number, started_at, call_id);
    CREATE INDEX calls_by_to ON calls (to_number, started_at, call_id);
    INSERT INTO calls (call_id, started_at, last_at, events)
        SELECT call_id, MIN(created_at), MAX(received_at), COUNT(*) FROM events
        WHERE call_id IS NOT NULL GROUP BY call_id;
    UPDATE calls SET
        from_number = {_sqlite_first_in_data("from")},
        to_number = {_sqlite_first_in_data("to")},
        direction = {_sqlite_first_in_data("direction")};
    ALTER TABLE events ADD COLUMN duplicates INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE actions ADD COLUMN call_id TEXT;
    UPDATE actions SET call_id = (SELECT e.call_id FROM events e WHERE e.id = actions.event_id);
    CREATE INDEX actions_by_call ON actions (call_id, created_at);
    CREATE INDEX actions_by_kind ON actions (kind, call_id);
    CREATE INDEX actions_by_outcome ON actions ({SQLITE_OUTCOME}, call_id);
    CREATE INDEX actions_open ON actions (created_at, key) WHERE state = 'started';
    CREATE INDEX jobs_by_call ON jobs (call_id, bot);
    CREATE INDEX jobs_by_bot ON jobs (bot, call_id) WHERE bot IS NOT NULL;
    CREATE INDEX jobs_dead ON jobs (bot, ({SQLITE_DEAD_ERROR}), updated_at) WHERE state = 'dead';
    CREATE INDEX jobs_done_by_time ON jobs (updated_at) WHERE state = 'done';
    CREATE INDEX jobs_join_timers ON jobs (run_at) WHERE {JOIN_TIMER};
    CREATE TABLE model_answers (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id TEXT NOT NULL,
        call_id TEXT,
        bot TEXT NOT NULL,
        task TEXT NOT NULL,
        model TEXT NOT NULL,
        prompt_tokens INTEGER NOT NULL DEFAULT 0,
        completion_tokens INTEGER NOT NULL DEFAULT 0,
        cost_usd REAL NOT NULL DEFAULT 0,
        cached INTEGER NOT NULL DEFAULT 0,
        answer TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX model_answers_by_call ON model_answers (call_id, created_at);
    CREATE INDEX model_answers_by_age ON model_answers (created_at, cost_usd);
    """,
    # 11: approvals: an action waiting for a person, one per action key, decided once;
    # pending ones listed oldest first and expired by deadline, decided ones purged by age
    """
    CREATE TABLE approvals (
        id TEXT PRIMARY KEY,
        action_key TEXT NOT NULL UNIQUE,
        event_id TEXT NOT NULL,
        call_id TEXT,
        bot TEXT NOT NULL,
        kind TEXT NOT NULL,
        what TEXT NOT NULL,
        why TEXT NOT NULL,
        deadline REAL NOT NULL,
        state TEXT NOT NULL,
        decided_by TEXT,
        decided_at REAL,
        reason TEXT,
        message TEXT NOT NULL DEFAULT '{}',
        created_at REAL NOT NULL
    );
    CREATE INDEX approvals_pending ON approvals (created_at, id) WHERE state = 'pending';
    CREATE INDEX approvals_by_deadline ON approvals (deadline) WHERE state = 'pending';
    CREATE INDEX approvals_decided ON approvals (decided_at) WHERE state <> 'pending';
    """,
    # 12: replays: the API reads agentkit made, one per path (its query included), found by
    # call (erasure) and by age (retention); calls are streamed oldest first from calls_newest
    """
    CREATE TABLE api_reads (
        path TEXT PRIMARY KEY,
        call_id TEXT,
        body BLOB NOT NULL,
        read_at REAL NOT NULL
    );
    CREATE INDEX api_reads_by_call ON api_reads (call_id);
    CREATE INDEX api_reads_by_age ON api_reads (read_at);
    """,
    # 13: a day's figures (``day_figures``): calls and voicemails by type and time, the
    # callbacks and escalations that ended in the day, and the calls placed in it
    f"""
    CREATE INDEX events_by_type_time ON events (type, created_at);
    CREATE INDEX actions_callbacks_by_time ON actions (kind, updated_at)
        WHERE {IS_CALLBACK};
    CREATE INDEX placed_calls_by_time ON placed_calls (created_at);
    """,
]

POSTGRES_MIGRATIONS: list[str] = [
    """
    CREATE TABLE events (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        type TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        received_at TIMESTAMPTZ NOT NULL,
        call_id TEXT,
        routable BOOLEAN NOT NULL,
        body BYTEA NOT NULL
    );
    CREATE TABLE jobs (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        kind TEXT NOT NULL,
        event_id TEXT NOT NULL REFERENCES events(id),
        seq BIGINT NOT NULL,
        call_id TEXT,
        bot TEXT,
        name TEXT NOT NULL DEFAULT '',
        payload JSONB NOT NULL DEFAULT '{}',
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL,
        run_at TIMESTAMPTZ NOT NULL,
        lease_owner TEXT,
        lease_expires_at TIMESTAMPTZ,
        last_error TEXT,
        created_at TIMESTAMPTZ NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL
    );
    CREATE UNIQUE INDEX jobs_once ON jobs (event_id, kind, COALESCE(bot, ''), name);
    CREATE INDEX jobs_due ON jobs (state, run_at);
    CREATE INDEX jobs_open_by_call ON jobs (call_id, seq) WHERE state IN ('pending', 'running');
    CREATE TABLE bot_runs (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        job_id BIGINT NOT NULL,
        event_id TEXT NOT NULL,
        bot TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        started_at TIMESTAMPTZ NOT NULL,
        finished_at TIMESTAMPTZ NOT NULL,
        outcome TEXT NOT NULL,
        error TEXT,
        prompt_tokens INTEGER NOT NULL DEFAULT 0,
        completion_tokens INTEGER NOT NULL DEFAULT 0,
        cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0
    );
    CREATE INDEX bot_runs_by_event ON bot_runs (event_id);
    CREATE TABLE actions (
        key TEXT PRIMARY KEY,
        event_id TEXT NOT NULL,
        bot TEXT NOT NULL,
        kind TEXT NOT NULL,
        state TEXT NOT NULL,
        detail JSONB NOT NULL DEFAULT '{}',
        created_at TIMESTAMPTZ NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL
    );
    CREATE INDEX actions_by_event ON actions (event_id);
    """,
    """
    CREATE TABLE llm_cache (
        key TEXT PRIMARY KEY,
        model TEXT NOT NULL,
        answer TEXT NOT NULL,
        prompt_tokens INTEGER NOT NULL,
        completion_tokens INTEGER NOT NULL,
        created_at TIMESTAMPTZ NOT NULL
    );
    CREATE TABLE joins (
        key TEXT PRIMARY KEY,
        events JSONB NOT NULL DEFAULT '{}',
        fired BOOLEAN NOT NULL DEFAULT false,
        created_at TIMESTAMPTZ NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL
    );
    CREATE TABLE placed_calls (
        call_id TEXT PRIMARY KEY,
        action_key TEXT NOT NULL,
        number TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        created_at TIMESTAMPTZ NOT NULL
    );
    CREATE INDEX placed_calls_by_number ON placed_calls (number, created_at);
    """,
    """
    ALTER TABLE joins ADD COLUMN fired_by TEXT;
    CREATE TABLE counters (
        name TEXT PRIMARY KEY,
        value BIGINT NOT NULL
    );
    """,
    # 4: a lease reads due jobs of one kind in run_at order from an index of its own
    """
    CREATE INDEX jobs_routes_due ON jobs (run_at, id) WHERE state = 'pending' AND kind = 'route';
    CREATE INDEX jobs_work_due ON jobs (run_at, id) WHERE state = 'pending' AND kind <> 'route';
    """,
    # 5: the API rate limits every process of a deployment shares (store/ratelimit.py): a
    # token bucket per API key and that key's call-creation slots, named by a hash of the key
    """
    CREATE TABLE rate_buckets (
        name TEXT PRIMARY KEY,
        tokens DOUBLE PRECISION NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL,
        paused_until TIMESTAMPTZ NOT NULL
    );
    CREATE TABLE call_slots (
        name TEXT NOT NULL,
        slot INTEGER NOT NULL,
        holder TEXT,
        expires_at TIMESTAMPTZ,
        PRIMARY KEY (name, slot)
    );
    """,
    """
    CREATE INDEX events_completed_by_call ON events (call_id) WHERE type = 'call.completed';
    """,
    """
    CREATE TABLE dial_claims (
        action_key TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        number TEXT NOT NULL,
        bot TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (action_key, attempt)
    );
    CREATE INDEX dial_claims_by_number ON dial_claims (number, created_at);
    CREATE INDEX dial_claims_by_time ON dial_claims (created_at);
    CREATE TABLE do_not_call (
        number TEXT PRIMARY KEY,
        reason TEXT NOT NULL DEFAULT '',
        added_by TEXT NOT NULL DEFAULT '',
        created_at TIMESTAMPTZ NOT NULL
    );
    CREATE TABLE switches (
        name TEXT PRIMARY KEY,
        value BOOLEAN NOT NULL,
        changed_by TEXT NOT NULL DEFAULT '',
        updated_at TIMESTAMPTZ NOT NULL
    );
    CREATE TABLE open_callbacks (
        number TEXT NOT NULL,
        kind TEXT NOT NULL,
        action_key TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        reached_at TIMESTAMPTZ,
        PRIMARY KEY (number, kind)
    );
    """,
    # retention and erasure
    """
    ALTER TABLE actions ADD COLUMN masked BOOLEAN NOT NULL DEFAULT false;
    CREATE INDEX actions_to_mask ON actions (updated_at, key) WHERE NOT masked;
    CREATE INDEX llm_cache_by_age ON llm_cache (created_at);
    CREATE INDEX joins_by_age ON joins (updated_at);
    CREATE TABLE once_claims (
        name TEXT PRIMARY KEY,
        claimed_at TIMESTAMPTZ NOT NULL
    );
    """,
    # a call's events found by call id
    """
    CREATE INDEX events_by_call ON events (call_id) WHERE call_id IS NOT NULL;
    """,
    # 10: the operator console's reads (see SQLite's)
    f"""
    CREATE TABLE calls (
        call_id TEXT PRIMARY KEY,
        started_at TIMESTAMPTZ NOT NULL,
        last_at TIMESTAMPTZ NOT NULL,
        from_number TEXT,
        to_number TEXT,
        direction TEXT,
        events INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX calls_newest ON calls (started_at, call_id);
    CREATE INDEX calls_by_from ON calls (from_number, started_at, call_id);
    CREATE INDEX calls_by_to ON calls (to_number, started_at, call_id);
    INSERT INTO calls (call_id, started_at, last_at, from_number, to_number, direction, events)
        SELECT call_id, min(created_at), max(received_at),
               (array_agg(data ->> 'from' ORDER BY seq)
                    FILTER (WHERE data ->> 'from' IS NOT NULL))[1],
               (array_agg(data ->> 'to' ORDER BY seq)
                    FILTER (WHERE data ->> 'to' IS NOT NULL))[1],
               (array_agg(data ->> 'direction' ORDER BY seq)
                    FILTER (WHERE data ->> 'direction' IS NOT NULL))[1],
               count(*)
        FROM (SELECT call_id, seq, created_at, received_at,
                     CASE WHEN type IN {_PARTY_TYPES}
                          AND strpos(convert_from(body, 'UTF8'), '\\u0000') = 0
                     THEN convert_from(body, 'UTF8')::json -> 'data' END AS data
              FROM events WHERE call_id IS NOT NULL) e
        GROUP BY call_id;
    ALTER TABLE events ADD COLUMN duplicates INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE actions ADD COLUMN call_id TEXT;
    UPDATE actions a SET call_id = e.call_id FROM events e
        WHERE e.id = a.event_id AND e.call_id IS NOT NULL;
    CREATE INDEX actions_by_call ON actions (call_id, created_at);
    CREATE INDEX actions_by_kind ON actions (kind, call_id);
    CREATE INDEX actions_by_outcome ON actions (({POSTGRES_OUTCOME}), call_id);
    -- kind, state and outcome go together: without this the planner takes them as
    -- independent, expects a handful of "not reached" callbacks and sorts thousands.
    CREATE STATISTICS actions_outcome (mcv) ON kind, state, ({POSTGRES_OUTCOME}) FROM actions;
    CREATE INDEX actions_open ON actions (created_at, key) WHERE state = 'started';
    CREATE INDEX jobs_by_call ON jobs (call_id, bot);
    -- The bot filter of a bot with few calls; route jobs (no bot) never write to it.
    CREATE INDEX jobs_by_bot ON jobs (bot, call_id) WHERE bot IS NOT NULL;
    CREATE INDEX jobs_dead ON jobs (bot, ({POSTGRES_DEAD_ERROR}), updated_at)
        WHERE state = 'dead';
    CREATE INDEX jobs_done_by_time ON jobs (updated_at) WHERE state = 'done';
    CREATE INDEX jobs_join_timers ON jobs (run_at) WHERE {JOIN_TIMER};
    CREATE TABLE model_answers (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        event_id TEXT NOT NULL,
        call_id TEXT,
        bot TEXT NOT NULL,
        task TEXT NOT NULL,
        model TEXT NOT NULL,
        prompt_tokens INTEGER NOT NULL DEFAULT 0,
        completion_tokens INTEGER NOT NULL DEFAULT 0,
        cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
        cached BOOLEAN NOT NULL DEFAULT false,
        answer TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL
    );
    CREATE INDEX model_answers_by_call ON model_answers (call_id, created_at);
    CREATE INDEX model_answers_by_age ON model_answers (created_at) INCLUDE (cost_usd);
    """,
    # 11: approvals (see SQLite's)
    """
    CREATE TABLE approvals (
        id TEXT PRIMARY KEY,
        action_key TEXT NOT NULL UNIQUE,
        event_id TEXT NOT NULL,
        call_id TEXT,
        bot TEXT NOT NULL,
        kind TEXT NOT NULL,
        what JSONB NOT NULL,
        why JSONB NOT NULL,
        deadline TIMESTAMPTZ NOT NULL,
        state TEXT NOT NULL,
        decided_by TEXT,
        decided_at TIMESTAMPTZ,
        reason TEXT,
        message JSONB NOT NULL DEFAULT '{}',
        created_at TIMESTAMPTZ NOT NULL
    );
    CREATE INDEX approvals_pending ON approvals (created_at, id) WHERE state = 'pending';
    CREATE INDEX approvals_by_deadline ON approvals (deadline) WHERE state = 'pending';
    CREATE INDEX approvals_decided ON approvals (decided_at) WHERE state <> 'pending';
    """,
    # 12: replays' API reads (see SQLite's)
    """
    CREATE TABLE api_reads (
        path TEXT PRIMARY KEY,
        call_id TEXT,
        body BYTEA NOT NULL,
        read_at TIMESTAMPTZ NOT NULL
    );
    CREATE INDEX api_reads_by_call ON api_reads (call_id);
    CREATE INDEX api_reads_by_age ON api_reads (read_at);
    """,
    # 13: a day's figures (see SQLite's)
    f"""
    CREATE INDEX events_by_type_time ON events (type, created_at);
    CREATE INDEX actions_callbacks_by_time ON actions (kind, updated_at)
        WHERE {IS_CALLBACK};
    CREATE INDEX placed_calls_by_time ON placed_calls (created_at);
    """,
]

# The lease rule both engines share, on jobs aliased ``j``: a bot job waits while
# an earlier event of its call has an open route job or an open job of the same
# bot, so a bot sees one call's events in arrival order.
NOT_BLOCKED = """
    NOT (j.kind = 'bot' AND j.call_id IS NOT NULL AND EXISTS (
        SELECT 1 FROM jobs e
        WHERE e.call_id = j.call_id AND e.seq < j.seq AND e.state IN ('pending', 'running')
          AND (e.kind = 'route' OR (e.kind = 'bot' AND e.bot = j.bot))))
"""

# Which jobs a lease of each kind takes; the terms match the partial indexes above.
LEASE_KINDS = {"all": "TRUE", "route": "j.kind = 'route'", "work": "j.kind <> 'route'"}

CURRENT_VERSION = len(SQLITE_MIGRATIONS)
assert len(POSTGRES_MIGRATIONS) == CURRENT_VERSION, "every migration needs both engines"

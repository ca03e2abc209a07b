/**
 * Numbered schema migrations. Append only: never edit a migration that has shipped; add the
 * next number. `PRAGMA user_version` records the last one applied.
 */
export const MIGRATIONS: ReadonlyArray<{ version: number; sql: string }> = [
  {
    version: 1,
    sql: `
      -- instance_id: a random id of this history, on every container we create, so two
      -- Yardmasters (or two data dirs) sharing a node never mistake each other's run 1.
      CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
      );
      CREATE TABLE runs (
        id            INTEGER PRIMARY KEY,
        workflow_name TEXT    NOT NULL,
        workflow_file TEXT    NOT NULL,
        farm_file     TEXT,
        state         TEXT    NOT NULL CHECK (state IN ('queued','running','succeeded','failed','cancelled')),
        created_at    INTEGER NOT NULL,
        started_at    INTEGER,
        finished_at   INTEGER
      );
      CREATE TABLE jobs (
        id          INTEGER PRIMARY KEY,
        run_id      INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        job_key     TEXT    NOT NULL,
        name        TEXT    NOT NULL,
        state       TEXT    NOT NULL CHECK (state IN ('pending','running','succeeded','failed','skipped','cancelled')),
        needs_json  TEXT    NOT NULL,
        runs_on_json TEXT   NOT NULL,
        node_name   TEXT,
        image       TEXT,
        exit_code   INTEGER,
        reason      TEXT,
        started_at  INTEGER,
        finished_at INTEGER,
        UNIQUE (run_id, job_key)
      );
      CREATE TABLE steps (
        id          INTEGER PRIMARY KEY,
        job_id      INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        idx         INTEGER NOT NULL,
        name        TEXT    NOT NULL,
        state       TEXT    NOT NULL CHECK (state IN ('pending','running','succeeded','failed','skipped','cancelled')),
        exit_code   INTEGER,
        started_at  INTEGER,
        finished_at INTEGER,
        UNIQUE (job_id, idx)
      );
      CREATE TABLE log_lines (
        seq      INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id   INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        job_id   INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        step_idx INTEGER,
        stream   TEXT    NOT NULL CHECK (stream IN ('stdout','stderr','system')),
        text     TEXT    NOT NULL,
        at       INTEGER NOT NULL
      );
      CREATE INDEX log_lines_by_run ON log_lines (run_id, seq);
      CREATE INDEX runs_by_created ON runs (created_at DESC);
    `,
  },
  {
    version: 2,
    sql: `
      -- Job outputs (for needs.<job>.outputs and reports) and step conclusions (continue-on-error
      -- makes a failed outcome a successful conclusion).
      ALTER TABLE jobs ADD COLUMN outputs_json TEXT NOT NULL DEFAULT '{}';
      ALTER TABLE steps ADD COLUMN conclusion TEXT;
    `,
  },
  {
    version: 3,
    sql: `
      -- Concurrency groups across processes: at most one running and one pending holder per group.
      -- A run is asked to stop by setting cancel_requested (another run's cancel-in-progress, a newer
      -- pending run, later the UI); the run polls it.
      ALTER TABLE runs ADD COLUMN cancel_requested TEXT;
      -- AUTOINCREMENT: a claim id is never reused, so a waiter whose claim was removed cannot
      -- mistake a newer claim for its own.
      CREATE TABLE concurrency_claims (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        group_key  TEXT    NOT NULL,
        run_id     INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        job_id     INTEGER REFERENCES jobs(id) ON DELETE CASCADE,
        state      TEXT    NOT NULL CHECK (state IN ('pending','running')),
        host       TEXT    NOT NULL,
        pid        INTEGER NOT NULL,
        claimed_at INTEGER NOT NULL,
        -- Set on a running holder by a newer one with cancel-in-progress; the holder polls it.
        cancel_requested TEXT
      );
      CREATE INDEX concurrency_by_group ON concurrency_claims (group_key, state);
    `,
  },
  {
    version: 4,
    sql: `
      -- Node health (core/farm/health/health-monitor): samples every few seconds, kept an hour; rolled up
      -- by minute (kept two days) and by hour (kept 90 days), so charts over weeks stay fast.
      -- Metrics are null when not measured (an unreachable node, a shell node's engine).
      CREATE TABLE node_samples (
        node              TEXT    NOT NULL,
        at                INTEGER NOT NULL,
        state             TEXT    NOT NULL CHECK (state IN ('online','degraded','unreachable','offline')),
        load1             REAL,
        cpus              INTEGER,
        cpu_pct           REAL,
        mem_used_pct      REAL,
        root_free         INTEGER,
        data_free         INTEGER,
        containers_ours   INTEGER,
        containers_others INTEGER,
        engine_ms         REAL,
        rtt_ms            REAL,
        skew_ms           REAL
      );
      CREATE INDEX node_samples_by_node ON node_samples (node, at);
      -- resolution: bucket width in ms (60000, 3600000). Averages over the samples that had the
      -- metric; reachable: samples that answered (the weight for coarser rollups).
      CREATE TABLE node_rollups (
        node              TEXT    NOT NULL,
        resolution        INTEGER NOT NULL,
        bucket            INTEGER NOT NULL,
        samples           INTEGER NOT NULL,
        reachable         INTEGER NOT NULL,
        load1             REAL,
        load1_max         REAL,
        cpu_pct           REAL,
        cpu_pct_max       REAL,
        mem_used_pct      REAL,
        mem_used_pct_max  REAL,
        root_free_min     INTEGER,
        data_free_min     INTEGER,
        containers_ours   REAL,
        containers_others REAL,
        engine_ms         REAL,
        engine_ms_max     REAL,
        rtt_ms            REAL,
        skew_ms           REAL,
        PRIMARY KEY (node, resolution, bucket)
      );
      -- Every change of a node's health or admin state, for the history and the UI.
      CREATE TABLE node_events (
        id         INTEGER PRIMARY KEY,
        node       TEXT    NOT NULL,
        at         INTEGER NOT NULL,
        kind       TEXT    NOT NULL CHECK (kind IN ('health','admin')),
        from_state TEXT    NOT NULL,
        to_state   TEXT    NOT NULL,
        reason     TEXT
      );
      CREATE INDEX node_events_by_node ON node_events (node, at);
      -- Admin states (drain, cordon, quarantine) by node name; a node without a row is active.
      CREATE TABLE node_admin (
        node   TEXT    PRIMARY KEY,
        state  TEXT    NOT NULL CHECK (state IN ('draining','cordoned','quarantined')),
        reason TEXT,
        since  INTEGER NOT NULL
      );
    `,
  },
  {
    version: 5,
    sql: `
      -- Jobs in a row that failed on a node for the node's sake (connection lost, engine error,
      -- no workspace): runs in any process count them here; at 3 the node is quarantined.
      CREATE TABLE node_infra_failures (
        node        TEXT    PRIMARY KEY,
        count       INTEGER NOT NULL,
        last_reason TEXT,
        at          INTEGER NOT NULL
      );
    `,
  },
  {
    version: 6,
    sql: `
      -- Orchestrators sharing this history (a console, a yardmaster run in a terminal): each
      -- renews its lease every few seconds (core/orchestrator/slot-claims). A slot claim lives by
      -- its holder's lease, so a node's slots are counted across every process, and the claims of
      -- a holder that died expire with it.
      CREATE TABLE orchestrators (
        id           TEXT    PRIMARY KEY,
        -- console: a long-lived orchestrator (serve, the app) that takes queued runs; run: a
        -- yardmaster run hosting one for the length of its run.
        kind         TEXT    NOT NULL DEFAULT 'run' CHECK (kind IN ('console','run')),
        host         TEXT    NOT NULL,
        pid          INTEGER NOT NULL,
        started_at   INTEGER NOT NULL,
        lease_until  INTEGER NOT NULL
      );
      -- AUTOINCREMENT: a claim id is never reused, so a released claim cannot be taken for a newer one.
      CREATE TABLE slot_claims (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        node       TEXT    NOT NULL,
        holder     TEXT    NOT NULL,
        run_id     INTEGER REFERENCES runs(id) ON DELETE CASCADE,
        job_id     INTEGER REFERENCES jobs(id) ON DELETE CASCADE,
        claimed_at INTEGER NOT NULL
      );
      CREATE INDEX slot_claims_by_node ON slot_claims (node);
      CREATE INDEX slot_claims_by_holder ON slot_claims (holder);
      -- The orchestrator that runs the run: when it dies, its unfinished jobs are marked lost.
      ALTER TABLE runs ADD COLUMN holder TEXT;
      -- The durable queue: runs triggered (from the console, the API, the CLI) and not started yet.
      -- What to run, never a secret. An orchestrator takes an entry by setting its holder; when it
      -- dies first, the entry goes back to the queue. Started entries point at their run.
      CREATE TABLE run_queue (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        workflow_file TEXT    NOT NULL,
        trigger_json  TEXT    NOT NULL,
        priority      TEXT    NOT NULL CHECK (priority IN ('hotfix','high','normal','low')),
        submitted_at  INTEGER NOT NULL,
        holder        TEXT,
        run_id        INTEGER REFERENCES runs(id) ON DELETE SET NULL,
        error         TEXT
      );
      -- A cancel asked for one job (the console's Cancel on a job); the run loop polls it.
      ALTER TABLE jobs ADD COLUMN cancel_requested TEXT;
      -- Why a job waits for a slot, and its place in its orchestrator's order of service (the
      -- scheduler's words, for yardmaster queue); cleared when it gets one.
      ALTER TABLE jobs ADD COLUMN wait_reason TEXT;
      ALTER TABLE jobs ADD COLUMN wait_position INTEGER;
      ALTER TABLE jobs ADD COLUMN wait_since INTEGER;
      ALTER TABLE jobs ADD COLUMN wait_expected_start INTEGER;
    `,
  },
  {
    version: 7,
    sql: `
      -- A job's attempts: each time it was given a node and a slot. Written before the attempt
      -- starts, ended with how it ended: a preempted or lost attempt is not the job's failure, and
      -- the job runs again in a new attempt. The job row keeps the last attempt's node and result.
      CREATE TABLE attempts (
        id          INTEGER PRIMARY KEY,
        job_id      INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        number      INTEGER NOT NULL,
        node_name   TEXT    NOT NULL,
        -- The slot claim it held (slot_claims.id); that row goes when the slot is given back.
        claim_id    INTEGER,
        holder      TEXT    NOT NULL,
        state       TEXT    NOT NULL CHECK (state IN ('running','succeeded','failed','cancelled','preempted','lost')),
        reason      TEXT,
        started_at  INTEGER NOT NULL,
        finished_at INTEGER,
        UNIQUE (job_id, number)
      );
      CREATE INDEX attempts_running ON attempts (state) WHERE state = 'running';
      -- When a running run is expected to finish, from its jobs' forecasts (null: unknown).
      ALTER TABLE runs ADD COLUMN expected_finish INTEGER;
      -- The class a run's jobs are served in (a terminal's run has no queue entry to say it).
      ALTER TABLE runs ADD COLUMN priority TEXT CHECK (priority IN ('hotfix','high','normal','low'));
      -- A waiting job's nodes by why none took it (JSON: {"lacks label gpu": 3, "busy": 2}).
      ALTER TABLE jobs ADD COLUMN wait_counts TEXT;
      -- The attempt a line came from (attempts.number of its job): a retry's lines are told from the
      -- lines of the attempt before. Null for lines about the job outside any attempt.
      ALTER TABLE log_lines ADD COLUMN attempt INTEGER;
      -- How to run a job's failing step by hand (JSON ReproRecipe: never a secret's value).
      ALTER TABLE jobs ADD COLUMN repro_json TEXT;
    `,
  },
  {
    version: 8,
    sql: `
      -- What an attempt made on its node (JobEnvironment.ref: a container id, or a shell
      -- workspace), recorded as soon as it exists.
      ALTER TABLE attempts ADD COLUMN env_ref TEXT;
      -- 1 while what the attempt made may still run or exist on its node (its removal failed: the
      -- node was lost; or its orchestrator died): stopped and removed (fenced) before the node
      -- takes new work, so one job never runs twice. 0 once it is gone.
      ALTER TABLE attempts ADD COLUMN fence INTEGER NOT NULL DEFAULT 0;
      CREATE INDEX attempts_fence ON attempts (node_name) WHERE fence = 1;
    `,
  },
  {
    version: 9,
    sql: `
      -- The farm's per-job log cap, once an attempt of the job went past it (its later output was
      -- not kept); null while nothing was dropped.
      ALTER TABLE jobs ADD COLUMN log_capped_bytes INTEGER;
    `,
  },
]

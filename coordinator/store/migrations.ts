/**
 * Versioned schema migrations, written for SQLite and rewritten for PostgreSQL by postgresDdl. Each entry
 * runs once, in order, inside a transaction; the applied version is
 * recorded so that an older coordinator refuses a newer store instead of corrupting it.
 */
export const MIGRATIONS: { version: number; description: string; sql: string }[] = [
  {
    version: 1,
    description: "sites, studies, rounds, tasks, submissions, models, ledger",
    sql: `
      CREATE TABLE sites (
        site_id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        enrolled_at INTEGER NOT NULL,
        last_contact_at INTEGER,
        agent_version TEXT NOT NULL DEFAULT ''
      );
      CREATE TABLE studies (
        study_id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        schema_json TEXT NOT NULL,
        engine TEXT NOT NULL,
        epsilon REAL NOT NULL,
        delta REAL NOT NULL,
        rounds INTEGER NOT NULL,
        min_sites INTEGER NOT NULL,
        round_deadline_seconds INTEGER NOT NULL,
        engine_config_json TEXT NOT NULL,
        state TEXT NOT NULL,
        status_message TEXT NOT NULL DEFAULT '',
        completed_rounds INTEGER NOT NULL DEFAULT 0,
        invitation_deadline_at INTEGER,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      );
      CREATE TABLE study_sites (
        study_id TEXT NOT NULL REFERENCES studies(study_id),
        site_name TEXT NOT NULL,
        position INTEGER NOT NULL,
        state TEXT NOT NULL,
        message TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (study_id, site_name)
      );
      CREATE TABLE rounds (
        study_id TEXT NOT NULL REFERENCES studies(study_id),
        round INTEGER NOT NULL,
        state TEXT NOT NULL,
        round_config_json TEXT NOT NULL,
        mechanisms_json TEXT NOT NULL,
        update_length INTEGER NOT NULL,
        model_id TEXT,
        started_at INTEGER NOT NULL,
        deadline_at INTEGER NOT NULL,
        finished_at INTEGER,
        PRIMARY KEY (study_id, round)
      );
      CREATE TABLE tasks (
        task_id TEXT PRIMARY KEY,
        study_id TEXT NOT NULL,
        round INTEGER NOT NULL,
        site_name TEXT NOT NULL,
        state TEXT NOT NULL,
        message TEXT NOT NULL DEFAULT '',
        created_at INTEGER NOT NULL,
        UNIQUE (study_id, round, site_name)
      );
      CREATE TABLE submissions (
        task_id TEXT PRIMARY KEY REFERENCES tasks(task_id),
        study_id TEXT NOT NULL,
        round INTEGER NOT NULL,
        site_name TEXT NOT NULL,
        update_blob BLOB,
        update_sha256 TEXT NOT NULL,
        epsilon REAL NOT NULL,
        delta REAL NOT NULL,
        received_at INTEGER NOT NULL
      );
      CREATE TABLE models (
        model_id TEXT PRIMARY KEY,
        study_id TEXT NOT NULL,
        round INTEGER NOT NULL,
        engine TEXT NOT NULL,
        model_blob BLOB NOT NULL,
        sha256 TEXT NOT NULL,
        created_at INTEGER NOT NULL
      );
      CREATE TABLE ledger (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        kind TEXT NOT NULL,
        study_id TEXT,
        site_name TEXT,
        round INTEGER,
        body_json TEXT NOT NULL
      );
      CREATE INDEX tasks_by_site ON tasks(site_name, state);
      CREATE INDEX submissions_by_round ON submissions(study_id, round);
      CREATE INDEX models_by_study ON models(study_id, round);
    `,
  },
  {
    version: 2,
    description: "site identities (certificate, signing key, revocation), enrolment tokens, signed submissions",
    sql: `
      ALTER TABLE sites ADD COLUMN cert_serial TEXT;
      ALTER TABLE sites ADD COLUMN cert_fingerprint TEXT;
      ALTER TABLE sites ADD COLUMN signing_public_key TEXT;
      ALTER TABLE sites ADD COLUMN revoked_at INTEGER;
      ALTER TABLE sites ADD COLUMN revoked_reason TEXT NOT NULL DEFAULT '';
      CREATE TABLE enrollment_tokens (
        token_hash TEXT PRIMARY KEY,
        site_name TEXT NOT NULL,
        issued_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        used_at INTEGER
      );
      ALTER TABLE submissions ADD COLUMN signature TEXT NOT NULL DEFAULT '';
    `,
  },
  {
    version: 3,
    description: "secure aggregation: a study's threshold, a round's session nonce",
    sql: `
      ALTER TABLE studies ADD COLUMN secure_threshold INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE rounds ADD COLUMN session_nonce TEXT;
    `,
  },
  {
    version: 4,
    description: "the privacy ledger's hash chain (one canonical entry per row) and the coordinator's ledger signing key",
    sql: `
      CREATE TABLE ledger_chain (seq INTEGER PRIMARY KEY, entry_json TEXT NOT NULL);
      CREATE TABLE secrets (name TEXT PRIMARY KEY, value BLOB NOT NULL);
    `,
  },
  {
    version: 5,
    description: "leases: which coordinator replica drives the rounds",
    sql: `
      CREATE TABLE leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, term INTEGER NOT NULL, expires_at INTEGER NOT NULL);
    `,
  },
  {
    version: 6,
    description: "why a study has its engine (the operator's choice, or the default choice's reason)",
    sql: `
      ALTER TABLE studies ADD COLUMN engine_reason TEXT NOT NULL DEFAULT '';
    `,
  },
  {
    version: 7,
    description: "durable secure-aggregation sessions: a round's phase, its running masked sum and the sites in it, and the signed messages accepted",
    sql: `
      CREATE TABLE secagg_sessions (
        study_id TEXT NOT NULL,
        round INTEGER NOT NULL,
        session_nonce TEXT NOT NULL,
        phase TEXT NOT NULL,
        summed_sites_json TEXT NOT NULL DEFAULT '[]',
        running_sum BLOB,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (study_id, round)
      );
      CREATE TABLE secagg_messages (
        study_id TEXT NOT NULL,
        round INTEGER NOT NULL,
        phase TEXT NOT NULL,
        site_name TEXT NOT NULL,
        message BLOB NOT NULL,
        received_at INTEGER NOT NULL,
        PRIMARY KEY (study_id, round, phase, site_name)
      );
    `,
  },
];

CREATE TABLE attempts (
	task_run_id TEXT NOT NULL, 
	attempt INTEGER NOT NULL, 
	execution_id TEXT NOT NULL, 
	state TEXT NOT NULL, 
	worker TEXT, 
	error TEXT, 
	started_at FLOAT, 
	ended_at FLOAT, 
	resources TEXT, 
	PRIMARY KEY (task_run_id, attempt)
);
CREATE INDEX ix_attempts_execution ON attempts (execution_id);
CREATE TABLE audit (
	id INTEGER NOT NULL, 
	ts FLOAT NOT NULL, 
	actor TEXT NOT NULL, 
	method TEXT NOT NULL, 
	path TEXT NOT NULL, 
	namespace TEXT, 
	status INTEGER NOT NULL, 
	client TEXT, 
	PRIMARY KEY (id)
);
CREATE INDEX ix_audit_ts ON audit (ts);
CREATE TABLE commands (
	id INTEGER NOT NULL, 
	execution_id TEXT NOT NULL, 
	kind TEXT NOT NULL, 
	payload TEXT, 
	created_at FLOAT NOT NULL, 
	PRIMARY KEY (id)
);
CREATE INDEX ix_commands_execution ON commands (execution_id);
CREATE TABLE executions (
	id TEXT NOT NULL, 
	namespace TEXT NOT NULL, 
	flow_id TEXT NOT NULL, 
	flow_revision INTEGER, 
	flow_hash TEXT NOT NULL, 
	state TEXT NOT NULL, 
	inputs TEXT, 
	outputs TEXT, 
	labels TEXT, 
	"trigger" TEXT, 
	parent_id TEXT, 
	parent_task_run_id TEXT, 
	original_id TEXT, 
	dedupe_key TEXT, 
	error TEXT, 
	owner TEXT, 
	created_at FLOAT NOT NULL, 
	started_at FLOAT, 
	ended_at FLOAT, 
	updated_at FLOAT NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (dedupe_key)
);
CREATE INDEX ix_executions_created ON executions (created_at);
CREATE INDEX ix_executions_flow ON executions (namespace, flow_id, state);
CREATE INDEX ix_executions_owner ON executions (owner);
CREATE INDEX ix_executions_state ON executions (state);
CREATE TABLE flow_sources (
	hash TEXT NOT NULL, 
	source TEXT NOT NULL, 
	path TEXT, 
	PRIMARY KEY (hash)
);
CREATE TABLE flows (
	namespace TEXT NOT NULL, 
	id TEXT NOT NULL, 
	revision INTEGER NOT NULL, 
	hash TEXT NOT NULL, 
	deleted INTEGER DEFAULT '0' NOT NULL, 
	created_at FLOAT NOT NULL, 
	PRIMARY KEY (namespace, id, revision)
);
CREATE TABLE jobs (
	task_run_id TEXT NOT NULL, 
	attempt INTEGER NOT NULL, 
	execution_id TEXT NOT NULL, 
	worker TEXT, 
	created_at FLOAT NOT NULL, 
	claimed_at FLOAT, 
	queue TEXT DEFAULT 'default' NOT NULL, 
	payload TEXT, 
	state TEXT DEFAULT 'queued' NOT NULL, 
	lease_until FLOAT, 
	PRIMARY KEY (task_run_id, attempt)
);
CREATE INDEX ix_jobs_claim ON jobs (queue, state, created_at);
CREATE INDEX ix_jobs_execution ON jobs (execution_id);
CREATE TABLE kv (
	namespace TEXT NOT NULL, 
	"key" TEXT NOT NULL, 
	value TEXT, 
	type TEXT, 
	expires_at FLOAT, 
	updated_at FLOAT NOT NULL, 
	PRIMARY KEY (namespace, "key")
);
CREATE TABLE logs (
	id INTEGER NOT NULL, 
	execution_id TEXT NOT NULL, 
	task_run_id TEXT, 
	task_id TEXT, 
	attempt INTEGER, 
	level TEXT NOT NULL, 
	message TEXT NOT NULL, 
	ts FLOAT NOT NULL, 
	PRIMARY KEY (id)
);
CREATE INDEX ix_logs_execution ON logs (execution_id, id);
CREATE TABLE metrics (
	id INTEGER NOT NULL, 
	execution_id TEXT NOT NULL, 
	task_run_id TEXT, 
	name TEXT NOT NULL, 
	type TEXT NOT NULL, 
	value FLOAT NOT NULL, 
	tags TEXT, 
	ts FLOAT NOT NULL, 
	PRIMARY KEY (id)
);
CREATE INDEX ix_metrics_execution ON metrics (execution_id);
CREATE TABLE processes (
	id TEXT NOT NULL, 
	kind TEXT DEFAULT 'server' NOT NULL, 
	host TEXT NOT NULL, 
	pid INTEGER NOT NULL, 
	version TEXT, 
	started_at FLOAT NOT NULL, 
	last_seen FLOAT NOT NULL, 
	slots INTEGER, 
	busy INTEGER, 
	queues TEXT, 
	PRIMARY KEY (id)
);
CREATE TABLE results (
	task_run_id TEXT NOT NULL, 
	attempt INTEGER NOT NULL, 
	execution_id TEXT NOT NULL, 
	state TEXT NOT NULL, 
	outputs TEXT, 
	error TEXT, 
	started_at FLOAT, 
	ended_at FLOAT, 
	worker TEXT, 
	created_at FLOAT NOT NULL, 
	PRIMARY KEY (task_run_id, attempt)
);
CREATE INDEX ix_results_execution ON results (execution_id);
CREATE TABLE secrets (
	namespace TEXT NOT NULL, 
	name TEXT NOT NULL, 
	sealed BLOB NOT NULL, 
	updated_at FLOAT NOT NULL, 
	PRIMARY KEY (namespace, name)
);
CREATE TABLE sessions (
	id_hash TEXT NOT NULL, 
	username TEXT NOT NULL, 
	csrf TEXT NOT NULL, 
	created_at FLOAT NOT NULL, 
	expires_at FLOAT NOT NULL, 
	PRIMARY KEY (id_hash)
);
CREATE TABLE task_runs (
	id TEXT NOT NULL, 
	execution_id TEXT NOT NULL, 
	parent_id TEXT, 
	task_id TEXT NOT NULL, 
	value TEXT, 
	iteration INTEGER, 
	state TEXT NOT NULL, 
	attempt INTEGER DEFAULT '0' NOT NULL, 
	outputs TEXT, 
	data TEXT, 
	error TEXT, 
	created_at FLOAT NOT NULL, 
	started_at FLOAT, 
	ended_at FLOAT, 
	seq INTEGER NOT NULL, 
	PRIMARY KEY (id)
);
CREATE INDEX ix_task_runs_execution ON task_runs (execution_id, seq);
CREATE TABLE tokens (
	id TEXT NOT NULL, 
	secret_hash TEXT NOT NULL, 
	name TEXT, 
	role TEXT NOT NULL, 
	namespace TEXT DEFAULT '' NOT NULL, 
	created_by TEXT, 
	created_at FLOAT NOT NULL, 
	expires_at FLOAT, 
	revoked_at FLOAT, 
	last_used_at FLOAT, 
	PRIMARY KEY (id)
);
CREATE TABLE trigger_ticks (
	namespace TEXT NOT NULL, 
	flow_id TEXT NOT NULL, 
	trigger_id TEXT NOT NULL, 
	"key" TEXT NOT NULL, 
	execution_id TEXT, 
	created_at FLOAT NOT NULL, 
	PRIMARY KEY (namespace, flow_id, trigger_id, "key")
);
CREATE TABLE triggers (
	namespace TEXT NOT NULL, 
	flow_id TEXT NOT NULL, 
	trigger_id TEXT NOT NULL, 
	type TEXT, 
	next_at FLOAT, 
	last_at FLOAT, 
	last_execution_id TEXT, 
	disabled INTEGER DEFAULT '0' NOT NULL, 
	state TEXT, 
	updated_at FLOAT, 
	PRIMARY KEY (namespace, flow_id, trigger_id)
);
CREATE TABLE users (
	name TEXT NOT NULL, 
	password_hash TEXT NOT NULL, 
	role TEXT NOT NULL, 
	namespace TEXT DEFAULT '' NOT NULL, 
	created_at FLOAT NOT NULL, 
	updated_at FLOAT NOT NULL, 
	PRIMARY KEY (name)
);

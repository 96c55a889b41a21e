-- user_activity_input: how the pipeline writes user_activity. A row folds
-- up to 64 days of one user in one workload into a bitmask (bit i: active
-- on first_date + i), and the view below unfolds it into user_activity's
-- row per day. A flush that spans days finds a user active on several of
-- them (a backfill's: 2.65 days a row), and the client builds, encodes and
-- sends a folded row at the cost of one. It stores nothing (Null engine);
-- read user_activity.
CREATE TABLE IF NOT EXISTS {db}.user_activity_input
(
    tenant_id  String,
    user_id    String,
    workload   LowCardinality(String),
    first_date Date,
    days       UInt64,
    version    UInt64
)
ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.user_activity_unfold TO {db}.user_activity AS
SELECT tenant_id, user_id, workload, first_date + arrayJoin(bitPositionsToArray(days)) AS date, version
FROM {db}.user_activity_input;

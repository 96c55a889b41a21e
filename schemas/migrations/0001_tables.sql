-- seatflow's ClickHouse tables (SPEC §4). Snapshot rows are upserts: readers
-- use FINAL (or argMax by version). {db} is the configured database.
CREATE TABLE IF NOT EXISTS {db}.deployment_daily
(
    tenant_id      String,
    sku            LowCardinality(String),
    date           Date,
    product        LowCardinality(String),
    sold           UInt64,
    trial          UInt64,
    assigned       UInt64,
    qualified      UInt64,
    deployment_pct Nullable(Float64),
    final          UInt8,
    version        UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(date)
ORDER BY (tenant_id, sku, date)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {db}.usage_daily
(
    tenant_id    String,
    sku          LowCardinality(String),
    workload     LowCardinality(String),
    date         Date,
    active_users UInt64,
    qualified    UInt64,
    usage_pct    Nullable(Float64),
    final        UInt8,
    version      UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(date)
ORDER BY (tenant_id, sku, workload, date)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {db}.workload_daily
(
    tenant_id    String,
    workload     LowCardinality(String),
    date         Date,
    active_users UInt64,
    final        UInt8,
    version      UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(date)
ORDER BY (tenant_id, workload, date)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {db}.subscriptions
(
    tenant_id       String,
    subscription_id String,
    sku             LowCardinality(String),
    partner_id      String,
    status          LowCardinality(String),
    trial           UInt8,
    quantity        UInt64,
    occurred_at     DateTime64(9, 'UTC'),
    version         UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (tenant_id, subscription_id)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {db}.user_activity
(
    tenant_id String,
    user_id   String,
    workload  LowCardinality(String),
    date      Date,
    version   UInt64 -- the flush that wrote it; a replay after a crash writes it again
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(date)
ORDER BY (tenant_id, user_id, workload, date)
SETTINGS non_replicated_deduplication_window = 1000;

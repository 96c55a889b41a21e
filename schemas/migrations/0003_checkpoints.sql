-- Pipeline checkpoints: the figure state (zstd) and the Kafka offsets it
-- covers, written after the rows it produced; restart reads the newest.
CREATE TABLE IF NOT EXISTS {db}.checkpoints
(
    consumer_group String,
    version        UInt64,
    created_at     DateTime64(3, 'UTC'),
    offsets        Map(String, Int64),
    state          String
)
ENGINE = MergeTree
ORDER BY (consumer_group, version)
TTL toDateTime(created_at) + INTERVAL 2 DAY;

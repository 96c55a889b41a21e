-- Scale-out (SPEC §7). unit_checkpoints: each unit's (partition p of both
-- topics) figure state (zstd) and the offsets it covers, written after the
-- rows it produced. They do not expire: the pipeline keeps the newest few
-- of each unit and deletes older ones itself. (checkpoints, the whole
-- pipeline's from before units, is no longer written.)
CREATE TABLE IF NOT EXISTS {db}.unit_checkpoints
(
    consumer_group String,
    unit           Int32,
    version        UInt64,
    created_at     DateTime64(3, 'UTC'),
    offsets        Map(String, Int64),
    state          String
)
ENGINE = MergeTree
ORDER BY (consumer_group, unit, version);

-- unit_claims: each time a member takes a unit it claims the next epoch;
-- the epoch leads every row version it writes, so a later owner's rows
-- always replace an earlier owner's (docs/architecture.md).
CREATE TABLE IF NOT EXISTS {db}.unit_claims
(
    consumer_group String,
    unit           Int32,
    epoch          UInt64,
    generation     Int64,
    member         String,
    claimed_at     DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY (consumer_group, unit, epoch);

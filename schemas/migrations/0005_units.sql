-- Scale-out (SPEC §7). A checkpoint is one unit's (partition p of both
-- topics); unit -1 marks a checkpoint of the whole pipeline from before
-- units. Checkpoints no longer expire: the pipeline keeps the newest few of
-- each unit and deletes older ones itself.
ALTER TABLE {db}.checkpoints ADD COLUMN IF NOT EXISTS unit Int32 DEFAULT -1 AFTER consumer_group;
ALTER TABLE {db}.checkpoints REMOVE TTL;

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

-- Offset ranges an operator moved to the dead-letter topic because their
-- record batches cannot be read (`seatflow skip-batch`). A unit's reader
-- stuck on an unreadable batch looks here and goes on after the range;
-- a later owner of the unit, restoring an older checkpoint, skips the same
-- range, so every owner reads the same events (docs/operations.md).
CREATE TABLE IF NOT EXISTS {db}.skipped_offsets
(
    consumer_group String,
    topic          String,
    partition      Int32,
    from_offset    Int64,
    to_offset      Int64,
    cause          String,
    skipped_at     DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY (consumer_group, topic, partition, from_offset);

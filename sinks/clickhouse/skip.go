package clickhouse

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Skip is an offset range of one partition, both ends included, that the
// consumer group reads past: its record batches cannot be read, and an
// operator sent them to the dead-letter topic.
type Skip struct {
	Topic     string
	Partition int32
	From, To  int64
	Cause     string
}

// Skips stores the consumer group's skips in skipped_offsets.
type Skips struct {
	conn  driver.Conn
	db    string
	group string
}

// NewSkips stores the consumer group's skips in db.
func NewSkips(conn driver.Conn, db, group string) *Skips {
	return &Skips{conn: conn, db: db, group: group}
}

// Add records s.
func (k *Skips) Add(ctx context.Context, s Skip) error {
	err := k.conn.Exec(ctx, "INSERT INTO "+k.db+".skipped_offsets (consumer_group, topic, partition, from_offset, to_offset, cause, skipped_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
		k.group, s.Topic, s.Partition, s.From, s.To, s.Cause, time.Now().UTC())
	if err != nil {
		return fmt.Errorf("record skip of %s/%d offsets %d-%d: %w", s.Topic, s.Partition, s.From, s.To, err)
	}
	return nil
}

// Covering finds the skip of topic's partition that holds offset, if any.
func (k *Skips) Covering(ctx context.Context, topic string, partition int32, offset int64) (Skip, bool, error) {
	s := Skip{Topic: topic, Partition: partition}
	rows, err := k.conn.Query(ctx, "SELECT from_offset, to_offset, cause FROM "+k.db+".skipped_offsets"+
		" WHERE consumer_group = ? AND topic = ? AND partition = ? AND from_offset <= ? AND to_offset >= ?"+
		" ORDER BY to_offset DESC LIMIT 1", k.group, topic, partition, offset, offset)
	if err != nil {
		return s, false, fmt.Errorf("skips of %s/%d at %d: %w", topic, partition, offset, err)
	}
	defer rows.Close()
	found := rows.Next()
	if found {
		err = rows.Scan(&s.From, &s.To, &s.Cause)
	}
	if err = cmp.Or(err, rows.Err()); err != nil {
		return s, false, fmt.Errorf("skips of %s/%d at %d: %w", topic, partition, offset, err)
	}
	return s, found, nil
}

package clickhouse

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/klauspost/compress/zstd"
)

// Checkpoint is the pipeline's state and the offsets it covers: the next
// offset to read per "topic/partition".
type Checkpoint struct {
	Version uint64
	Offsets map[string]int64
	State   []byte
}

// Checkpoints stores checkpoints in the checkpoints table.
type Checkpoints struct {
	conn  driver.Conn
	db    string
	group string
}

// NewCheckpoints stores the consumer group's checkpoints in db.
func NewCheckpoints(conn driver.Conn, db, group string) *Checkpoints {
	return &Checkpoints{conn: conn, db: db, group: group}
}

// Save writes a checkpoint (the state compressed with zstd).
func (c *Checkpoints) Save(ctx context.Context, cp Checkpoint) error {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		return err
	}
	state := enc.EncodeAll(cp.State, nil)
	b, err := c.conn.PrepareBatch(ctx, "INSERT INTO "+c.db+".checkpoints")
	if err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	if err := b.Append(c.group, cp.Version, time.Now().UTC(), cp.Offsets, string(state)); err != nil {
		b.Abort()
		return fmt.Errorf("save checkpoint: %w", err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	return nil
}

// ErrNoCheckpoint means the group has none yet: start from scratch.
var ErrNoCheckpoint = errors.New("no checkpoint")

// Latest reads the newest checkpoint of the group.
func (c *Checkpoints) Latest(ctx context.Context) (Checkpoint, error) {
	var (
		cp    Checkpoint
		state string
	)
	row := c.conn.QueryRow(ctx, "SELECT version, offsets, state FROM "+c.db+".checkpoints WHERE consumer_group = ? ORDER BY version DESC LIMIT 1", c.group)
	if err := row.Scan(&cp.Version, &cp.Offsets, &state); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return cp, ErrNoCheckpoint
		}
		return cp, fmt.Errorf("read checkpoint: %w", err)
	}
	dec, err := zstd.NewReader(nil)
	if err != nil {
		return cp, err
	}
	defer dec.Close()
	if cp.State, err = dec.DecodeAll([]byte(state), nil); err != nil {
		return cp, fmt.Errorf("read checkpoint: state: %w", err)
	}
	return cp, nil
}

package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/klauspost/compress/zstd"
)

// Checkpoint is one unit's figure state and the offsets it covers: the
// next offset to read per "topic/partition".
type Checkpoint struct {
	Unit    int32
	Version uint64
	Offsets map[string]int64
	State   []byte
}

// Checkpoints stores the units' checkpoints in unit_checkpoints, and
// their epoch claims in unit_claims.
type Checkpoints struct {
	conn  driver.Conn
	db    string
	group string
}

// NewCheckpoints stores the consumer group's checkpoints in db.
func NewCheckpoints(conn driver.Conn, db, group string) *Checkpoints {
	return &Checkpoints{conn: conn, db: db, group: group}
}

// Save writes checkpoints, their states compressed with zstd, in one
// insert.
func (c *Checkpoints) Save(ctx context.Context, cps ...Checkpoint) error {
	if len(cps) == 0 {
		return nil
	}
	// one insert for all: a ClickHouse part each, not one per unit
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return err
	}
	defer enc.Close()
	b, err := c.conn.PrepareBatch(ctx, "INSERT INTO "+c.db+".unit_checkpoints (consumer_group, unit, version, created_at, offsets, state)")
	if err != nil {
		return fmt.Errorf("save checkpoints: %w", err)
	}
	now := time.Now().UTC()
	var state []byte
	for _, cp := range cps {
		state = enc.EncodeAll(cp.State, state[:0])
		if err := b.Append(c.group, cp.Unit, cp.Version, now, cp.Offsets, string(state)); err != nil {
			b.Abort()
			return fmt.Errorf("save checkpoint of unit %d: %w", cp.Unit, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("save checkpoints: %w", err)
	}
	return nil
}

// ErrNoCheckpoint means the unit has none yet.
var ErrNoCheckpoint = errors.New("no checkpoint")

// Versions lists the unit's newest checkpoints' versions, newest first, at
// most n of them.
func (c *Checkpoints) Versions(ctx context.Context, unit int32, n int) ([]uint64, error) {
	rows, err := c.conn.Query(ctx, "SELECT version FROM "+c.db+".unit_checkpoints WHERE consumer_group = ? AND unit = ? ORDER BY version DESC LIMIT ?", c.group, unit, n)
	if err != nil {
		return nil, fmt.Errorf("list checkpoints of unit %d: %w", unit, err)
	}
	defer rows.Close()
	var out []uint64
	for rows.Next() {
		var v uint64
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("list checkpoints of unit %d: %w", unit, err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// Load reads one checkpoint of the unit. A checkpoint that cannot be
// read whole (its state does not decompress) is an error: the caller may
// try an older one.
func (c *Checkpoints) Load(ctx context.Context, unit int32, version uint64) (Checkpoint, error) {
	cp := Checkpoint{Unit: unit}
	var state string
	row := c.conn.QueryRow(ctx, "SELECT version, offsets, state FROM "+c.db+".unit_checkpoints WHERE consumer_group = ? AND unit = ? AND version = ? LIMIT 1",
		c.group, unit, version)
	if err := row.Scan(&cp.Version, &cp.Offsets, &state); err != nil {
		return cp, fmt.Errorf("read checkpoint %d of unit %d: %w", version, unit, err)
	}
	dec, err := zstd.NewReader(nil)
	if err != nil {
		return cp, err
	}
	defer dec.Close()
	if cp.State, err = dec.DecodeAll([]byte(state), nil); err != nil {
		return cp, fmt.Errorf("read checkpoint %d of unit %d: state: %w", version, unit, err)
	}
	return cp, nil
}

// Latest reads the unit's newest checkpoint.
func (c *Checkpoints) Latest(ctx context.Context, unit int32) (Checkpoint, error) {
	vs, err := c.Versions(ctx, unit, 1)
	if err != nil {
		return Checkpoint{}, err
	}
	if len(vs) == 0 {
		return Checkpoint{}, ErrNoCheckpoint
	}
	return c.Load(ctx, unit, vs[0])
}

// Prune deletes the unit's checkpoints older than its keep newest.
func (c *Checkpoints) Prune(ctx context.Context, unit int32, keep int) error {
	vs, err := c.Versions(ctx, unit, keep)
	if err != nil || len(vs) < keep {
		return err
	}
	if err := c.conn.Exec(ctx, "DELETE FROM "+c.db+".unit_checkpoints WHERE consumer_group = ? AND unit = ? AND version < ?", c.group, unit, vs[keep-1]); err != nil {
		return fmt.Errorf("prune checkpoints of unit %d: %w", unit, err)
	}
	return nil
}

// ErrClaimLost means a later claim of the unit exists: another member
// owns it now.
var ErrClaimLost = errors.New("the unit was claimed by another member")

// Claim gives the unit a new epoch, above every earlier claim's and
// above atLeast (the epoch of the checkpoint being restored). Claims are
// ordered by (epoch, generation): when two members happen to claim the
// same epoch (one paused between reading and writing its claim), the one
// of the later consumer-group generation keeps it, and the other gets
// ErrClaimLost.
func (c *Checkpoints) Claim(ctx context.Context, unit int32, generation int32, member string, atLeast uint64) (uint64, error) {
	var last uint64
	q := "SELECT max(epoch) FROM " + c.db + ".unit_claims WHERE consumer_group = ? AND unit = ?"
	if err := c.conn.QueryRow(ctx, q, c.group, unit).Scan(&last); err != nil {
		return 0, fmt.Errorf("claim unit %d: %w", unit, err)
	}
	epoch := max(last, atLeast) + 1
	if err := c.conn.Exec(ctx, "INSERT INTO "+c.db+".unit_claims (consumer_group, unit, epoch, generation, member, claimed_at) VALUES (?, ?, ?, ?, ?, ?)",
		c.group, unit, epoch, int64(generation), member, time.Now().UTC()); err != nil {
		return 0, fmt.Errorf("claim unit %d: %w", unit, err)
	}
	switch lost, err := c.Superseded(ctx, unit, epoch, generation); {
	case err != nil:
		return 0, err
	case lost:
		return 0, ErrClaimLost
	}
	return epoch, nil
}

// Superseded says whether the unit has a claim later than (epoch,
// generation).
func (c *Checkpoints) Superseded(ctx context.Context, unit int32, epoch uint64, generation int32) (bool, error) {
	var later uint64
	q := "SELECT count() FROM " + c.db + ".unit_claims WHERE consumer_group = ? AND unit = ? AND (epoch > ? OR epoch = ? AND generation > ?)"
	if err := c.conn.QueryRow(ctx, q, c.group, unit, epoch, epoch, int64(generation)).Scan(&later); err != nil {
		return false, fmt.Errorf("claims of unit %d: %w", unit, err)
	}
	return later > 0, nil
}

// OtherWriters says what else wrote snapshot rows in this database: by
// unit, another consumer group's claims of it; for all units, checkpoints
// of the whole pipeline from before units.
func (c *Checkpoints) OtherWriters(ctx context.Context) (byUnit map[int]string, all string, err error) {
	out := map[int]string{}
	var legacy uint64
	q := "SELECT count() FROM system.tables WHERE database = ? AND name = 'checkpoints'"
	if err := c.conn.QueryRow(ctx, q, c.db).Scan(&legacy); err != nil {
		return nil, "", fmt.Errorf("look for checkpoints from before units: %w", err)
	}
	if legacy > 0 {
		if err := c.conn.QueryRow(ctx, "SELECT count() FROM "+c.db+".checkpoints").Scan(&legacy); err != nil {
			return nil, "", fmt.Errorf("look for checkpoints from before units: %w", err)
		}
	}
	if legacy > 0 {
		all = fmt.Sprintf("database %s holds checkpoints of a seatflow from before units (table checkpoints)", c.db)
	}
	rows, err := c.conn.Query(ctx, "SELECT unit, any(consumer_group) FROM "+c.db+".unit_claims WHERE consumer_group != ? GROUP BY unit", c.group)
	if err != nil {
		return nil, "", fmt.Errorf("claims of other groups: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			unit  int32
			group string
		)
		if err := rows.Scan(&unit, &group); err != nil {
			return nil, "", fmt.Errorf("claims of other groups: %w", err)
		}
		out[int(unit)] = fmt.Sprintf("the consumer group %s writes it in database %s", group, c.db)
	}
	return out, all, rows.Err()
}

package figures

import "github.com/seatflow/seatflow/pipeline/event"

// activityLog holds the user_activity rows found since the last Flush. A
// backfill finds about one per usage event, millions between flushes, so
// it holds them without pointers (the garbage collector need not scan
// them, and there is no string per row): entries of 16 bytes, and the
// users' IDs in one byte buffer.
type activityLog struct {
	entries []activityEntry
	ids     []byte
}

type activityEntry struct {
	tenant   uint32 // index in Engine.order
	idStart  uint32 // the user ID is ids[idStart : idStart+idLen]
	day      event.Day
	idLen    uint16
	workload uint8
}

func (l *activityLog) add(tenant uint32, userID string, workload uint8, day event.Day) {
	l.entries = append(l.entries, activityEntry{
		tenant: tenant, idStart: uint32(len(l.ids)), idLen: uint16(len(userID)), workload: workload, day: day,
	})
	l.ids = append(l.ids, userID...)
}

func (l *activityLog) len() int { return len(l.entries) }

// rows turns the log into rows stamped with version, and empties it.
func (e *Engine) activityRows(version uint64) []ActivityRow {
	l := &e.activity
	if len(l.entries) == 0 {
		return nil
	}
	ids := string(l.ids) // one copy; each row's UserID is a substring of it
	out := make([]ActivityRow, len(l.entries))
	for i, a := range l.entries {
		out[i] = ActivityRow{
			TenantID: e.order[a.tenant].id, UserID: ids[a.idStart : a.idStart+uint32(a.idLen)],
			Workload: e.workloads[a.workload], Date: a.day, Version: version,
		}
	}
	*l = activityLog{}
	return out
}

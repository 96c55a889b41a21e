package simulate

import (
	"strconv"
	"time"

	"github.com/seatflow/seatflow/pipeline/event"
)

// UsageMessages returns n usage events as publishers send them: one a
// second from start, tenant i%tenants, user i*7919%users, over five
// workloads (one an alias). A fixed load for the benchmarks of the decode
// and apply loop, which must not measure the generator.
func UsageMessages(n, tenants, users int, start time.Time) [][]byte {
	workloads := []string{"exchange", "teams", "sharepoint", "onedrive", "yammer"}
	msgs := make([][]byte, n)
	for i := range msgs {
		ev := event.Event{Kind: event.Usage, EventID: "e-" + strconv.Itoa(i), OccurredAt: start.Add(time.Duration(i) * time.Second).UnixNano(),
			TenantID: "t-" + strconv.Itoa(i%tenants), UserID: "u-" + strconv.Itoa(i*7919%users), Workload: workloads[i%len(workloads)]}
		msgs[i] = ev.AppendJSON(nil)
	}
	return msgs
}

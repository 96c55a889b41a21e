package store

import (
	"fmt"
	"slices"
)

// Cause is one of SPEC §3's four reasons a figure exceeds 100 %, as the
// customer's data shows it on the newest day.
type Cause struct {
	Kind string `json:"kind"` // trial | inactive_subscription | turnover | workload_beyond_seats
	Text string `json:"text"` // for people, with the numbers
}

// causes finds which of the four causes apply to k on its newest day,
// when its deployment or its usage (any workload) is over 100 %.
func causes(in *Insights, k *SKU) []Cause {
	d := k.Latest
	all, _ := last(k.Usage, "all", d.Date)
	overDeployment := d.Assigned > d.Sold
	overUsage := all.Den > 0 && all.Num > all.Den
	if !overDeployment && !overUsage {
		return []Cause{}
	}
	out := []Cause{}
	if d.Trial > 0 {
		out = append(out, Cause{Kind: "trial", Text: fmt.Sprintf("%d trial seats: their users count as assigned and active, but trial seats are not sold", d.Trial)})
	}
	for _, s := range in.Subscriptions {
		if s.SKU == k.SKU && slices.Contains([]string{"grace", "disabled", "deprovisioned"}, s.Status) {
			out = append(out, Cause{Kind: "inactive_subscription", Text: fmt.Sprintf("subscription %s is %s: its %d seats do not count as sold, while its users may still hold them", s.SubscriptionID, s.Status, s.Quantity)})
		}
	}
	if overUsage && all.Num > d.Assigned {
		out = append(out, Cause{Kind: "turnover", Text: fmt.Sprintf("%d of the %d users active in the last 28 days no longer hold a seat (turnover: a seat moved from a leaver to a new hire)", all.Num-d.Assigned, all.Num)})
	}
	if overUsage {
		for _, u := range k.Usage {
			if u.Name == "all" {
				continue
			}
			if w, ok := last(in.Workloads, u.Name, d.Date); ok && w.Num > d.Qualified {
				out = append(out, Cause{Kind: "workload_beyond_seats", Text: fmt.Sprintf("%s: %d users active across the whole tenant for %d qualified seats", u.Name, w.Num, d.Qualified)})
			}
		}
	}
	return out
}

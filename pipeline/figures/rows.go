package figures

func pct(num, den int64) *float64 {
	if den == 0 {
		return nil
	}
	p := 100 * float64(num) / float64(den)
	return &p
}

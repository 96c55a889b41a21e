package event

import "time"

// dateCache remembers the last date read, and its day number: the events
// of a fetch mostly share one, and its digits and calendar cost as much
// as the rest of the time. Its zero value holds no date: zero bytes match
// no string that has passed parseUTC's checks.
type dateCache struct {
	date [10]byte
	days int64
}

// parseTime reads an RFC 3339 time as Unix nanoseconds, refusing times
// outside the years MinYear–MaxYear. The usual UTC form,
// 2006-01-02T15:04:05[.fraction]Z, is read directly (time.Parse costs more
// than the rest of an event's decoding); every other form goes to
// time.Parse, whose rules the direct path follows.
func (c *dateCache) parseTime(s string) (int64, *Rejection) {
	if ns, ok := c.parseUTC(s); ok {
		return ns, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, reject(BadValue, "occurred_at %.64q is not an RFC 3339 time", s)
	}
	// checked before UnixNano, which wraps outside the years 1678–2262
	if y := t.UTC().Year(); y < MinYear || y > MaxYear {
		return 0, reject(BadValue, "occurred_at %.64q is outside the years %d–%d", s, MinYear, MaxYear)
	}
	return t.UnixNano(), nil
}

func (c *dateCache) parseUTC(s string) (int64, bool) {
	if len(s) < 20 || s[len(s)-1] != 'Z' || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return 0, false
	}
	hour, ok1 := twoDigits(s[11], s[12])
	minute, ok2 := twoDigits(s[14], s[15])
	sec, ok3 := twoDigits(s[17], s[18])
	if !(ok1 && ok2 && ok3) || hour > 23 || minute > 59 || sec > 59 {
		return 0, false
	}
	if s[:10] != string(c.date[:]) {
		days, ok := parseDate(s)
		if !ok {
			return 0, false
		}
		copy(c.date[:], s)
		c.days = days
	}
	var nanos int
	if frac := s[19 : len(s)-1]; frac != "" {
		if frac[0] != '.' || len(frac) < 2 || len(frac) > 10 {
			return 0, false
		}
		n, ok := digits(frac[1:])
		if !ok {
			return 0, false
		}
		for range 10 - len(frac) {
			n *= 10
		}
		nanos = n
	}
	secs := c.days*86400 + int64(hour*3600+minute*60+sec)
	return secs*1e9 + int64(nanos), true
}

// parseDate reads the date of the usual form as days since 1970-01-01.
func parseDate(s string) (int64, bool) {
	century, ok1 := twoDigits(s[0], s[1])
	yy, ok2 := twoDigits(s[2], s[3])
	month, ok3 := twoDigits(s[5], s[6])
	day, ok4 := twoDigits(s[8], s[9])
	year := century*100 + yy
	// years outside [MinYear, MaxYear] go the slow way, which refuses them
	if !(ok1 && ok2 && ok3 && ok4) || year < MinYear || year > MaxYear || month < 1 || month > 12 || day < 1 ||
		day > daysIn(year, month) { // time.Parse refuses April 31
		return 0, false
	}
	return daysSinceEpoch(year, month, day), true
}

// twoDigits reads two decimal digits; the fixed places of the usual form
// let it go without a loop (BenchmarkParseTime).
func twoDigits(a, b byte) (int, bool) {
	a, b = a-'0', b-'0' // bytes below '0' wrap above 9
	return int(a)*10 + int(b), a <= 9 && b <= 9
}

// daysSinceEpoch counts days from 1970-01-01 to a proleptic Gregorian
// date (Howard Hinnant's days_from_civil) in a few integer steps:
// time.Date, and Time.Day to check the day, made BenchmarkParseTime
// 35 ns instead of 23.
func daysSinceEpoch(year, month, day int) int64 {
	if month <= 2 {
		year--
	}
	era := year / 400 // years here are at least 1969
	yoe := year - era*400
	mp := (month + 9) % 12 // March is 0
	doy := (153*mp+2)/5 + day - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era*146097 + doe - 719468)
}

func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

func digits(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

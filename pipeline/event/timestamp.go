package event

import "time"

// parseTime reads an RFC 3339 time as Unix nanoseconds. The usual UTC
// form, 2006-01-02T15:04:05[.fraction]Z, is read directly (time.Parse
// costs more than the rest of an event's decoding); every other form goes
// to time.Parse, whose rules the direct path follows.
func parseTime(s string) (int64, bool) {
	if ns, ok := parseUTC(s); ok {
		return ns, true
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, false
	}
	return t.UnixNano(), true
}

func parseUTC(s string) (int64, bool) {
	if len(s) < 20 || s[len(s)-1] != 'Z' || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return 0, false
	}
	year, ok1 := digits(s[0:4])
	month, ok2 := digits(s[5:7])
	day, ok3 := digits(s[8:10])
	hour, ok4 := digits(s[11:13])
	minute, ok5 := digits(s[14:16])
	sec, ok6 := digits(s[17:19])
	// years outside [1970, 2261] go the slow way: nanoseconds overflow past 2262
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || year < 1970 || year > 2261 || month < 1 || month > 12 || day < 1 ||
		hour > 23 || minute > 59 || sec > 59 {
		return 0, false
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
	if day > daysIn(year, month) { // time.Parse refuses April 31
		return 0, false
	}
	secs := daysSinceEpoch(year, month, day)*86400 + int64(hour*3600+minute*60+sec)
	return secs*1e9 + int64(nanos), true
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

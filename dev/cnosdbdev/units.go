package cnosdbdev

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// precision is a timestamp unit: of a database, or of a write request.
type precision uint8

const (
	precisionMS precision = iota
	precisionUS
	precisionNS
)

// parsePrecision is Precision::new: "ms", "us" or "ns" in any case.
func parsePrecision(text string) (precision, bool) {
	switch strings.ToUpper(text) {
	case "MS":
		return precisionMS, true
	case "US":
		return precisionUS, true
	case "NS":
		return precisionNS, true
	}
	return precisionNS, false
}

// PrecisionUnit is the time that one unit of a write request's precision parameter
// stands for, as CnosDB reads it: "ms", "us" or "ns" in any case, and anything else
// (no parameter too) as "ns".
func PrecisionUnit(param string) time.Duration {
	p, _ := parsePrecision(param)
	return time.Second / time.Duration(p.unitsPerSecond())
}

func (p precision) String() string {
	switch p {
	case precisionMS:
		return "MS"
	case precisionUS:
		return "US"
	}
	return "NS"
}

// unitsPerSecond returns how many ticks of p make a second.
func (p precision) unitsPerSecond() int64 {
	switch p {
	case precisionMS:
		return 1_000
	case precisionUS:
		return 1_000_000
	}
	return 1_000_000_000
}

// timeColumnType is the Arrow type name of a time column, as CnosDB prints
// it in type errors.
func (p precision) timeColumnType() string {
	switch p {
	case precisionMS:
		return "TimestampMillisecond"
	case precisionUS:
		return "TimestampMicrosecond"
	}
	return "TimestampNanosecond"
}

// sqlTimeType is the time column type DESCRIBE TABLE shows.
func (p precision) sqlTimeType() string {
	switch p {
	case precisionMS:
		return "TIMESTAMP(MILLISECOND)"
	case precisionUS:
		return "TIMESTAMP(MICROSECOND)"
	}
	return "TIMESTAMP(NANOSECOND)"
}

func (p precision) now(t time.Time) int64 {
	switch p {
	case precisionMS:
		return t.UnixMilli()
	case precisionUS:
		return t.UnixMicro()
	}
	return t.UnixNano()
}

// convertTimestamp is timestamp_convert: truncating division to a coarser
// unit, checked multiplication to a finer one.
func convertTimestamp(from, to precision, ts int64) (int64, bool) {
	if from == to {
		return ts, true
	}
	fromUnits, toUnits := from.unitsPerSecond(), to.unitsPerSecond()
	if fromUnits > toUnits {
		return ts / (fromUnits / toUnits), true
	}
	factor := toUnits / fromUnits
	if ts > math.MaxInt64/factor || ts < math.MinInt64/factor {
		return 0, false
	}
	return ts * factor, true
}

// cnosDuration is CnosDB's CnosDuration: a humantime duration or INF.
type cnosDuration struct {
	secs  uint64
	nanos uint32
	inf   bool
}

const (
	secondsPerYear  = 31_557_600 // 365.25 days, humantime's year
	secondsPerMonth = 2_630_016  // 30.44 days
)

var (
	durationInfinite = cnosDuration{inf: true}
	durationOneYear  = cnosDuration{secs: secondsPerYear}
)

var errBadDuration = errors.New("not a valid duration")

// parseCnosDuration is CnosDuration::new: a bare number is days, "INF" (any
// case) is infinite, anything else is a humantime duration.
func parseCnosDuration(text string) (cnosDuration, error) {
	if days, err := strconv.ParseUint(text, 10, 64); err == nil {
		if days > math.MaxUint64/86400 {
			return durationInfinite, nil
		}
		return cnosDuration{secs: days * 86400}, nil
	}
	if strings.ToUpper(text) == "INF" {
		return durationInfinite, nil
	}
	return parseHumantime(text)
}

// parseHumantime accepts humantime's grammar: numbers each followed by a
// unit, optionally separated by whitespace ("1h 30min", "2days").
func parseHumantime(text string) (cnosDuration, error) {
	var total cnosDuration
	rs := []rune(text)
	i := 0
	skipSpace := func() {
		for i < len(rs) && unicode.IsSpace(rs[i]) {
			i++
		}
	}
	skipSpace()
	if i == len(rs) {
		return cnosDuration{}, errBadDuration
	}
	for i < len(rs) {
		start := i
		var n uint64
		for i < len(rs) && (rs[i] >= '0' && rs[i] <= '9' || unicode.IsSpace(rs[i])) {
			if rs[i] >= '0' && rs[i] <= '9' {
				d := uint64(rs[i] - '0')
				if n > (math.MaxUint64-d)/10 {
					return cnosDuration{}, errBadDuration
				}
				n = n*10 + d
			}
			i++
		}
		if i == start {
			return cnosDuration{}, errBadDuration
		}
		unitStart := i
		for i < len(rs) && (rs[i] >= 'a' && rs[i] <= 'z' || rs[i] >= 'A' && rs[i] <= 'Z' || rs[i] == 'µ') {
			i++
		}
		secs, nanos, ok := humantimeUnit(string(rs[unitStart:i]), n)
		if !ok {
			return cnosDuration{}, errBadDuration
		}
		var overflow bool
		total, overflow = total.add(secs, nanos)
		if overflow {
			return cnosDuration{}, errBadDuration
		}
		skipSpace()
		if i < len(rs) && !(rs[i] >= '0' && rs[i] <= '9') {
			return cnosDuration{}, errBadDuration
		}
	}
	return total, nil
}

func humantimeUnit(unit string, n uint64) (secs, nanos uint64, ok bool) {
	mul := func(a, b uint64) (uint64, bool) {
		if a != 0 && b > math.MaxUint64/a {
			return 0, false
		}
		return a * b, true
	}
	var v uint64
	switch unit {
	case "nanos", "nsec", "ns":
		return 0, n, true
	case "usec", "us", "µs":
		v, ok = mul(n, 1_000)
		return 0, v, ok
	case "millis", "msec", "ms":
		v, ok = mul(n, 1_000_000)
		return 0, v, ok
	case "seconds", "second", "secs", "sec", "s":
		return n, 0, true
	case "minutes", "minute", "min", "mins", "m":
		v, ok = mul(n, 60)
	case "hours", "hour", "hr", "hrs", "h":
		v, ok = mul(n, 3600)
	case "days", "day", "d":
		v, ok = mul(n, 86400)
	case "weeks", "week", "w":
		v, ok = mul(n, 7*86400)
	case "months", "month", "M":
		v, ok = mul(n, secondsPerMonth)
	case "years", "year", "y":
		v, ok = mul(n, secondsPerYear)
	default:
		return 0, 0, false
	}
	return v, 0, ok
}

func (d cnosDuration) add(secs, nanos uint64) (cnosDuration, bool) {
	totalNanos := uint64(d.nanos) + nanos
	secs += totalNanos / 1_000_000_000
	if secs < totalNanos/1_000_000_000 || d.secs > math.MaxUint64-secs {
		return d, true
	}
	return cnosDuration{secs: d.secs + secs, nanos: uint32(totalNanos % 1_000_000_000)}, false
}

// in returns the duration in units of p, saturated at MaxInt64 (INF too).
func (d cnosDuration) in(p precision) int64 {
	if d.inf {
		return math.MaxInt64
	}
	per := uint64(p.unitsPerSecond())
	if d.secs > math.MaxInt64/per {
		return math.MaxInt64
	}
	sub := uint64(d.nanos) / (1_000_000_000 / per)
	v := d.secs*per + sub
	if v > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(v)
}

// String formats like CnosDuration's Display: "INF" or humantime's format.
func (d cnosDuration) String() string {
	if d.inf {
		return "INF"
	}
	if d.secs == 0 && d.nanos == 0 {
		return "0s"
	}
	years := d.secs / secondsPerYear
	ydays := d.secs % secondsPerYear
	months := ydays / secondsPerMonth
	mdays := ydays % secondsPerMonth
	days := mdays / 86400
	daySecs := mdays % 86400
	var parts []string
	plural := func(v uint64, name string) {
		if v > 0 {
			s := strconv.FormatUint(v, 10) + name
			if v > 1 {
				s += "s"
			}
			parts = append(parts, s)
		}
	}
	item := func(v uint64, name string) {
		if v > 0 {
			parts = append(parts, strconv.FormatUint(v, 10)+name)
		}
	}
	plural(years, "year")
	plural(months, "month")
	plural(days, "day")
	item(daySecs/3600, "h")
	item(daySecs%3600/60, "m")
	item(daySecs%60, "s")
	item(uint64(d.nanos)/1_000_000, "ms")
	item(uint64(d.nanos)/1000%1000, "us")
	item(uint64(d.nanos)%1000, "ns")
	return strings.Join(parts, " ")
}

// bucketStart is the start of get_time_range's bucket: the [start, end)
// window of width length that holds ts; a non-positive width means one
// bucket for all time.
func bucketStart(ts, length int64) int64 {
	if length <= 0 {
		return math.MinInt64
	}
	if ts >= 0 {
		return ts / length * length
	}
	start := (ts + 1) / length * length
	if start < math.MinInt64+length {
		return math.MinInt64
	}
	return start - length
}

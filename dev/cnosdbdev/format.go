package cnosdbdev

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// resultFormat is an SQL answer format, chosen by the Accept header.
type resultFormat struct {
	name        string
	contentType string
}

var resultFormats = []resultFormat{
	{name: "csv", contentType: "text/csv"},
	{name: "tsv", contentType: "text/tsv"},
	{name: "json", contentType: "application/json"},
	{name: "nd-json", contentType: "application/nd-json"},
	{name: "table", contentType: "text/table"},
}

// resultFormatFor is get_result_format_from_header: no Accept, an empty
// one, "*/*" and "application/*" mean CSV; otherwise "application/" or
// "text/" must be followed by exactly one format name (any case). The
// error text is wrapped twice, as in CnosDB.
func resultFormatFor(accept string) (resultFormat, *apiError) {
	if accept == "" || accept == "application/*" || accept == "*/*" {
		return resultFormats[0], nil
	}
	name, ok := strings.CutPrefix(accept, "application/")
	if !ok {
		name, ok = strings.CutPrefix(accept, "text/")
	}
	if !ok {
		return resultFormat{}, errInvalidHeader("Invalid header: accept type not support: " + accept)
	}
	for _, f := range resultFormats {
		if strings.EqualFold(f.name, name) {
			return f, nil
		}
	}
	return resultFormat{}, errInvalidHeader("Invalid header: invalid variant: " + name)
}

// render writes an answer the way CnosDB's Arrow writers do. A statement
// without output (nil) gives an empty body in every format; a query
// without rows still has its header in CSV, TSV and table form.
func (f resultFormat) render(rs *resultSet) ([]byte, *apiError) {
	if rs == nil {
		return nil, nil
	}
	switch f.name {
	case "tsv":
		return renderDelimited(rs, '\t')
	case "json":
		return renderJSON(rs, false)
	case "nd-json":
		return renderJSON(rs, true)
	case "table":
		return renderTable(rs)
	}
	return renderDelimited(rs, ',')
}

// renderDelimited is arrow-csv's writer: a header line, '\n' line ends,
// fields quoted only when they hold the delimiter, a quote, '\r' or '\n',
// quotes doubled, NULL as an empty field, timestamps as
// %Y-%m-%dT%H:%M:%S.%9f whatever the precision.
func renderDelimited(rs *resultSet, delim byte) ([]byte, *apiError) {
	out := make([]byte, 0, 64+len(rs.rows)*16*len(rs.columns))
	fields := make([]string, len(rs.columns))
	for i, c := range rs.columns {
		fields[i] = c.name
	}
	out = appendRecord(out, fields, delim)
	var scratch []byte
	for r, row := range rs.rows {
		for i, c := range rs.columns {
			v := row[i]
			if v.typ == 0 {
				fields[i] = ""
				continue
			}
			if c.typ == resultTime {
				t, ok := timestampToTime(v.Int(), c.prec)
				if !ok {
					return nil, errFetchResult(fmt.Sprintf(
						"Csv error: Error processing row %d, col %d: Cast error: Failed to convert %d to datetime for %s",
						r+1, i+1, v.Int(), arrowTimestampType(c.prec)))
				}
				scratch = appendCSVTime(scratch[:0], t)
				fields[i] = string(scratch)
				continue
			}
			fields[i] = formatCell(v)
		}
		out = appendRecord(out, fields, delim)
	}
	return out, nil
}

// appendRecord writes one record with csv-core's "necessary" quoting. A
// record that is a single empty field is written as "" so that it is not
// an empty line.
func appendRecord(out []byte, fields []string, delim byte) []byte {
	if len(fields) == 1 && fields[0] == "" {
		return append(out, '"', '"', '\n')
	}
	for i, f := range fields {
		if i > 0 {
			out = append(out, delim)
		}
		if strings.IndexByte(f, delim) < 0 && !strings.ContainsAny(f, "\"\r\n") {
			out = append(out, f...)
			continue
		}
		out = append(out, '"')
		out = append(out, strings.ReplaceAll(f, `"`, `""`)...)
		out = append(out, '"')
	}
	return append(out, '\n')
}

// formatCell formats a non-time value as Arrow's display does.
func formatCell(v FieldValue) string {
	switch v.typ {
	case FieldString:
		return v.str
	case FieldFloat:
		return formatFloatArrow(v.Float())
	}
	return string(appendIntegerOrBool(nil, v))
}

func appendIntegerOrBool(dst []byte, v FieldValue) []byte {
	switch v.typ {
	case FieldInteger:
		return strconv.AppendInt(dst, v.Int(), 10)
	case FieldUnsigned:
		return strconv.AppendUint(dst, v.Uint(), 10)
	case FieldBoolean:
		return strconv.AppendBool(dst, v.Bool())
	}
	return dst
}

// renderJSON is arrow-json's ArrayWriter (or LineDelimitedWriter): one
// object per row with its keys in byte order (serde_json's map is a
// BTreeMap), NULLs and non-finite floats left out, floats written by
// ryu, timestamps as chrono's Debug format. No rows, no output.
func renderJSON(rs *resultSet, lineDelimited bool) ([]byte, *apiError) {
	if len(rs.rows) == 0 {
		return nil, nil
	}
	order := make([]int, len(rs.columns))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return rs.columns[order[a]].name < rs.columns[order[b]].name })
	// A name that appears twice keeps the last column's value, like a map.
	keep := make([]bool, len(order))
	for k, i := range order {
		keep[k] = k+1 == len(order) || rs.columns[order[k+1]].name != rs.columns[i].name
	}

	var out []byte
	if !lineDelimited {
		out = append(out, '[')
	}
	for r, row := range rs.rows {
		if r > 0 && !lineDelimited {
			out = append(out, ',')
		}
		out = append(out, '{')
		first := true
		for k, i := range order {
			v := row[i]
			if !keep[k] || v.typ == 0 {
				continue
			}
			c := rs.columns[i]
			var value []byte
			switch {
			case c.typ == resultTime:
				t, ok := timestampToTime(v.Int(), c.prec)
				if !ok {
					// arrow-json formats with to_string(), which panics on a
					// formatter error: the request dies with the handler.
					return nil, errHandlerPanic
				}
				value = appendJSONString(nil, string(appendDebugTime(nil, t)))
			case v.typ == FieldString:
				value = appendJSONString(nil, v.str)
			case v.typ == FieldFloat:
				f := v.Float()
				if math.IsNaN(f) || math.IsInf(f, 0) {
					continue
				}
				value = []byte(formatFloatRyu(f))
			default:
				value = appendIntegerOrBool(nil, v)
			}
			if !first {
				out = append(out, ',')
			}
			first = false
			out = appendJSONString(out, c.name)
			out = append(out, ':')
			out = append(out, value...)
		}
		out = append(out, '}')
		if lineDelimited {
			out = append(out, '\n')
		}
	}
	if !lineDelimited {
		out = append(out, ']')
	}
	return out, nil
}

// renderTable is arrow's pretty_format_batches (comfy-table, ASCII borders,
// one space of padding, left aligned).
func renderTable(rs *resultSet) ([]byte, *apiError) {
	cells := make([][]string, len(rs.rows))
	widths := make([]int, len(rs.columns))
	for i, c := range rs.columns {
		widths[i] = utf8.RuneCountInString(c.name)
	}
	for r, row := range rs.rows {
		cells[r] = make([]string, len(rs.columns))
		for i, c := range rs.columns {
			v := row[i]
			var s string
			switch {
			case v.typ == 0:
			case c.typ == resultTime:
				t, ok := timestampToTime(v.Int(), c.prec)
				if !ok {
					return nil, errFetchResult(fmt.Sprintf("Cast error: Failed to convert %d to datetime for %s",
						v.Int(), arrowTimestampType(c.prec)))
				}
				s = string(appendDebugTime(nil, t))
			default:
				s = formatCell(v)
			}
			cells[r][i] = s
			widths[i] = max(widths[i], utf8.RuneCountInString(s))
		}
	}
	var b strings.Builder
	border := func() {
		b.WriteByte('+')
		for _, w := range widths {
			b.WriteString(strings.Repeat("-", w+2))
			b.WriteByte('+')
		}
		b.WriteByte('\n')
	}
	line := func(values []string) {
		b.WriteByte('|')
		for i, v := range values {
			b.WriteByte(' ')
			b.WriteString(v)
			b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(v)+1))
			b.WriteByte('|')
		}
		b.WriteByte('\n')
	}
	names := make([]string, len(rs.columns))
	for i, c := range rs.columns {
		names[i] = c.name
	}
	border()
	line(names)
	border()
	for _, row := range cells {
		line(row)
	}
	if len(cells) > 0 {
		border()
	}
	return []byte(strings.TrimSuffix(b.String(), "\n")), nil
}

func arrowTimestampType(p precision) string {
	switch p {
	case precisionMS:
		return "Timestamp(Millisecond, None)"
	case precisionUS:
		return "Timestamp(Microsecond, None)"
	}
	return "Timestamp(Nanosecond, None)"
}

// chrono's NaiveDateTime covers years -262144 to 262143.
const (
	minChronoYear = -262144
	maxChronoYear = 262143
)

// timestampToTime converts a stored timestamp to a UTC time, reporting
// false outside chrono's range.
func timestampToTime(ts int64, p precision) (time.Time, bool) {
	per := p.unitsPerSecond()
	secs := ts / per
	sub := ts % per
	if sub < 0 {
		secs--
		sub += per
	}
	t := time.Unix(secs, sub*(1_000_000_000/per)).UTC()
	if y := t.Year(); y < minChronoYear || y > maxChronoYear {
		return time.Time{}, false
	}
	return t, true
}

// appendYear is chrono's %Y and its Debug year: four digits, with a sign
// outside 0..9999.
func appendYear(dst []byte, year int) []byte {
	switch {
	case year >= 0 && year <= 9999:
		return fmt.Appendf(dst, "%04d", year)
	case year > 9999:
		return fmt.Appendf(dst, "+%d", year)
	}
	return fmt.Appendf(dst, "-%04d", -year)
}

func appendDateAndClock(dst []byte, t time.Time) []byte {
	dst = appendYear(dst, t.Year())
	return fmt.Appendf(dst, "-%02d-%02dT%02d:%02d:%02d", int(t.Month()), t.Day(), t.Hour(), t.Minute(), t.Second())
}

// appendCSVTime formats %Y-%m-%dT%H:%M:%S.%9f.
func appendCSVTime(dst []byte, t time.Time) []byte {
	dst = appendDateAndClock(dst, t)
	return fmt.Appendf(dst, ".%09d", t.Nanosecond())
}

// appendDebugTime formats like chrono's NaiveDateTime Debug: the fraction
// has 3, 6 or 9 digits, or is left out when zero.
func appendDebugTime(dst []byte, t time.Time) []byte {
	dst = appendDateAndClock(dst, t)
	switch ns := t.Nanosecond(); {
	case ns == 0:
	case ns%1_000_000 == 0:
		dst = fmt.Appendf(dst, ".%03d", ns/1_000_000)
	case ns%1_000 == 0:
		dst = fmt.Appendf(dst, ".%06d", ns/1_000)
	default:
		dst = fmt.Appendf(dst, ".%09d", ns)
	}
	return dst
}

// shortestDigits returns the shortest decimal digits that round-trip f
// (f > 0, finite) and the exponent of the first digit: f ≈ 0.d1d2… × 10^(exp+1).
func shortestDigits(f float64) (digits string, exp int) {
	s := strconv.FormatFloat(f, 'e', -1, 64) // d.ddde±xx
	mantissa, expText, _ := strings.Cut(s, "e")
	e, _ := strconv.Atoi(expText)
	return strings.Replace(mantissa, ".", "", 1), e
}

// formatFloatArrow formats a DOUBLE like Arrow's display (lexical-core's
// defaults): "1.0" for integral values, plain notation for exponents from
// -5 to 9, otherwise "1.5e10" / "1.0e-7"; "NaN", "inf", "-inf".
func formatFloatArrow(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	sign := ""
	if math.Signbit(f) {
		sign = "-"
		f = -f
	}
	if f == 0 {
		return sign + "0.0"
	}
	digits, exp := shortestDigits(f)
	if exp < -5 || exp > 9 {
		frac := digits[1:]
		if frac == "" {
			frac = "0"
		}
		return sign + digits[:1] + "." + frac + "e" + strconv.Itoa(exp)
	}
	if exp >= 0 {
		if len(digits) <= exp+1 {
			return sign + digits + strings.Repeat("0", exp+1-len(digits)) + ".0"
		}
		return sign + digits[:exp+1] + "." + digits[exp+1:]
	}
	return sign + "0." + strings.Repeat("0", -exp-1) + digits
}

// formatFloatRyu formats like serde_json (ryu): plain notation while the
// decimal point is within 16 digits (and down to 1e-5), otherwise
// "1e20" / "1.5e-7".
func formatFloatRyu(f float64) string {
	sign := ""
	if math.Signbit(f) {
		sign = "-"
		f = -f
	}
	if f == 0 {
		return sign + "0.0"
	}
	digits, exp := shortestDigits(f)
	length := len(digits)
	kk := exp + 1 // position of the decimal point
	k := kk - length
	switch {
	case k >= 0 && kk <= 16:
		return sign + digits + strings.Repeat("0", k) + ".0"
	case kk > 0 && kk <= 16:
		return sign + digits[:kk] + "." + digits[kk:]
	case kk > -5 && kk <= 0:
		return sign + "0." + strings.Repeat("0", -kk) + digits
	case length == 1:
		return sign + digits + "e" + strconv.Itoa(kk-1)
	}
	return sign + digits[:1] + "." + digits[1:] + "e" + strconv.Itoa(kk-1)
}

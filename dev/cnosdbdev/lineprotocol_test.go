package cnosdbdev

import (
	"errors"
	"math"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

const defaultTestTime = -1

func tags(kv ...string) []Tag {
	var out []Tag
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, Tag{Key: kv[i], Value: kv[i+1]})
	}
	return out
}

func field(key string, v FieldValue) Field { return Field{Key: key, Value: v} }

func TestParse243Accepts(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  []Line
	}{
		{
			// CnosDB's own parser test (parser.rs test_line_parser, first case).
			name:  "cnosdb unit test: escapes and two lines",
			input: "ma,ta=2\\,,tb=1 fa=\"112\\\"3\",fb=2,fc=\"hello, world\" 1  \n mb,tb=2,tc=abc fa=1.3,fc=0.9,fs=\"\"",
			want: []Line{
				{Table: "ma", Tags: tags("ta", "2,", "tb", "1"), Fields: []Field{
					field("fa", stringValue(`112"3`)), field("fb", floatValue(2)), field("fc", stringValue("hello, world")),
				}, Time: 1},
				{Table: "mb", Tags: tags("tb", "2", "tc", "abc"), Fields: []Field{
					field("fa", floatValue(1.3)), field("fc", floatValue(0.9)), field("fs", stringValue("")),
				}, Time: defaultTestTime},
			},
		},
		{
			name:  "cnosdb unit test: all field types, fields sorted",
			input: "\n        somename,tag1=val1,tag2=val2  floatfield=1,strfield=\"hello\",intfield=-1i,uintfield=1u,boolfield=true  1602841605822791506\n        ",
			want: []Line{{Table: "somename", Tags: tags("tag1", "val1", "tag2", "val2"), Fields: []Field{
				field("boolfield", booleanValue(true)), field("floatfield", floatValue(1)), field("intfield", integerValue(-1)),
				field("strfield", stringValue("hello")), field("uintfield", unsignedValue(1)),
			}, Time: 1602841605822791506}},
		},
		{
			name:  "cnosdb unit test: escaped names and a raw newline in a string",
			input: "\ncomma\\,1,equals\\==e\\,x,two=val2 field\\=x=\"fir\\\"\n,st\\\\\"  1602841605822791506\n        \n            ",
			want: []Line{{Table: "comma,1", Tags: tags("equals=", "e,x", "two", "val2"), Fields: []Field{
				field("field=x", stringValue("fir\"\n,st\\")),
			}, Time: 1602841605822791506}},
		},
		{
			name:  "cnosdb unit test: unicode",
			input: "m,t1=中,t2=发,t3=majh f=\"白\n\"",
			want: []Line{{Table: "m", Tags: tags("t1", "中", "t2", "发", "t3", "majh"), Fields: []Field{
				field("f", stringValue("白\n")),
			}, Time: defaultTestTime}},
		},
		{
			name:  "no tags, no timestamp",
			input: "a f=1",
			want:  []Line{{Table: "a", Fields: []Field{field("f", floatValue(1))}, Time: defaultTestTime}},
		},
		{
			name:  "CRLF line ends, comments and blank lines",
			input: "# a comment\r\n\r\nm,t=a f=1i 10\r\n  # another\nm,t=b f=2i 20\r\n",
			want: []Line{
				{Table: "m", Tags: tags("t", "a"), Fields: []Field{field("f", integerValue(1))}, Time: 10},
				{Table: "m", Tags: tags("t", "b"), Fields: []Field{field("f", integerValue(2))}, Time: 20},
			},
		},
		{
			name:  "newline right after the fields",
			input: "m f=1\nm g=2\n",
			want: []Line{
				{Table: "m", Fields: []Field{field("f", floatValue(1))}, Time: defaultTestTime},
				{Table: "m", Fields: []Field{field("g", floatValue(2))}, Time: defaultTestTime},
			},
		},
		{
			name:  "measurement escapes",
			input: `my\ table\,x f=1 5`,
			want:  []Line{{Table: "my table,x", Fields: []Field{field("f", floatValue(1))}, Time: 5}},
		},
		{
			name:  `tag \\ \" \' kept as two bytes, \, \  \= unescaped`,
			input: `m,a\=b=x\ y,back=C:\\dir,dq=say\"hi\",sq=it\'s f=1 7`,
			want: []Line{{Table: "m", Tags: tags("a=b", "x y", "back", `C:\\dir`, "dq", `say\"hi\"`, "sq", `it\'s`),
				Fields: []Field{field("f", floatValue(1))}, Time: 7}},
		},
		{
			name:  `string field \" and \\ unescaped, \' kept`,
			input: `m s="a\"b\\c\'d" 1`,
			want:  []Line{{Table: "m", Fields: []Field{field("s", stringValue(`a"b\c\'d`))}, Time: 1}},
		},
		{
			name:  "duplicate keys: the first one wins",
			input: "m,t=1,t=2 f=1,g=2,f=3 9",
			want: []Line{{Table: "m", Tags: tags("t", "1"), Fields: []Field{
				field("f", floatValue(1)), field("g", floatValue(2)),
			}, Time: 9}},
		},
		{
			name:  "boolean spellings",
			input: "m a=t,b=T,c=true,d=True,e=TRUE,f=f,g=F,h=false,i=False,j=FALSE 1",
			want: []Line{{Table: "m", Fields: []Field{
				field("a", booleanValue(true)), field("b", booleanValue(true)), field("c", booleanValue(true)),
				field("d", booleanValue(true)), field("e", booleanValue(true)), field("f", booleanValue(false)),
				field("g", booleanValue(false)), field("h", booleanValue(false)), field("i", booleanValue(false)),
				field("j", booleanValue(false)),
			}, Time: 1}},
		},
		{
			name:  "numbers",
			input: "m a=1,b=-1.5e3,c=+2.,d=9223372036854775807i,e=-9223372036854775808i,f=18446744073709551615u,g=1e400,h=-.5 -3",
			want: []Line{{Table: "m", Fields: []Field{
				field("a", floatValue(1)), field("b", floatValue(-1500)), field("c", floatValue(2)),
				field("d", integerValue(math.MaxInt64)), field("e", integerValue(math.MinInt64)),
				field("f", unsignedValue(math.MaxUint64)), field("g", floatValue(math.Inf(1))), field("h", floatValue(-0.5)),
			}, Time: -3}},
		},
		{
			name:  "timestamp at the end of the body is read up to the first non-digit",
			input: "m f=1 100x",
			want:  []Line{{Table: "m", Fields: []Field{field("f", floatValue(1))}, Time: 100}},
		},
		{
			name:  "trailing spaces at the very end are fine",
			input: "m f=1  ",
			want:  []Line{{Table: "m", Fields: []Field{field("f", floatValue(1))}, Time: defaultTestTime}},
		},
		{
			name:  "field keys may hold spaces and commas",
			input: "m f=1,g h,i=2 3",
			want: []Line{{Table: "m", Fields: []Field{
				field("f", floatValue(1)), field("g h,i", floatValue(2)),
			}, Time: 3}},
		},
		{
			name:  "empty body",
			input: "",
			want:  []Line{},
		},
		{
			name:  "only newlines and comments",
			input: "\n\n# nothing\n\r\n",
			want:  []Line{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseLines243([]byte(tt.input), defaultTestTime)
			require.NoError(t, err)
			requireLines(t, tt.want, got)
		})
	}
}

func requireLines(t *testing.T, want, got []Line) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		require.Equal(t, want[i].Table, got[i].Table, "line %d table", i)
		require.Equal(t, len(want[i].Tags), len(got[i].Tags), "line %d tags %v", i, got[i].Tags)
		for j := range want[i].Tags {
			require.Equal(t, want[i].Tags[j], got[i].Tags[j], "line %d tag %d", i, j)
		}
		require.Equal(t, len(want[i].Fields), len(got[i].Fields), "line %d fields %v", i, got[i].Fields)
		for j, wf := range want[i].Fields {
			gf := got[i].Fields[j]
			require.Equal(t, wf.Key, gf.Key, "line %d field %d", i, j)
			require.Equal(t, wf.Value.Type(), gf.Value.Type(), "line %d field %s type", i, wf.Key)
			require.Equal(t, wf.Value, gf.Value, "line %d field %s", i, wf.Key)
		}
		require.Equal(t, want[i].Time, got[i].Time, "line %d time", i)
	}
}

func TestParse243Rejects(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  string
	}{
		{"no field (CnosDB e2e, issue 1533)", "test,t2=t22,f2=2 1642176000000000000", "unexpect end line start at '17'"},
		{"cnosdb unit test: tag without value", "log,host=domain.1,service=service-1,a,b,c d=1", "unexpect end line start at '36'"},
		{"leading dot", "m f=.5", "invalid field value: '.5'"},
		{"NaN", "m f=NaN", "invalid field value: 'NaN'"},
		{"word value", "m f=abc", "invalid field value: 'abc'"},
		{"float with i suffix", "m f=1.5i", "invalid field value: '1.5i'"},
		{"plus sign on integer", "m f=+1i", "invalid field value: '+1i'"},
		{"negative unsigned", "m f=-1u", "invalid field value: '-1u'"},
		{"integer overflow", "m f=9223372036854775808i", "invalid field value: '9223372036854775808i'"},
		{"odd boolean", "m f=tRUE", "invalid field value: 'tRUE'"},
		{"unquoted string end", `m f="abc`, "unexpect end line start at '4'"},
		{"Telegraf \\n escape in a tag", `m,t=a\nb f=1`, "unexpect token 'n' at 6"},
		{"Windows path in a tag", `m,t=C:\Windows f=1`, "unexpect token 'W' at 7"},
		{"Telegraf \\t escape in a string field", `m s="a\tb"`, "unexpect token 't' at 7"},
		{"= escape in a measurement", `m\=x f=1`, "unexpect token '=' at 2"},
		{"non-ASCII byte after a backslash is shown as Latin-1", "m,t=\\\xc3\xa9 f=1", "unexpect token 'Ã' at 5"},
		{"bad timestamp before the line end", "m f=1 12a\nm f=2", "fail to parse timestamp at 9"},
		{"space before the line end makes the next line a timestamp", "m f=1 \nm f=2 3\n", "fail to parse timestamp at 8"},
		{"space before the last line end", "m f=1 \n", "fail to parse timestamp at 6"},
		{"timestamp without digits at the end", "m f=1 x", "fail to parse timestamp at 6"},
		{"unescaped = with an escape elsewhere", `m,t=a=b\,c f=1`, "invalid line protocol syntax"},
		{"measurement only", "cpu", "unexpect end line start at '0'"},
		{"tag key only", "cpu,host", "unexpect end line start at '4'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseLines243([]byte(tt.input), defaultTestTime)
			var pe *ParseError
			require.ErrorAs(t, err, &pe)
			require.False(t, pe.Crash)
			require.Equal(t, tt.want, pe.Message)
		})
	}
}

func TestParseCrashInputs(t *testing.T) {
	// The 2.4.3 parser indexes the first byte of an empty field value and
	// panics. The 2.3 parser's search starts one byte after the '=', so it
	// never sees an empty value: it refuses the same input normally.
	for _, input := range []string{"m f=,g=1", "m f= 1", "m f=\nm f=1"} {
		_, err := parseLines243([]byte(input), 0)
		var pe *ParseError
		require.ErrorAs(t, err, &pe, "input %q", input)
		require.True(t, pe.Crash, "input %q", input)

		_, err = parseLines23([]byte(input), 0)
		require.ErrorAs(t, err, &pe, "input %q", input)
		require.False(t, pe.Crash, "input %q", input)
	}
}

func TestParse243QuirksThatAccept(t *testing.T) {
	// "-nan" and "+inf" start with a sign, so fast-float parses them.
	lines, err := parseLines243([]byte("m a=-nan,b=+inf,c=-Infinity 1"), 0)
	require.NoError(t, err)
	require.Len(t, lines, 1)
	require.True(t, math.IsNaN(lines[0].Fields[0].Value.Float()))
	require.True(t, math.IsInf(lines[0].Fields[1].Value.Float(), 1))
	require.True(t, math.IsInf(lines[0].Fields[2].Value.Float(), -1))

	// A value left empty at the very end of the body leaves a line with no
	// fields; the write path refuses it later.
	lines, err = parseLines243([]byte("m f="), 0)
	require.NoError(t, err)
	require.Len(t, lines, 1)
	require.Empty(t, lines[0].Fields)
}

func TestParse23(t *testing.T) {
	accepts := []struct {
		name  string
		input string
		want  []Line
	}{
		{
			name:  "backslashes stay",
			input: `m,t=C:\Windows s="a\tb" 5`,
			want:  []Line{{Table: "m", Tags: tags("t", `C:\Windows`), Fields: []Field{field("s", stringValue(`a\tb`))}, Time: 5}},
		},
		{
			name:  "escapes and two lines",
			input: "ma,ta=2\\,,tb=1 fa=\"112\\\"3\",fb=2 1\nmb f=1i",
			want: []Line{
				{Table: "ma", Tags: tags("ta", "2,", "tb", "1"), Fields: []Field{field("fa", stringValue(`112"3`)), field("fb", floatValue(2))}, Time: 1},
				{Table: "mb", Fields: []Field{field("f", integerValue(1))}, Time: defaultTestTime},
			},
		},
		{
			name:  "trailing garbage after a timestamp starts the next line",
			input: "m f=1 100",
			want:  []Line{{Table: "m", Fields: []Field{field("f", floatValue(1))}, Time: 100}},
		},
	}
	for _, tt := range accepts {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseLines23([]byte(tt.input), defaultTestTime)
			require.NoError(t, err)
			requireLines(t, tt.want, got)
		})
	}

	for _, input := range []string{"test,t2=t22,f2=2 1642176000000000000", "m", "m f=.5", ",m f=1", "m f=1 x"} {
		_, err := parseLines23([]byte(input), 0)
		require.Error(t, err, "input %q", input)
	}
}

func TestParseLineProtocolModesAndUTF8(t *testing.T) {
	body := []byte("m,t=a\xff f=1 1")
	_, err := ParseLineProtocol(Mode24, body, 0)
	require.ErrorIs(t, err, ErrInvalidUTF8)

	lines, err := ParseLineProtocol(Mode23, body, 0)
	require.NoError(t, err)
	require.Equal(t, "a\ufffd", lines[0].Tags[0].Value)

	_, err = ParseLineProtocol("9.9", body, 0)
	require.Error(t, err)
}

func TestRustLossyUTF8(t *testing.T) {
	tests := []struct{ in, want string }{
		{"ok", "ok"},
		{"a\xffb", "a\ufffdb"},
		{"\xe2\x82", "\ufffd"},                 // truncated 3-byte sequence: one replacement
		{"\xe2\x82x", "\ufffdx"},               // the same before ASCII
		{"\xf0\x80\x80", "\ufffd\ufffd\ufffd"}, // overlong: every byte on its own
		{"\xed\xa0\x80", "\ufffd\ufffd\ufffd"}, // surrogate
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, string(rustLossyUTF8([]byte(tt.in))), "%q", tt.in)
	}
}

func TestParsersNeverPanic(t *testing.T) {
	inputs := []string{
		"", "\n", "\n\n\n", "\r", " ", "#", "\\", ",", "=", "\"", "m", "m ", "m,", "m,t", "m,t=", "m,t=1",
		"m f", "m f=", "m f=\"", "m f=1 ", "m f=1 1 ", "m f=1\\", "m f=\\\"", "\\ ", "m,\\", "m f=1,", "m f=1,g",
		"m f=\"\\\"", "\xff\xfe", "m f=1 -", "m f=1 -9223372036854775809", "m f=-", "m f=+", "m f=1e", "m f=1e+",
		strings.Repeat("m,t=v f=1 1\n", 1000),
		"m,t=" + strings.Repeat("x", 1<<20) + " f=1",
		"m s=\"" + strings.Repeat("\\\"", 1<<19) + "\"",
		strings.Repeat("\\", 1<<20),
	}
	for _, in := range inputs {
		for _, parse := range []func([]byte, int64) ([]Line, error){parseLines243, parseLines23} {
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("parser panicked on %q: %v", truncate(in), r)
					}
				}()
				_, _ = parse([]byte(in), 0)
			}()
		}
	}
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

func FuzzParseLineProtocol(f *testing.F) {
	for _, seed := range []string{
		"m,t=a f=1 1", "m f=\"a\\\"b\" 2\n", "m\\ x,a\\,b=c\\=d f=1i,g=2u,h=t", "# c\r\nm f=1\r\n", "m f=,g=1",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, mode := range []string{Mode24, Mode23} {
			lines, err := ParseLineProtocol(mode, data, 0)
			if err != nil {
				var pe *ParseError
				if !errors.As(err, &pe) && !errors.Is(err, ErrInvalidUTF8) {
					t.Fatalf("unexpected error type %T: %v", err, err)
				}
				continue
			}
			// In 2.4 mode the body was valid UTF-8, so every name is.
			for _, l := range lines {
				if mode == Mode24 && !utf8.ValidString(l.Table) {
					t.Fatalf("invalid UTF-8 table name %q", l.Table)
				}
			}
		}
	})
}

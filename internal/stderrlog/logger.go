// Package stderrlog is a telegraf.Logger for plugins that run as child processes of
// Telegraf's execd plugins.
//
// Telegraf's own text logger starts every line with a timestamp, which hides the level
// from execd: execd keeps a child's level only when the line starts with "E! ", "W! ",
// "I! ", "D! " or "T! ". This logger writes exactly that, followed by the plugin's name,
// and leaves the timestamp to the Telegraf that reads the line.
package stderrlog

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/influxdata/telegraf"
)

// Logger writes one line per message to its writer (stderr by default).
type Logger struct {
	mu     *sync.Mutex
	w      io.Writer
	prefix string
	level  telegraf.LogLevel
}

// New returns a logger for the named plugin ("outputs.cnosdb") writing to stderr at
// the given level.
func New(source string, level telegraf.LogLevel) *Logger {
	return NewWriter(os.Stderr, source, level)
}

// NewWriter is New with another destination, for tests.
func NewWriter(w io.Writer, source string, level telegraf.LogLevel) *Logger {
	prefix := ""
	if source != "" {
		prefix = "[" + source + "] "
	}
	return &Logger{mu: &sync.Mutex{}, w: w, prefix: prefix, level: level}
}

// Level returns the most verbose level that is written.
func (l *Logger) Level() telegraf.LogLevel { return l.level }

// AddAttribute is accepted for interface compatibility; text lines carry no attributes.
func (*Logger) AddAttribute(string, interface{}) {}

func (l *Logger) print(level telegraf.LogLevel, msg string) {
	if level > l.level {
		return
	}
	// A message with newlines would arrive as several lines without a level.
	msg = strings.ReplaceAll(strings.TrimRight(msg, "\n"), "\n", " | ")
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "%s! %s%s\n", level.Indicator()[:1], l.prefix, msg)
}

// Errorf logs an error message, patterned after log.Printf.
func (l *Logger) Errorf(format string, args ...interface{}) {
	l.print(telegraf.Error, fmt.Sprintf(format, args...))
}

// Error logs an error message, patterned after log.Print.
func (l *Logger) Error(args ...interface{}) { l.print(telegraf.Error, fmt.Sprint(args...)) }

// Warnf logs a warning message, patterned after log.Printf.
func (l *Logger) Warnf(format string, args ...interface{}) {
	l.print(telegraf.Warn, fmt.Sprintf(format, args...))
}

// Warn logs a warning message, patterned after log.Print.
func (l *Logger) Warn(args ...interface{}) { l.print(telegraf.Warn, fmt.Sprint(args...)) }

// Infof logs an information message, patterned after log.Printf.
func (l *Logger) Infof(format string, args ...interface{}) {
	l.print(telegraf.Info, fmt.Sprintf(format, args...))
}

// Info logs an information message, patterned after log.Print.
func (l *Logger) Info(args ...interface{}) { l.print(telegraf.Info, fmt.Sprint(args...)) }

// Debugf logs a debug message, patterned after log.Printf.
func (l *Logger) Debugf(format string, args ...interface{}) {
	l.print(telegraf.Debug, fmt.Sprintf(format, args...))
}

// Debug logs a debug message, patterned after log.Print.
func (l *Logger) Debug(args ...interface{}) { l.print(telegraf.Debug, fmt.Sprint(args...)) }

// Tracef logs a trace message, patterned after log.Printf.
func (l *Logger) Tracef(format string, args ...interface{}) {
	l.print(telegraf.Trace, fmt.Sprintf(format, args...))
}

// Trace logs a trace message, patterned after log.Print.
func (l *Logger) Trace(args ...interface{}) { l.print(telegraf.Trace, fmt.Sprint(args...)) }

package pluginconf

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/BurntSushi/toml"
)

// secretKey matches the names of options that hold a secret: password, sasl_password,
// sasl_access_token, tls_key_pwd...
var secretKey = regexp.MustCompile(`(?i)(password|passwd|pwd|secret|token)`)

// lineKey matches the key at the start of a "key = value" line.
var lineKey = regexp.MustCompile(`^\s*"?([A-Za-z0-9_.-]+)"?\s*=`)

// hideSecret returns err, or, when it is a TOML syntax error on or after the value of
// an option holding a secret, an error that names only the line and the option. The
// TOML parser quotes the text it could not parse ("expected value but found
// \"hunter2\" instead" for a password written without quotes), and the error goes to
// Telegraf's log.
func hideSecret(data string, err error) error {
	var perr toml.ParseError
	if !errors.As(err, &perr) {
		return err
	}
	line := perr.Position.Line
	if key := keyOnLine(data, line); secretKey.MatchString(key) {
		return fmt.Errorf("toml: line %d: the value of %s does not parse (not shown, as it is a secret): write it as a string in double quotes", line, key)
	}
	if key := perr.LastKey[strings.LastIndex(perr.LastKey, ".")+1:]; secretKey.MatchString(key) {
		return fmt.Errorf("toml: line %d, after %s: a syntax error (not shown, as it may quote the secret value of %s): a string value goes in double quotes", line, key, key)
	}
	return err
}

// keyOnLine returns the key that line n (from 1) of data sets, or "".
func keyOnLine(data string, n int) string {
	i := 0
	for line := range strings.Lines(data) {
		if i++; i == n {
			if m := lineKey.FindStringSubmatch(line); m != nil {
				return m[1][strings.LastIndex(m[1], ".")+1:]
			}
			return ""
		}
	}
	return ""
}

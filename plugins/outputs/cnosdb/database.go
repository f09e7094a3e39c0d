package cnosdb

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// DatabaseOptions are the WITH options of CREATE DATABASE; an empty or zero option is
// left to CnosDB's default. They apply only when the plugin creates the database.
type DatabaseOptions struct {
	TTL           string `toml:"ttl"`            // "INF" or a duration like "30d"; CnosDB's default INF
	Shard         int    `toml:"shard"`          // default 1
	VnodeDuration string `toml:"vnode_duration"` // default "1year"
	Replica       int    `toml:"replica"`        // default 1
	Precision     string `toml:"precision"`      // "ms", "us" or "ns"; default "ns"
}

func (o DatabaseOptions) check() error {
	if o.Shard < 0 || o.Replica < 0 {
		return fmt.Errorf("shard (%d) and replica (%d) must not be negative", o.Shard, o.Replica)
	}
	switch strings.ToLower(o.Precision) {
	case "", "ns", "us", "ms":
	default:
		return fmt.Errorf("precision: %q is not one of \"ns\", \"us\", \"ms\"", o.Precision)
	}
	for name, v := range map[string]string{"ttl": o.TTL, "vnode_duration": o.VnodeDuration} {
		if strings.ContainsAny(v, "'\\") {
			return fmt.Errorf("%s: %q must not contain quotes or backslashes", name, v)
		}
	}
	return nil
}

// with returns the statement's WITH clause, or "" for all defaults.
func (o DatabaseOptions) with() string {
	var parts []string
	if o.TTL != "" {
		parts = append(parts, fmt.Sprintf("TTL '%s'", o.TTL))
	}
	if o.Shard > 0 {
		parts = append(parts, fmt.Sprintf("SHARD %d", o.Shard))
	}
	if o.VnodeDuration != "" {
		parts = append(parts, fmt.Sprintf("VNODE_DURATION '%s'", o.VnodeDuration))
	}
	if o.Replica > 0 {
		parts = append(parts, fmt.Sprintf("REPLICA %d", o.Replica))
	}
	if o.Precision != "" {
		parts = append(parts, fmt.Sprintf("PRECISION '%s'", strings.ToLower(o.Precision)))
	}
	if len(parts) == 0 {
		return ""
	}
	return " WITH " + strings.Join(parts, " ")
}

// createStatement quotes the name: CnosDB lower-cases unquoted identifiers, but takes
// the db parameter of a write as it is.
func createStatement(database string, o DatabaseOptions) string {
	return fmt.Sprintf(`CREATE DATABASE IF NOT EXISTS "%s"%s`, strings.ReplaceAll(database, `"`, `""`), o.with())
}

// createDatabase runs CREATE DATABASE IF NOT EXISTS on the first node that answers.
func (c *CnosDB) createDatabase(ctx context.Context) error {
	stmt := createStatement(c.Database, c.DatabaseOptions)
	var last error
	for _, n := range c.writer.nodes {
		_, answer, err := c.writer.client.sql(ctx, n, "", stmt)
		switch {
		case err != nil:
			last = fmt.Errorf("%s: %w", n.base, err)
			continue
		case answer != nil:
			return fmt.Errorf("%s: %s: %w", n.base, stmt, answer)
		}
		c.Log.Infof("ensured database %q exists (%s)", c.Database, stmt)
		return nil
	}
	return last
}

// ping asks a node for its version.
func ping(ctx context.Context, cl *client, n *node) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.base+"/api/v1/ping", nil)
	if err != nil {
		return "", err
	}
	resp, err := cl.http.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var answer struct {
		Version string `json:"version"`
		Status  string `json:"status"`
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("ping answered HTTP %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
		return "", fmt.Errorf("ping answer: %w", err)
	}
	return answer.Version, nil
}

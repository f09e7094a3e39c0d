package pluginconf

import (
	"fmt"
	"os"
)

// ExposedSecretWarning returns a warning when the configuration file at path holds a
// secret and every user of the machine may read it, or "" when it is private enough.
func ExposedSecretWarning(path string, holdsSecret bool) string {
	if path == "" || !holdsSecret {
		return ""
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm()&0o004 == 0 {
		return ""
	}
	return fmt.Sprintf("%s holds a password and every user of this machine may read it (mode %s): "+
		"chmod o-r %s, or keep the password in a Telegraf secret store", path, info.Mode().Perm(), path)
}

package main

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/kafkatest"
)

// machine describes where the benchmark ran, for the report: CPUs, model, memory
// and kernel.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if name, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
				break
			}
		}
	}
	memory := "unknown memory"
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				if kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64); err == nil {
					memory = fmt.Sprintf("%.1f GiB memory", float64(kb)/(1<<20))
				}
			}
		}
	}
	kernel := "unknown kernel"
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = "Linux " + strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("%d CPUs (%s), %s, %s", runtime.NumCPU(), model, memory, kernel)
}

// versions names what was measured and what measured it.
func versions(e *env) string {
	sarama := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/IBM/sarama" {
				sarama = d.Version
			}
		}
	}
	return fmt.Sprintf("plugins %s, Telegraf %s, Apache Kafka %s (KRaft, loopback), sarama %s, kcat %s, %s",
		commandVersion(e.inputBin, `(\S+)\s*$`, "-version"), e.version, kafkatest.KafkaVersion, sarama,
		commandVersion("kcat", `Version (\S+)`, "-V"), runtime.Version())
}

// commandVersion runs name with args and picks the version out of its output.
func commandVersion(name, pattern string, args ...string) string {
	out, _ := exec.Command(name, args...).CombinedOutput()
	for line := range strings.SplitSeq(string(out), "\n") {
		if m := regexp.MustCompile(pattern).FindStringSubmatch(strings.TrimSpace(line)); m != nil {
			return m[1]
		}
	}
	return "unknown"
}

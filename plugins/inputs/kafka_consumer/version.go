package kafka_consumer

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/influxdata/telegraf/plugins/common/kafka"
)

// probeTimeout bounds asking the brokers for their API versions when kafka_version is
// unset: connecting, and the one request and its answer.
const probeTimeout = 10 * time.Second

// Kafka's API keys that this input's client sends, by the names Kafka gives them.
const (
	apiProduce      int16 = 0
	apiFetch        int16 = 1
	apiListOffsets  int16 = 2
	apiMetadata     int16 = 3
	apiOffsetCommit int16 = 8
	apiOffsetFetch  int16 = 9
	apiJoinGroup    int16 = 11
	apiListGroups   int16 = 16
	apiApiVersions  int16 = 18
)

var apiNames = map[int16]string{
	apiProduce:      "Produce",
	apiFetch:        "Fetch",
	apiListOffsets:  "ListOffsets",
	apiMetadata:     "Metadata",
	apiOffsetCommit: "OffsetCommit",
	apiOffsetFetch:  "OffsetFetch",
	apiJoinGroup:    "JoinGroup",
	apiListGroups:   "ListGroups",
	apiApiVersions:  "ApiVersions",
}

// apiRanges are the versions of each API a broker serves, by API key.
type apiRanges map[int16]sarama.ApiVersionsResponseKey

// releaseMarker is the first Kafka release whose brokers serve an API up to a version
// (or, for Kafka 4, no longer serve it below one), so that the answer to ApiVersions
// tells the release. Kafka's own ApiVersions request does not name the release.
type releaseMarker struct {
	version sarama.KafkaVersion
	api     int16
	max     int16 // the broker serves api up to at least this version
	min     int16 // or, when set, serves nothing of api below this version
}

// releaseMarkers, newest first. Kafka 4 is told by what it dropped (KIP-896): it
// serves Fetch from v4 only, where every release before served v0. The releases
// between 2.8 and 4.0 change nothing this client sends, so 3.1, the first to serve
// Fetch v13, stands for them all.
var releaseMarkers = []releaseMarker{
	{version: sarama.V4_0_0_0, api: apiFetch, min: 4},
	{version: sarama.V3_1_0_0, api: apiFetch, max: 13},
	{version: sarama.V2_8_0_0, api: apiMetadata, max: 11},
	{version: sarama.V2_7_0_0, api: apiFetch, max: 12},
	{version: sarama.V2_6_0_0, api: apiListGroups, max: 4},
	{version: sarama.V2_5_0_0, api: apiOffsetFetch, max: 7},
	{version: sarama.V2_4_0_0, api: apiApiVersions, max: 3},
	{version: sarama.V2_3_0_0, api: apiFetch, max: 11},
	{version: sarama.V2_2_0_0, api: apiListOffsets, max: 5},
	{version: sarama.V2_1_0_0, api: apiFetch, max: 10},
	{version: sarama.V2_0_0_0, api: apiFetch, max: 8},
	{version: sarama.V1_1_0_0, api: apiFetch, max: 7},
	{version: sarama.V1_0_0_0, api: apiFetch, max: 6},
	{version: sarama.V0_11_0_0, api: apiFetch, max: 5},
}

// releaseOf returns the newest Kafka release the broker's APIs prove, and the API
// that proves it. Brokers older than every marker get Telegraf's default, 0.10.2.0,
// the oldest release with consumer groups.
func releaseOf(apis apiRanges) (sarama.KafkaVersion, string) {
	for _, m := range releaseMarkers {
		r, ok := apis[m.api]
		if !ok {
			continue
		}
		if m.min > 0 && r.MinVersion >= m.min {
			return m.version, fmt.Sprintf("%s from v%d only", apiNames[m.api], r.MinVersion)
		}
		if m.min == 0 && r.MaxVersion >= m.max {
			return m.version, fmt.Sprintf("%s up to v%d", apiNames[m.api], r.MaxVersion)
		}
	}
	return sarama.V0_10_2_0, "no API of Kafka 0.11 or newer"
}

// releaseName is how the log names a release: "Kafka 4.x" for what stands for a
// series, else the release.
func releaseName(v sarama.KafkaVersion) string {
	switch {
	case v.IsAtLeast(sarama.V4_0_0_0):
		return "Kafka 4.x"
	case v.IsAtLeast(sarama.V3_1_0_0):
		return "Kafka 3.1 or newer"
	}
	return "Kafka " + strings.TrimSuffix(v.String(), ".0")
}

// brokerAPIs asks one broker which API versions it serves. ApiVersions is the one
// request every broker answers whatever its release and before authentication
// (KIP-35, KIP-43), so the connection skips SASL and sends version 0 of it.
func brokerAPIs(addr string, base *sarama.Config, timeout time.Duration) (apiRanges, error) {
	cfg := *base
	cfg.Net.SASL.Enable = false
	cfg.ApiVersionsRequest = false
	cfg.Net.DialTimeout = timeout
	cfg.Net.ReadTimeout = timeout
	cfg.Net.WriteTimeout = timeout
	b := sarama.NewBroker(addr)
	if err := b.Open(&cfg); err != nil {
		return nil, fmt.Errorf("broker %s: %w", addr, err)
	}
	defer b.Close()
	if _, err := b.Connected(); err != nil {
		return nil, fmt.Errorf("broker %s: %w", addr, err)
	}
	resp, err := b.ApiVersions(&sarama.ApiVersionsRequest{Version: 0})
	if err != nil {
		return nil, fmt.Errorf("broker %s: asking for API versions: %w", addr, err)
	}
	if kerr := sarama.KError(resp.ErrorCode); kerr != sarama.ErrNoError {
		return nil, fmt.Errorf("broker %s: asking for API versions: %w", addr, kerr)
	}
	apis := make(apiRanges, len(resp.ApiKeys))
	for _, key := range resp.ApiKeys {
		apis[key.ApiKey] = key
	}
	return apis, nil
}

// brokerRelease is what one broker answered.
type brokerRelease struct {
	addr    string
	apis    apiRanges
	version sarama.KafkaVersion
	why     string
}

// askBrokers asks every broker of the list at once, each within timeout. It returns
// the brokers that answered, in the list's order, and the errors of the others.
func askBrokers(brokers []string, cfg *sarama.Config, timeout time.Duration) ([]brokerRelease, error) {
	answers := make([]*brokerRelease, len(brokers))
	errs := make([]error, len(brokers))
	var wg sync.WaitGroup
	for i, addr := range brokers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			apis, err := brokerAPIs(addr, cfg, timeout)
			if err != nil {
				errs[i] = err
				return
			}
			v, why := releaseOf(apis)
			answers[i] = &brokerRelease{addr: addr, apis: apis, version: v, why: why}
		}()
	}
	wg.Wait()
	var out []brokerRelease
	for _, a := range answers {
		if a != nil {
			out = append(out, *a)
		}
	}
	return out, errors.Join(errs...)
}

// probeVersion returns the Kafka version to speak to the brokers: the newest release
// that every broker of the list that answers proves, so that during a rolling upgrade
// the client speaks the older one. It fails only when no broker answers; the error
// names each broker. why says what chose the version, for the log.
func probeVersion(brokers []string, cfg *sarama.Config, timeout time.Duration) (version sarama.KafkaVersion, why string, err error) {
	answers, err := askBrokers(brokers, cfg, timeout)
	if len(answers) == 0 {
		return sarama.KafkaVersion{}, "", err
	}
	oldest := answers[0]
	for _, a := range answers[1:] {
		if !a.version.IsAtLeast(oldest.version) {
			oldest = a
		}
	}
	if len(answers) == 1 {
		return oldest.version, fmt.Sprintf("the broker at %s serves %s APIs (%s)", oldest.addr, releaseName(oldest.version), oldest.why), nil
	}
	addrs := make([]string, 0, len(answers))
	for _, a := range answers {
		addrs = append(addrs, a.addr)
	}
	why = fmt.Sprintf("the brokers at %s serve %s APIs or newer (%s: %s)", strings.Join(addrs, ", "),
		releaseName(oldest.version), oldest.addr, oldest.why)
	return oldest.version, why, nil
}

// since is the request version that sarama sends from a Kafka version on.
type since struct {
	from    sarama.KafkaVersion
	version int16
}

// sentFrom returns the version of the last of steps that v reaches, 0 for none.
func sentFrom(v sarama.KafkaVersion, steps ...since) int16 {
	var out int16
	for _, s := range steps {
		if v.IsAtLeast(s.from) {
			out = s.version
		}
	}
	return out
}

// sentVersions are the versions of the APIs the consumer sends when it speaks
// version v, as sarama chooses them; sarama exports the choice for some only.
func sentVersions(v sarama.KafkaVersion) map[int16]int16 {
	return map[int16]int16{
		// sarama's brokerConsumer.fetchNewMessages.
		apiFetch: sentFrom(v, since{sarama.V0_9_0_0, 1}, since{sarama.V0_10_0_0, 2}, since{sarama.V0_10_1_0, 3},
			since{sarama.V0_11_0_0, 5}, since{sarama.V1_0_0_0, 6}, since{sarama.V1_1_0_0, 7}, since{sarama.V2_0_0_0, 8},
			since{sarama.V2_1_0_0, 10}, since{sarama.V2_3_0_0, 11}),
		// sarama's consumerGroup.joinGroupRequest.
		apiJoinGroup: sentFrom(v, since{sarama.V0_10_1_0, 1}, since{sarama.V0_11_0_0, 2}, since{sarama.V2_0_0_0, 3},
			since{sarama.V2_2_0_0, 4}, since{sarama.V2_3_0_0, 5}, since{sarama.V2_4_0_0, 6}),
		// sarama's offsetManager.constructRequest.
		apiOffsetCommit: sentFrom(v, since{sarama.V0_9_0_0, 2}, since{sarama.V0_11_0_0, 3}, since{sarama.V2_0_0_0, 4},
			since{sarama.V2_1_0_0, 6}, since{sarama.V2_3_0_0, 7}),
		apiOffsetFetch: sarama.NewOffsetFetchRequest(v, "", nil).Version,
		apiListOffsets: sarama.NewOffsetRequest(v).Version,
		apiMetadata:    sarama.NewMetadataRequest(v, nil).Version,
	}
}

// refused lists the APIs that the broker no longer serves at the versions that
// speaking v sends, as "Fetch v3 (served: v4 to v17)", in the order of their keys.
func refused(apis apiRanges, v sarama.KafkaVersion) []string {
	sent := sentVersions(v)
	keys := make([]int16, 0, len(sent))
	for k := range sent {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	var out []string
	for _, k := range keys {
		r, ok := apis[k]
		if ok && sent[k] < r.MinVersion {
			out = append(out, fmt.Sprintf("%s v%d (served: v%d to v%d)", apiNames[k], sent[k], r.MinVersion, r.MaxVersion))
		}
	}
	return out
}

// useVersion makes cfg speak v, with what Telegraf's Kafka options derive from the
// version: the SASL handshake version unless sasl_version is set, and whether the
// client may ask brokers for their API versions (not with a version 0 handshake).
func (k *KafkaConsumer) useVersion(cfg *sarama.Config, v sarama.KafkaVersion) error {
	cfg.Version = v
	if cfg.Net.SASL.Enable && k.SASLVersion == nil {
		sv, err := kafka.SASLVersion(v, nil)
		if err != nil {
			return fmt.Errorf("sasl_version: %w", err)
		}
		cfg.Net.SASL.Version = sv
		cfg.ApiVersionsRequest = sv != sarama.SASLHandshakeV0
	}
	if err := k.membership(cfg); err != nil {
		return err
	}
	return k.isolation(cfg)
}

// versionOption returns the option that sets the version and its value, or "" when
// none does. Telegraf takes both kafka_version and the Kafka options' version (the
// name before Telegraf 1.28), and version wins.
func (k *KafkaConsumer) versionOption() (option, value string) {
	if k.ReadConfig.Version != "" {
		return "version", k.ReadConfig.Version
	}
	if k.Version != "" {
		return "kafka_version", k.Version
	}
	return "", ""
}

// chooseVersion asks the brokers for their version when kafka_version is unset, and
// makes the client speak it. Stock Telegraf then speaks 0.10.2.0, which Kafka 4
// brokers answer by closing the connection, so that it never reads a message.
func (k *KafkaConsumer) chooseVersion() error {
	if option, _ := k.versionOption(); option != "" || k.versionChosen {
		return nil
	}
	v, why, err := probeVersion(k.Brokers, k.config, probeTimeout)
	if err != nil {
		// The brokers are out of reach; the client will say so when it connects,
		// and speaks stock Telegraf's version meanwhile.
		k.Log.Warnf("kafka_version unset and no broker answered when asked for its version, so using %s as Telegraf does: %v",
			k.config.Version, err)
		k.versionChosen = true
		if err := k.membership(k.config); err != nil {
			return err
		}
		return k.isolation(k.config)
	}
	k.versionChosen = true
	if err := k.useVersion(k.config, v); err != nil {
		return err
	}
	k.Log.Infof("kafka_version unset: %s; using %s", why, v)
	return nil
}

// refusalRecheck is how often at most an EOF from the client sends the brokers
// another ApiVersions request, to tell whether they refuse the version spoken.
const refusalRecheck = time.Minute

// refusalState remembers which brokers were found to refuse the version spoken.
type refusalState struct {
	mu        sync.Mutex
	checked   time.Time
	explained map[string]bool
}

// explainRefusal tells whether err, an EOF from the client, is a broker closing the
// connection on a request version it no longer serves. The broker says nothing else:
// the client sees EOF, every few seconds and forever. The first time a broker is
// found to refuse, it logs at E! which request, what the broker serves, and the
// kafka_version to set; the EOFs that follow are the same story and are not reported.
func (k *KafkaConsumer) explainRefusal(err error) bool {
	if !errors.Is(err, io.EOF) {
		return false
	}
	s := &k.refusal
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.explained) > 0 {
		return true
	}
	if time.Since(s.checked) < refusalRecheck {
		return false
	}
	s.checked = time.Now()
	answers, _ := askBrokers(k.Brokers, k.config, probeTimeout/2)
	option, value := k.versionOption()
	spoken := fmt.Sprintf("%s = %q", option, value)
	if option == "" {
		spoken = fmt.Sprintf("kafka_version unset (%q, as in Telegraf)", k.config.Version.String())
	}
	for _, a := range answers {
		list := refused(a.apis, k.config.Version)
		if len(list) == 0 {
			continue
		}
		if s.explained == nil {
			s.explained = make(map[string]bool)
		}
		s.explained[a.addr] = true
		k.Log.Errorf("broker %s closes the connection on %s, which %s selects: it serves %s APIs. "+
			"Set kafka_version = %q, or leave it unset to have the brokers asked; until then nothing is read from it",
			a.addr, strings.Join(list, ", "), spoken, releaseName(a.version), a.version.String())
	}
	return len(s.explained) > 0
}

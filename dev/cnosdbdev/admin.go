package cnosdbdev

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// AdminStats is the answer of GET /stats.
type AdminStats struct {
	Server *Stats      `json:"server,omitempty"` // absent when the backend is a real CnosDB
	Faults FaultStats  `json:"faults"`
	State  FaultState  `json:"state"`
	Target AdminTarget `json:"target"`
}

// AdminTarget describes what the front serves.
type AdminTarget struct {
	URL     string `json:"url"`
	Mode    string `json:"mode,omitempty"`    // emulator only
	Version string `json:"version,omitempty"` // emulator only
}

// FaultRequest is the body of POST /faults. Every member that is present
// is applied, in the order respond, latency, drop, refuse.
type FaultRequest struct {
	Respond *RespondFault `json:"respond,omitempty"`
	Latency *string       `json:"latency,omitempty"` // Go duration, "0s" removes it
	Drop    *bool         `json:"drop,omitempty"`
	Refuse  *bool         `json:"refuse,omitempty"`
}

// RespondFault is the "respond" member of a FaultRequest: answer the next
// Count requests to Path ("*" for every path; Count < 0: until cleared)
// with Status and Body.
type RespondFault struct {
	Path   string `json:"path"`
	Status int    `json:"status"`
	Body   string `json:"body"`
	Count  int    `json:"count"`
}

// NewAdminHandler serves the admin API for front; dev is the emulator
// behind it, or nil when the front proxies to a real CnosDB.
func NewAdminHandler(front *Front, dev *Server) http.Handler {
	a := &admin{front: front, dev: dev}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", a.stats)
	mux.HandleFunc("GET /faults", a.state)
	mux.HandleFunc("POST /faults", a.setFault)
	mux.HandleFunc("DELETE /faults", a.clear)
	return mux
}

type admin struct {
	front *Front
	dev   *Server
}

func (a *admin) stats(w http.ResponseWriter, _ *http.Request) {
	out := AdminStats{
		Faults: a.front.Faults().Stats(),
		State:  a.front.Faults().State(),
		Target: AdminTarget{URL: a.front.URL()},
	}
	if a.dev != nil {
		st := a.dev.Stats()
		out.Server = &st
		out.Target.Mode = a.dev.Mode()
		out.Target.Version = a.dev.Version()
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *admin) state(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, a.front.Faults().State())
}

func (a *admin) setFault(w http.ResponseWriter, r *http.Request) {
	var req FaultRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "decode fault request: " + err.Error()})
		return
	}
	if err := a.apply(req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, a.front.Faults().State())
}

func (a *admin) apply(req FaultRequest) error {
	var latency time.Duration
	if req.Latency != nil {
		d, err := time.ParseDuration(*req.Latency)
		if err != nil || d < 0 {
			return fmt.Errorf("latency %q is not a non-negative Go duration", *req.Latency)
		}
		latency = d
	}
	if req.Respond != nil {
		if req.Respond.Path == "" {
			return fmt.Errorf("respond needs a path (or %q)", AnyPath)
		}
		if req.Respond.Status < 100 || req.Respond.Status > 999 {
			return fmt.Errorf("respond status %d is not an HTTP status", req.Respond.Status)
		}
		if req.Respond.Count == 0 {
			return fmt.Errorf("respond count 0 would do nothing; use a negative count for 'until cleared'")
		}
	}
	if req.Respond == nil && req.Latency == nil && req.Drop == nil && req.Refuse == nil {
		return fmt.Errorf("empty fault request: set respond, latency, drop or refuse")
	}
	f := a.front.Faults()
	if req.Respond != nil {
		f.Respond(req.Respond.Path, req.Respond.Status, req.Respond.Body, req.Respond.Count)
	}
	if req.Latency != nil {
		f.SetLatency(latency)
	}
	if req.Drop != nil {
		f.Drop(*req.Drop)
	}
	if req.Refuse != nil {
		f.Refuse(*req.Refuse)
		if err := a.front.Err(); err != nil {
			return err
		}
	}
	return nil
}

func (a *admin) clear(w http.ResponseWriter, _ *http.Request) {
	a.front.Faults().Clear()
	if err := a.front.Err(); err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, a.front.Faults().State())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode answer: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// Renders templates with Go's own text/template, for comparison with the Rust
// renderer. Reads a JSON list of templates on stdin, prints a JSON list of
// results; each result is the output or "ERROR".
package main

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"text/template"
)

type BackendServer struct {
	Address string
	Weight  int
}

type ConfigData struct {
	FrontendControlPlanePort string
	BackendControlPlanePort  string
	BackendServers           map[string]BackendServer
	IPv6                     bool
}

func main() {
	var templates []string
	if err := json.NewDecoder(os.Stdin).Decode(&templates); err != nil {
		panic(err)
	}
	datas := []ConfigData{
		{"6443", "6443", map[string]BackendServer{"cp-b": {"172.18.0.3", 100}, "cp-a": {"172.18.0.2", 50}}, false},
		{"7777", "6443", map[string]BackendServer{"n1": {"fd00::2", 100}}, true},
		{"6443", "6443", map[string]BackendServer{}, false},
	}
	out := [][]string{}
	for _, src := range templates {
		row := []string{}
		for _, d := range datas {
			t, err := template.New("t").Funcs(template.FuncMap{"JoinHostPort": net.JoinHostPort}).Parse(src)
			if err != nil {
				row = append(row, "ERROR")
				continue
			}
			var b bytes.Buffer
			if err := t.Execute(&b, d); err != nil {
				row = append(row, "ERROR")
				continue
			}
			row = append(row, b.String())
		}
		out = append(out, row)
	}
	_ = json.NewEncoder(os.Stdout).Encode(out)
}

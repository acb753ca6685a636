// alert-eval evaluates a Prometheus alerting rules file with Prometheus's own rule engine
// (github.com/prometheus/prometheus/rules) over series a test describes, minute by minute, and
// prints every alert's state and expanded annotations at the end as JSON.
//
// Affidavit ships its alerts as a rules file (charts/affidavit/alerts); parsing them proves the
// syntax, and matching their series against a real scrape proves the names. Whether each alert
// fires when it should (its expression, its `for`, its templates) takes Prometheus's evaluator,
// and no Prometheus binary can be had here: promtool's build pulls in every service discovery's
// SDK. This program links only the rule engine, the PromQL engine and the TSDB.
//
// Input on stdin (JSON):
//
//	{"rules": "path/to/rules.yaml", "interval": "1m", "duration": "60m",
//	 "series": [{"series": "metric{label=\"v\"}", "values": "0+1x60"}]}
//
// "values" is promqltest's expanding notation (0+1x60, 1x30 _x5 ...), one value per interval
// from time 0. The rules are evaluated every interval from 0 to "duration".
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/tsdb"
)

type series struct {
	Series string `json:"series"`
	Values string `json:"values"`
}

type input struct {
	Rules    string   `json:"rules"`
	Interval string   `json:"interval"`
	Duration string   `json:"duration"`
	Series   []series `json:"series"`
}

type alert struct {
	State       string            `json:"state"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	Value       float64           `json:"value"`
}

type result struct {
	State  string  `json:"state"`
	Alerts []alert `json:"alerts"`
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "alert-eval: "+format+"\n", args...)
	os.Exit(2)
}

func main() {
	var in input
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		fail("reading the input: %v", err)
	}
	interval, err := model.ParseDuration(in.Interval)
	if err != nil {
		fail("interval: %v", err)
	}
	duration, err := model.ParseDuration(in.Duration)
	if err != nil {
		fail("duration: %v", err)
	}
	p := parser.NewParser(parser.Options{})
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))

	dir, err := os.MkdirTemp("", "alert-eval-")
	if err != nil {
		fail("%v", err)
	}
	defer os.RemoveAll(dir)
	db, err := tsdb.Open(dir, logger, nil, tsdb.DefaultOptions(), nil)
	if err != nil {
		fail("opening the TSDB: %v", err)
	}
	defer db.Close()

	ctx := context.Background()
	app := db.Appender(ctx)
	step := time.Duration(interval)
	for _, s := range in.Series {
		lbls, values, err := p.ParseSeriesDesc(s.Series + " " + s.Values)
		if err != nil {
			fail("series %q: %v", s.Series, err)
		}
		for i, v := range values {
			if v.Omitted {
				continue
			}
			ts := time.Duration(i) * step
			if _, err := app.Append(0, lbls, ts.Milliseconds(), v.Value); err != nil {
				fail("appending %s: %v", lbls, err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		fail("committing the samples: %v", err)
	}

	groups, errs := rulefmt.ParseFile(in.Rules, false, model.UTF8Validation, p, logger)
	if len(errs) > 0 {
		fail("the rules: %v", errs)
	}
	engine := promql.NewEngine(promql.EngineOpts{
		Logger: logger, MaxSamples: 1_000_000, Timeout: time.Minute, LookbackDelta: 5 * time.Minute,
		Parser: p,
	})
	query := rules.EngineQueryFunc(engine, db)

	alerting := map[string]*rules.AlertingRule{}
	var order []*rules.AlertingRule
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			expr, err := p.ParseExpr(r.Expr)
			if err != nil {
				fail("%s: %v", r.Alert, err)
			}
			rule := rules.NewAlertingRule(
				r.Alert, expr, time.Duration(r.For), time.Duration(r.KeepFiringFor),
				labels.FromMap(r.Labels), labels.FromMap(r.Annotations), labels.EmptyLabels(), "",
				false, logger,
			)
			alerting[r.Alert] = rule
			order = append(order, rule)
		}
	}

	start := time.Unix(0, 0).UTC()
	for at := time.Duration(0); at <= time.Duration(duration); at += step {
		for _, rule := range order {
			if _, err := rule.Eval(ctx, 0, start.Add(at), query, nil, 0); err != nil {
				fail("%s at %s: %v", rule.Name(), at, err)
			}
		}
	}

	out := map[string]result{}
	for name, rule := range alerting {
		// The rule's own State() is its group's, which this program does not run: the
		// strongest state of its alerts stands for it.
		res := result{State: "inactive", Alerts: []alert{}}
		for _, a := range rule.ActiveAlerts() {
			state := a.State.String()
			if state == "firing" || res.State == "inactive" {
				res.State = state
			}
			res.Alerts = append(res.Alerts, alert{
				State: state, Labels: a.Labels.Map(), Annotations: a.Annotations.Map(),
				Value: a.Value,
			})
		}
		out[name] = res
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		fail("%v", err)
	}
}

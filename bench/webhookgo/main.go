// Command webhookgo is the Go side of `python -m bench webhook`: a controller-runtime
// webhook server with a trivial validating webhook (the peer kube-informer's webhook
// server is measured against), and an open-loop HTTPS load generator that sends the same
// AdmissionReview bodies to either server at a fixed rate.
//
//	webhookgo serve --port 9443 --cert-dir DIR             # serves /validate until SIGTERM
//	webhookgo load --url https://127.0.0.1:9443/validate --ca ca.crt --body review.json \
//	    --rate 500 --duration 10s --timeout 10s            # prints one JSON line of results
//
// The load generator starts one request every 1/rate seconds whatever the answers take
// (open loop: a slow server cannot slow the arrivals down and hide its latency), over
// kept-alive connections as kube-apiserver's webhook client uses them (at most 25 idle
// per host), and reports the latency percentiles of every request started after the
// warm-up.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"sync"
	"syscall"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: webhookgo serve|load [flags]")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		serve(os.Args[2:])
	case "load":
		load(os.Args[2:])
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
}

func serve(args []string) {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	port := fs.Int("port", 9443, "port")
	certDir := fs.String("cert-dir", "", "folder holding tls.crt and tls.key")
	_ = fs.Parse(args)
	server := webhook.NewServer(webhook.Options{Host: "127.0.0.1", Port: *port, CertDir: *certDir})
	// The trivial validating webhook: allow everything, as the Python peer does.
	server.Register("/validate", &admission.Webhook{
		Handler: admission.HandlerFunc(func(ctx context.Context, req admission.Request) admission.Response {
			return admission.Allowed("")
		}),
	})
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	fmt.Println("serving")
	if err := server.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

type result struct {
	Sent        int     `json:"sent"`
	OK          int     `json:"ok"`
	Errors      int     `json:"errors"`
	OverTimeout int     `json:"over_timeout"`
	Seconds     float64 `json:"seconds"`
	RPS         float64 `json:"rps"`
	P50         float64 `json:"p50_ms"`
	P99         float64 `json:"p99_ms"`
	Max         float64 `json:"max_ms"`
	FirstError  string  `json:"first_error,omitempty"`
}

func load(args []string) {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	url := fs.String("url", "", "webhook URL")
	caFile := fs.String("ca", "", "CA certificate (PEM)")
	bodyFile := fs.String("body", "", "AdmissionReview body (JSON)")
	rate := fs.Float64("rate", 500, "requests per second")
	duration := fs.Duration("duration", 10*time.Second, "measured duration")
	warmup := fs.Duration("warmup", 2*time.Second, "unmeasured warm-up at the same rate")
	timeout := fs.Duration("timeout", 10*time.Second, "per-request timeout (the webhook's timeoutSeconds)")
	_ = fs.Parse(args)
	caPEM, err := os.ReadFile(*caFile)
	check(err)
	body, err := os.ReadFile(*bodyFile)
	check(err)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		check(fmt.Errorf("no certificate in %s", *caFile))
	}
	client := &http.Client{
		Timeout: *timeout,
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
			MaxIdleConnsPerHost: 25,
			IdleConnTimeout:     90 * time.Second,
			ForceAttemptHTTP2:   false,
		},
	}
	var (
		mu        sync.Mutex
		latencies []float64
		res       result
		wg        sync.WaitGroup
	)
	interval := time.Duration(float64(time.Second) / *rate)
	start := time.Now()
	measureFrom := start.Add(*warmup)
	end := measureFrom.Add(*duration)
	for i := 0; ; i++ {
		due := start.Add(time.Duration(i) * interval)
		if !due.Before(end) {
			break
		}
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		measured := !due.Before(measureFrom)
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			req, _ := http.NewRequest("POST", *url, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			ok := false
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				ok = err == nil && resp.StatusCode == 200
				if err == nil && !ok {
					err = fmt.Errorf("HTTP %d", resp.StatusCode)
				}
			}
			elapsed := time.Since(t0)
			if !measured {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			res.Sent++
			if ok {
				res.OK++
				latencies = append(latencies, float64(elapsed.Microseconds())/1000)
			} else {
				res.Errors++
				if res.FirstError == "" && err != nil {
					res.FirstError = err.Error()
				}
			}
			if elapsed > *timeout {
				res.OverTimeout++
			}
		}()
	}
	wg.Wait()
	res.Seconds = duration.Seconds()
	res.RPS = float64(res.OK) / res.Seconds
	sort.Float64s(latencies)
	if n := len(latencies); n > 0 {
		res.P50 = latencies[n*50/100]
		res.P99 = latencies[min(n-1, n*99/100)]
		res.Max = latencies[n-1]
	}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

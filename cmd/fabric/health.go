package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// runHealth is `fabric health URL`: one GET, exit status 0 on a 2xx answer
// and 1 on anything else. The container image has no shell, curl or wget,
// so this is what its healthchecks run (`fabric health
// http://localhost:8080/readyz`). What went wrong goes to stderr, which
// Docker keeps in the container's health log.
func runHealth(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("health")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: fabric health URL [flags]\n\nGETs URL and exits 0 if the answer is 2xx, 1 otherwise: a container healthcheck\nsuch as `fabric health http://localhost:8080/readyz`.\n\nFlags:")
		fs.PrintDefaults()
	}
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return exitError(2)
	}
	url := pos[0]
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	// No keep-alive: the probe runs once and exits.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "unhealthy: %v\n", err)
		return exitError(1)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// The first line of the body says why ("draining", "nats: RECONNECTING").
		line, _ := bufio.NewReader(io.LimitReader(resp.Body, 256)).ReadString('\n')
		fmt.Fprintf(stderr, "unhealthy: %s: %s %s\n", url, resp.Status, strings.TrimSpace(line))
		return exitError(1)
	}
	return nil
}

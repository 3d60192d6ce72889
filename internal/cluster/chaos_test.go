package cluster

import (
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestChaos runs a steady load of clients that resume by themselves while
// random faults hit the cluster, one at a time: workers killed, stopped,
// restarted; gateways terminated or killed, then restarted; NATS nodes
// killed, then restarted. Every request must end with one :finish, reach
// only its client, keep its seq contiguous and lose nothing silently
// (I1, I2, I3, I5), and the gateways must return to their baselines (I4).
//
// It runs in core mode and in durable mode (the store replicated on the
// three nodes), each for chaosDuration (15s; several minutes with -tags
// chaos), or FABRIC_CHAOS_DURATION. The seed is logged; FABRIC_CHAOS_SEED
// replays the same choice of faults and requests (not their timing).
func TestChaos(t *testing.T) {
	for _, mode := range []string{"core", "durable"} {
		t.Run(mode, func(t *testing.T) { chaos(t, mode == "durable") })
	}
}

func chaos(t *testing.T, durable bool) {
	duration := chaosDuration
	if s := os.Getenv("FABRIC_CHAOS_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("FABRIC_CHAOS_DURATION: %v", err)
		}
		duration = d
	}
	seed := time.Now().UnixNano()
	if s := os.Getenv("FABRIC_CHAOS_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseInt(s, 10, 64); err != nil {
			t.Fatalf("FABRIC_CHAOS_SEED: %v", err)
		}
	}
	t.Logf("seed %d (FABRIC_CHAOS_SEED=%d replays it), duration %s", seed, seed, duration)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))

	opts := Options{Workers: 3}
	if durable {
		opts.GatewayArgs = []string{"--durable", "--durable-replicas", "3", "--durable-storage", "memory"}
	}
	c := Start(t, opts)
	var recs []*Client
	for i := range 4 {
		rec := c.NewClient(t, i%len(c.Gateways))
		rec.SetAutoResume(true)
		recs = append(recs, rec)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, rec := range recs {
		for j := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				load(rec, rand.New(rand.NewPCG(uint64(seed), uint64(2*i+j+1))), stop)
			}()
		}
	}

	faults := []struct {
		name string
		do   func(rng *rand.Rand)
	}{
		{"kill a worker, restart it", func(rng *rand.Rand) {
			w := c.Workers[rng.IntN(len(c.Workers))]
			w.Kill()
			pause(rng)
			w.Restart()
		}},
		{"stop a worker, continue it", func(rng *rand.Rand) {
			w := c.Workers[rng.IntN(len(c.Workers))]
			w.Stop()
			pause(rng)
			w.Cont()
		}},
		{"terminate a worker, restart it", func(rng *rand.Rand) {
			w := c.Workers[rng.IntN(len(c.Workers))]
			w.Term()
			w.Restart()
		}},
		{"terminate a gateway, restart it", func(rng *rand.Rand) {
			g := c.Gateways[rng.IntN(len(c.Gateways))]
			g.Term()
			g.Restart()
		}},
		{"kill a gateway, restart it", func(rng *rand.Rand) {
			g := c.Gateways[rng.IntN(len(c.Gateways))]
			g.Kill()
			pause(rng)
			g.Restart()
		}},
		{"kill a NATS node, restart it", func(rng *rand.Rand) {
			n := c.NATS[rng.IntN(len(c.NATS))]
			n.Kill()
			pause(rng)
			n.Restart()
		}},
	}
	start := time.Now()
	for time.Since(start) < duration {
		pause(rng) // the load runs
		f := faults[rng.IntN(len(faults))]
		t.Logf("%6.2fs: %s", time.Since(start).Seconds(), f.name)
		f.do(rng)
	}
	close(stop)
	wg.Wait()
	for _, rec := range recs {
		rec.Wait(t, durableWait)
	}
	Check(t, recs...)
	t.Logf("outcomes: %s", formatOutcomes(Outcomes(recs...)))
	for _, rec := range recs {
		rec.Close(t)
	}
	c.CheckResources(t)
}

// pause lets the load run for 0.2–1s.
func pause(rng *rand.Rand) {
	time.Sleep(time.Duration(200+rng.IntN(800)) * time.Millisecond)
}

// load sends requests on rec, one at a time, until stop: mostly streams,
// some echoes and sleeps.
func load(rec *Client, rng *rand.Rand, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		var id string
		switch rng.IntN(4) {
		case 0:
			id = rec.Send("demo/echo", rng.IntN(1000))
		case 1:
			id = rec.Send("demo/sleep", map[string]int{"ms": rng.IntN(300)})
		default:
			id = rec.Count(1+rng.IntN(20), 10+rng.IntN(40))
		}
		rec.Await(wait, id)
	}
}

// Command fabric runs Fabric: `fabric dev` (everything in one process, with
// an embedded NATS server), `fabric gateway` and `fabric worker` (the pieces,
// against any NATS server or cluster), `fabric call` (one request from
// the command line, every event printed as it arrives), and `fabric tail`
// (every request, event, cancel and push of a fabric, as it crosses NATS).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

const usage = `fabric: a NATS-backed WebSocket fabric for real-time, multi-agent apps

Usage:
  fabric dev      [--listen :8080]                 gateway + demo workers + embedded NATS, one process
  fabric gateway  --listen ADDR --nats URL[,URL]   a gateway against a NATS server or cluster
                  (or --embed-nats FILE)           … or running the NATS node itself, from a nats-server config
  fabric worker   --nats URL[,URL] --demo          a worker serving the demo routes
  fabric cluster  [--workers 2] [--durable]        3 NATS nodes, 2 gateways and workers as processes on
                                                   loopback: the compose topology without Docker
  fabric nats-server [nats-server options]         a NATS server (nats-server's own flags: -c FILE…)
  fabric call     TYPE [JSON] [--url ws://…/ws]    send one request, print each event as a JSON line
  fabric tail     [--nats URL] [--route R] [--session S] [--id ID] [--errors] [--json]
                                                   print each request, event, cancel and push on NATS
  fabric gen      ts|ts-codes|asyncapi [--out FILE]
                                                   TypeScript route map / code catalogue, AsyncAPI
                                                   document of the NATS contract, from Go
  fabric health   URL [--timeout 3s]               GET URL, exit 0 on 2xx: a healthcheck for images with no shell
  fabric bench    idle|latency|storm [--json FILE] load generator: starts NATS, a gateway and a worker as
                                                   children and measures them (fabric bench -h)

Every flag can also be set by an environment variable: --request-timeout is
FABRIC_REQUEST_TIMEOUT. Run "fabric COMMAND -h" for a command's flags.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "dev":
		err = runDev(ctx, args)
	case "gateway":
		err = runGateway(ctx, args)
	case "worker":
		err = runWorker(ctx, args)
	case "cluster":
		err = runCluster(ctx, args, os.Stdout, os.Stderr)
	case "nats-server":
		err = runNATSServer(args)
	case "call":
		err = runCall(ctx, args, os.Stdout)
	case "tail":
		err = runTail(ctx, args, os.Stdout, os.Stderr)
	case "health":
		err = runHealth(ctx, args, os.Stderr)
	case "gen":
		err = runGen(args, os.Stdout)
	case "bench":
		err = runBench(ctx, args, os.Stdout, os.Stderr)
	case "help", "-h", "--help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "fabric: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
	var exit exitError
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		os.Exit(2)
	case errors.As(err, &exit):
		os.Exit(int(exit))
	default:
		fmt.Fprintln(os.Stderr, "fabric:", err)
		os.Exit(1)
	}
}

// exitError ends the program with a status and no message.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

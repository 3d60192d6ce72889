package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/nats-io/nats-server/v2/server"
)

// runNATSServer is `fabric nats-server`: nats-server itself, from the
// module this binary is built with, taking nats-server's flags (-c FILE,
// -p PORT, -js…). It lets `fabric cluster` run its NATS nodes with no other
// binary. It returns only on a bad command line: the server exits the
// process itself on SIGINT or SIGTERM.
func runNATSServer(args []string) error {
	fs := flag.NewFlagSet("fabric nats-server", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: fabric nats-server [nats-server options]\n\nRuns a NATS server; the options are nats-server's (-c FILE, -p PORT, -js, -sd DIR…).")
	}
	opts, err := server.ConfigureOptions(fs, args, server.PrintServerAndExit, fs.Usage, server.PrintTLSHelpAndDie)
	if err != nil {
		return fmt.Errorf("nats-server: %w", err)
	}
	if opts.CheckConfig {
		fmt.Fprintf(os.Stderr, "nats-server: configuration file %s is valid\n", opts.ConfigFile)
		return nil
	}
	server.RedactArgs(os.Args) // before /varz shows the command line
	s, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("nats-server: %w", err)
	}
	s.ConfigureLogger()
	if err := server.Run(s); err != nil {
		return fmt.Errorf("nats-server: %w", err)
	}
	s.WaitForShutdown()
	return nil
}

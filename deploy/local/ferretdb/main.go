// Command ferretdb-local runs FerretDB, a MongoDB-wire-protocol server, with its SQLite backend,
// for local development and the integration tests. It embeds FerretDB through its public
// package so that the binary builds from the Go module proxy alone.
package main

import (
	"context"
	"flag"
	"log"
	"os/signal"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listenAddr := flag.String("listen-addr", "127.0.0.1:27017", "TCP address to listen on")
	sqliteURL := flag.String("sqlite-url", "file:data/", "SQLite URI of the directory that holds the databases (ends with /)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	server, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *listenAddr},
		Handler:   "sqlite",
		SQLiteURL: *sqliteURL,
	})
	if err != nil {
		log.Fatalf("ferretdb: %v", err)
	}

	log.Printf("ferretdb: listening on %s (%s)", *listenAddr, server.MongoDBURI())

	if err := server.Run(ctx); err != nil {
		log.Fatalf("ferretdb: %v", err)
	}
}

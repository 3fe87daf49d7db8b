// Command ferretdb-local runs FerretDB, a MongoDB-wire-protocol server, for local development
// and the tests: with its PostgreSQL backend when --postgresql-url is given (what infra.sh
// does), else with its SQLite backend. It embeds FerretDB through its public package so that
// the binary builds from the Go module proxy alone.
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
	postgresqlURL := flag.String("postgresql-url", "", "PostgreSQL URL of the database that holds the data (then SQLite is not used)")
	flag.Parse()

	handler := "sqlite"
	if *postgresqlURL != "" {
		handler = "postgresql"
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	server, err := ferretdb.New(&ferretdb.Config{
		Listener:      ferretdb.ListenerConfig{TCP: *listenAddr},
		Handler:       handler,
		SQLiteURL:     *sqliteURL,
		PostgreSQLURL: *postgresqlURL,
	})
	if err != nil {
		log.Fatalf("ferretdb: %v", err)
	}

	log.Printf("ferretdb: listening on %s (%s, %s backend)", *listenAddr, server.MongoDBURI(), handler)

	if err := server.Run(ctx); err != nil {
		log.Fatalf("ferretdb: %v", err)
	}
}

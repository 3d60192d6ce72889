package agents

import (
	"bytes"
	"context"
	"database/sql"
	_ "embed"
	"encoding/csv"
	"errors"
	"fmt"
	"strconv"
	"sync"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, pure Go
)

//go:embed sales.csv
var salesCSV []byte

// The dataset's values, which a plan's filters must be one of.
var (
	Regions    = []string{"North", "South", "East", "West"}
	Categories = []string{"Hardware", "Software", "Services"}
	Products   = []string{
		"Laptop", "Monitor", "Dock",
		"Analytics Suite", "Security Pack", "Design Studio",
		"Support Plan", "Training", "Consulting",
	}
	Years = []int{2024, 2025}
)

// dataset is the sales table in an in-memory SQLite database, loaded once
// per process and shared by every SQL agent in it.
var dataset struct {
	once sync.Once
	db   *sql.DB
	err  error
}

// openDataset returns the database, loading it on first use.
func openDataset() (*sql.DB, error) {
	dataset.once.Do(func() { dataset.db, dataset.err = loadDataset(context.Background()) })
	return dataset.db, dataset.err
}

const schema = `CREATE TABLE orders (
	id         INTEGER PRIMARY KEY,
	order_date TEXT    NOT NULL, -- YYYY-MM-DD
	region     TEXT    NOT NULL,
	category   TEXT    NOT NULL,
	product    TEXT    NOT NULL,
	units      INTEGER NOT NULL,
	revenue    REAL    NOT NULL
)`

func loadDataset(ctx context.Context) (*sql.DB, error) {
	// One connection: an in-memory database lives as long as its connection,
	// and each connection would have its own. The queries take well under a
	// millisecond, so they may wait for each other.
	db, err := sql.Open("sqlite", "file:sales?mode=memory")
	if err != nil {
		return nil, fmt.Errorf("agents: open dataset: %w", err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if err := fill(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("agents: load dataset: %w", err)
	}
	return db, nil
}

func fill(ctx context.Context, db *sql.DB) error {
	records, err := csv.NewReader(bytes.NewReader(salesCSV)).ReadAll()
	if err != nil {
		return err
	}
	if len(records) < 2 {
		return errors.New("sales.csv has no rows")
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, schema); err != nil {
		return err
	}
	insert, err := tx.PrepareContext(ctx, `INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer insert.Close()
	for i, r := range records[1:] {
		if len(r) != 7 {
			return fmt.Errorf("sales.csv line %d: %d fields, want 7", i+2, len(r))
		}
		units, err1 := strconv.Atoi(r[5])
		revenue, err2 := strconv.ParseFloat(r[6], 64)
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("sales.csv line %d: %w", i+2, err)
		}
		if _, err := insert.ExecContext(ctx, r[0], r[1], r[2], r[3], r[4], units, revenue); err != nil {
			return err
		}
	}
	return tx.Commit()
}

//go:build ignore

// gen_dataset writes sales.csv, the demo's dataset: two years of orders of a
// fictional company, with trends for the analysis agent to find (the West
// grows fastest, Services grow, the fourth quarter is busiest, the South is
// flat). It is deterministic: run `go generate` and the file is the same.
package main

import (
	"encoding/csv"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"time"
)

type product struct {
	name, category string
	price          float64
}

func main() {
	products := []product{
		{"Laptop", "Hardware", 1240}, {"Monitor", "Hardware", 310}, {"Dock", "Hardware", 180},
		{"Analytics Suite", "Software", 890}, {"Security Pack", "Software", 420}, {"Design Studio", "Software", 560},
		{"Support Plan", "Services", 650}, {"Training", "Services", 380}, {"Consulting", "Services", 1500},
	}
	regions := []string{"North", "South", "East", "West"}
	// Yearly growth by region and by category.
	regionGrowth := map[string]float64{"North": 0.12, "South": 0.0, "East": 0.08, "West": 0.35}
	categoryGrowth := map[string]float64{"Hardware": -0.05, "Software": 0.10, "Services": 0.30}
	r := rand.New(rand.NewPCG(82, 63))
	f, err := os.Create("sales.csv")
	if err != nil {
		panic(err)
	}
	w := csv.NewWriter(f)
	_ = w.Write([]string{"id", "order_date", "region", "category", "product", "units", "revenue"})
	id := 0
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for d := start; d.Year() < 2026; d = d.AddDate(0, 0, 1) {
		years := d.Sub(start).Hours() / 24 / 365
		season := 1.0
		if d.Month() >= 10 {
			season = 1.45
		} else if d.Month() <= 2 {
			season = 0.8
		}
		for _, region := range regions {
			for _, p := range products {
				rate := 0.22 * season * math.Pow(1+regionGrowth[region], years) * math.Pow(1+categoryGrowth[p.category], years)
				if r.Float64() >= rate/5 {
					continue
				}
				id++
				units := 1 + r.IntN(8)
				price := p.price * (0.9 + 0.2*r.Float64())
				_ = w.Write([]string{
					fmt.Sprint(id), d.Format(time.DateOnly), region, p.category, p.name,
					fmt.Sprint(units), fmt.Sprintf("%.2f", price*float64(units)),
				})
			}
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		panic(err)
	}
	if err := f.Close(); err != nil {
		panic(err)
	}
}

package agents

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/seed82ac63c1/fabric/protocol"
	"github.com/seed82ac63c1/fabric/workers"
)

// The plan's metrics and dimensions.
var (
	Metrics    = []string{"revenue", "units", "orders", "avg_order_value"}
	Dimensions = []string{"region", "category", "product", "month", "quarter"}
)

// MaxQuestionBytes bounds a question.
const MaxQuestionBytes = 500

var (
	yearPattern = regexp.MustCompile(`\b(20\d\d)\b`)
	topPattern  = regexp.MustCompile(`\b(?:top|best|largest|biggest)\s+(\d{1,2}|three|five|ten)\b`)
)

// plan is agent/plan: it reads the question (a script, not a language
// model), thinks aloud as :progress, and answers with a QueryPlan.
func (a *agents) plan(ctx context.Context, p PlanParams, s *workers.Stream) (QueryPlan, error) {
	q := strings.TrimSpace(p.Question)
	if q == "" {
		return QueryPlan{}, protocol.Errorf(protocol.CodeBadRequest, "ask a question about the sales data")
	}
	if len(q) > MaxQuestionBytes {
		return QueryPlan{}, protocol.Errorf(protocol.CodeBadRequest, "a question has at most %d bytes", MaxQuestionBytes)
	}
	if p.Previous != nil {
		if err := p.Previous.validate(); err != nil {
			return QueryPlan{}, err
		}
	}
	plan, notes := understand(q, p.Previous)
	for _, note := range notes {
		if err := a.say(ctx, s, note+" "); err != nil {
			return QueryPlan{}, err
		}
	}
	return plan, nil
}

// understand maps a question onto a plan, saying why in notes. What the
// question leaves out comes from previous, the plan it follows up on.
func understand(question string, previous *QueryPlan) (QueryPlan, []string) {
	q := " " + strings.ToLower(question) + " "
	var plan QueryPlan
	var notes []string
	if previous != nil {
		plan = *previous
		plan.Steps = nil
		notes = append(notes, "This follows up on the previous answer, so I keep what this question leaves out.")
	} else {
		plan = QueryPlan{Metric: "revenue", Dimension: "region"}
	}

	metricGiven := true
	switch {
	case containsAny(q, "average order", "avg order", "aov", "order value", "basket"):
		plan.Metric = "avg_order_value"
	case containsAny(q, "units", "unit ", "volume", "quantity", "sold"):
		plan.Metric = "units"
	case containsAny(q, "how many orders", "number of orders", "order count", " orders"):
		plan.Metric = "orders"
	case containsAny(q, "revenue", "sales", "turnover", "income", "money"):
		plan.Metric = "revenue"
	default:
		metricGiven = false
	}
	if metricGiven {
		notes = append(notes, fmt.Sprintf("The measure is %s.", metricNames[plan.Metric]))
	} else {
		notes = append(notes, fmt.Sprintf("No measure named, so I use %s.", metricNames[plan.Metric]))
	}

	dimensionGiven := true
	switch {
	case containsAny(q, "month", "trend", "over time", "per month", "monthly"):
		plan.Dimension = "month"
	case containsAny(q, "quarter", "q1", "q2", "q3", "q4"):
		plan.Dimension = "quarter"
	case containsAny(q, "product", "item", "sku"):
		plan.Dimension = "product"
	case containsAny(q, "categor", "line of business", "segment"):
		plan.Dimension = "category"
	case containsAny(q, "region", "where", "area", "territor"):
		plan.Dimension = "region"
	default:
		dimensionGiven = false
	}

	if m := yearPattern.FindStringSubmatch(q); m != nil {
		year, _ := strconv.Atoi(m[1])
		if slices.Contains(Years, year) {
			plan.Year = year
			notes = append(notes, fmt.Sprintf("Only %d counts.", year))
		} else {
			notes = append(notes, fmt.Sprintf("The data covers %d–%d, not %d, so I look at all of it.", Years[0], Years[len(Years)-1], year))
			plan.Year = 0
		}
	} else if containsAny(q, "all years", "all time", "overall", "every year") {
		plan.Year = 0
	}

	// A region or a category named is a filter, unless the question groups
	// by it; named without a grouping, the answer groups one level finer.
	for _, f := range []struct {
		dimension, finer string
		values           []string
		field            *string
		note             string
	}{
		{"region", "month", Regions, &plan.Region, "Only the %s region."},
		{"category", "product", Categories, &plan.Category, "Only %s."},
	} {
		if v := mentioned(q, f.values); v != "" {
			if !dimensionGiven && plan.Dimension == f.dimension {
				plan.Dimension = f.finer
			}
			if plan.Dimension != f.dimension {
				*f.field = v
				notes = append(notes, fmt.Sprintf(f.note, v))
			}
		} else if containsAny(q, "all "+plural(f.dimension), "every "+f.dimension) {
			*f.field = ""
		}
	}
	notes = append(notes, fmt.Sprintf("I group by %s.", plan.Dimension))

	plan.Top = 0
	if m := topPattern.FindStringSubmatch(q); m != nil && !isTime(plan.Dimension) {
		plan.Top = wordNumber(m[1])
		notes = append(notes, fmt.Sprintf("Only the top %d.", plan.Top))
	}
	plan.Intent = intent(plan)
	plan.Steps = []string{
		"SQL agent: write and run the query on the orders table",
		"Analysis agent: totals, spread, extremes" + map[bool]string{true: ", growth", false: ", shares"}[isTime(plan.Dimension)],
		"Chart agent: a " + chartMark(plan) + " chart of " + metricNames[plan.Metric] + " by " + plan.Dimension,
	}
	notes = append(notes, "Plan: "+plan.Intent+".")
	return plan, notes
}

var metricNames = map[string]string{
	"revenue":         "revenue",
	"units":           "units sold",
	"orders":          "the number of orders",
	"avg_order_value": "the average order value",
}

// intent restates a plan in English.
func intent(p QueryPlan) string {
	var b strings.Builder
	if p.Top > 0 {
		fmt.Fprintf(&b, "The top %d %s by %s", p.Top, plural(p.Dimension), metricNames[p.Metric])
	} else {
		b.WriteString(strings.ToUpper(metricNames[p.Metric][:1]) + metricNames[p.Metric][1:] + " by " + p.Dimension)
	}
	if p.Region != "" {
		b.WriteString(" in the " + p.Region)
	}
	if p.Category != "" {
		b.WriteString(" for " + p.Category)
	}
	if p.Year != 0 {
		fmt.Fprintf(&b, " in %d", p.Year)
	} else {
		fmt.Fprintf(&b, ", %d–%d", Years[0], Years[len(Years)-1])
	}
	return b.String()
}

// validate checks a plan from a client against the dataset: every field
// must be a value the SQL agent knows.
func (p *QueryPlan) validate() error {
	switch {
	case !slices.Contains(Metrics, p.Metric):
		return protocol.Errorf(protocol.CodeBadRequest, "plan: metric %q is not one of %s", p.Metric, strings.Join(Metrics, ", "))
	case !slices.Contains(Dimensions, p.Dimension):
		return protocol.Errorf(protocol.CodeBadRequest, "plan: dimension %q is not one of %s", p.Dimension, strings.Join(Dimensions, ", "))
	case p.Year != 0 && !slices.Contains(Years, p.Year):
		return protocol.Errorf(protocol.CodeBadRequest, "plan: the data has no year %d", p.Year)
	case p.Region != "" && !slices.Contains(Regions, p.Region):
		return protocol.Errorf(protocol.CodeBadRequest, "plan: region %q is not one of %s", p.Region, strings.Join(Regions, ", "))
	case p.Category != "" && !slices.Contains(Categories, p.Category):
		return protocol.Errorf(protocol.CodeBadRequest, "plan: category %q is not one of %s", p.Category, strings.Join(Categories, ", "))
	case p.Top < 0 || p.Top > 50:
		return protocol.Errorf(protocol.CodeBadRequest, "plan: top must be between 0 and 50")
	}
	return nil
}

// plural names a dimension's groups: "regions", "categories".
func plural(dimension string) string {
	if strings.HasSuffix(dimension, "y") {
		return strings.TrimSuffix(dimension, "y") + "ies"
	}
	return dimension + "s"
}

func isTime(dimension string) bool { return dimension == "month" || dimension == "quarter" }

func chartMark(p QueryPlan) string {
	if isTime(p.Dimension) {
		return "line"
	}
	return "bar"
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// wordPatterns match the regions and categories as words, in lower case.
var wordPatterns = func() map[string]*regexp.Regexp {
	m := make(map[string]*regexp.Regexp)
	for _, name := range slices.Concat(Regions, Categories) {
		m[name] = regexp.MustCompile(`\b` + strings.ToLower(name) + `\b`)
	}
	return m
}()

// mentioned returns the first of names that q (lower case) has as a word.
func mentioned(q string, names []string) string {
	for _, name := range names {
		if wordPatterns[name].MatchString(q) {
			return name
		}
	}
	return ""
}

func wordNumber(s string) int {
	switch s {
	case "three":
		return 3
	case "five":
		return 5
	case "ten":
		return 10
	}
	n, _ := strconv.Atoi(s)
	return max(1, min(n, 50))
}

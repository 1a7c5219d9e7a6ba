package marketsim

import (
	"fmt"
	"math"
	"testing"
)

func TestFairnessOf(t *testing.T) {
	tests := []struct {
		name   string
		jobsOf map[string]int
		miners int
		want   fairness
	}{
		{"equal", map[string]int{"a": 2, "b": 2, "c": 2, "d": 2}, 4, fairness{ranAny: 1, maxShare: .25, gini: 0}},
		{"one ran everything", map[string]int{"a": 9}, 4, fairness{ranAny: .25, maxShare: 1, gini: .75}},
		{"half ran", map[string]int{"a": 1, "b": 1}, 4, fairness{ranAny: .5, maxShare: .5, gini: .5}},
		{"nothing ran", map[string]int{}, 4, fairness{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fairnessOf(tt.jobsOf, tt.miners)
			near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
			if !near(got.ranAny, tt.want.ranAny) || !near(got.maxShare, tt.want.maxShare) || !near(got.gini, tt.want.gini) {
				t.Errorf("fairnessOf = %s, want %s", fmt.Sprintf("%+v", got), fmt.Sprintf("%+v", tt.want))
			}
		})
	}
}

package units

import "testing"

func TestCurrencyFormat(t *testing.T) {
	const mint = "Gh9ZwEmdLJ8DscKNTkTqPbNwLNNBjuSzaG9Vp2KGtKJr"
	cases := []struct {
		name   string
		c      Currency
		amount uint64
		want   string
	}{
		{"a fee-sized SOL reward", SOL, 5000, "0.000005 SOL"},
		{"one lamport", SOL, 1, "0.000000001 SOL"},
		{"whole SOL", SOL, 2_000_000_000, "2 SOL"},
		{"SOL and a fraction", SOL, 1_500_000_000, "1.5 SOL"},
		{"nothing", SOL, 0, "0 SOL"},
		{"the issue's token amount", Token(mint, 6), 12_010_000, "12.01 Gh9Z…tKJr"},
		{"token below one", Token(mint, 6), 42, "0.000042 Gh9Z…tKJr"},
		{"token without decimals", Token(mint, 0), 7, "7 Gh9Z…tKJr"},
		{"the largest amount", SOL, 18446744073709551615, "18446744073.709551615 SOL"},
		{"more decimals than digits", Token(mint, 19), 18446744073709551615, "1.8446744073709551615 Gh9Z…tKJr"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.c.Format(tc.amount); got != tc.want {
				t.Fatalf("Format(%d) with %+v = %q, want %q", tc.amount, tc.c, got, tc.want)
			}
		})
	}
}

func TestShortMint(t *testing.T) {
	for in, want := range map[string]string{
		"Gh9ZwEmdLJ8DscKNTkTqPbNwLNNBjuSzaG9Vp2KGtKJr": "Gh9Z…tKJr",
		"short": "short",
	} {
		if got := ShortMint(in); got != want {
			t.Fatalf("ShortMint(%q) = %q, want %q", in, got, want)
		}
	}
}

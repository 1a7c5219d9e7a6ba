package units

import (
	"strconv"
	"strings"
)

// Currency says how a payment's base-unit integer reads: lamports as SOL
// (9 decimals), or an SPL token's base units with its mint's decimals.
// The API sends amounts as integers with their Currency, so every client
// formats them the same way.
type Currency struct {
	Mint     string `json:"mint,omitempty"` // empty: SOL
	Unit     string `json:"unit"`           // "SOL", or the mint shortened
	Decimals uint8  `json:"decimals"`
}

// SOL is the chain's own coin: 1 SOL = 10^9 lamports.
var SOL = Currency{Unit: "SOL", Decimals: 9}

// Token is an SPL token of mint whose amounts have decimals decimals.
func Token(mint string, decimals uint8) Currency {
	return Currency{Mint: mint, Unit: ShortMint(mint), Decimals: decimals}
}

// ShortMint shortens a base58 mint address to its first and last four
// characters, enough to tell mints apart at a glance.
func ShortMint(mint string) string {
	if len(mint) <= 12 {
		return mint
	}
	return mint[:4] + "…" + mint[len(mint)-4:]
}

// Format writes amount base units as "0.000005 SOL" or "12.01 Gh9Z…x3Qa".
func (c Currency) Format(amount uint64) string {
	return FormatAmount(amount, c.Decimals) + " " + c.Unit
}

// FormatAmount writes amount base units with decimals decimals, exactly
// and without trailing zeros: (5000, 9) is "0.000005", (12010000, 6)
// "12.01", (7, 0) "7".
func FormatAmount(amount uint64, decimals uint8) string {
	digits := strconv.FormatUint(amount, 10)
	d := int(decimals)
	if d == 0 {
		return digits
	}
	if len(digits) <= d {
		digits = strings.Repeat("0", d-len(digits)+1) + digits
	}
	whole, frac := digits[:len(digits)-d], strings.TrimRight(digits[len(digits)-d:], "0")
	if frac == "" {
		return whole
	}
	return whole + "." + frac
}

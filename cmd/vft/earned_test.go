package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/vft-network/vft/api"
	"github.com/vft-network/vft/internal/units"
	"github.com/vft-network/vft/job"
)

// The payout lines of `vft job status` name the worker paid and read in
// the job's currency, not in base units.
func TestPrintPayouts(t *testing.T) {
	const (
		mint   = "Gh9ZwEmdLJ8DscKNTkTqPbNwLNNBjuSzaG9Vp2KGtKJr"
		peer   = "12D3KooWH8hb79kYvffCUeyv16DgUVmD9ZDifGMZ7kiLzia8KVK2"
		wallet = "AEHyNAcSUDNT59jfZS3i7KxRq2a9TexytxMBtNPNcbKn"
		back   = "6MvDydWVsLc6QTjyMUVVaLtUqWejN8bTtrdgm9ZQGKag"
	)
	token := units.Token(mint, 6)
	cases := []struct {
		name string
		st   api.JobStatus
		self string
		want string
	}{
		{"submitter, SOL", api.JobStatus{Record: job.Record{Role: job.RoleSubmitter, Payouts: []job.Payout{
			{Recipient: wallet, Worker: peer, Amount: 5000, Signature: "5qF1", State: "done"}}}, Currency: &units.SOL}, back,
			"paid    " + peer + "  wallet " + wallet + "  0.000005 SOL  tx 5qF1 (done)\n"},
		{"submitter, token, with the share returned", api.JobStatus{Record: job.Record{Role: job.RoleSubmitter, Payouts: []job.Payout{
			{Recipient: wallet, Worker: peer, Amount: 12_010_000, Signature: "4WTT", State: "done"},
			{Recipient: back, Amount: 40_000, Signature: "4WTT", State: "done", Returned: true}}}, Currency: &token}, back,
			"paid    " + peer + "  wallet " + wallet + "  12.01 Gh9Z…tKJr  tx 4WTT (done)\n" +
				"back    wallet " + back + "  0.04 Gh9Z…tKJr  tx 4WTT (done)\n"},
		{"worker", api.JobStatus{Record: job.Record{Role: job.RoleWorker, Payouts: []job.Payout{
			{Recipient: wallet, Worker: peer, Amount: 5000, Signature: "5qF1", State: "confirmed"}}}, Currency: &units.SOL}, wallet,
			"earned  0.000005 SOL  tx 5qF1\n"},
		{"an older daemon without the currency reads SOL", api.JobStatus{Record: job.Record{Role: job.RoleWorker, Payouts: []job.Payout{
			{Recipient: wallet, Amount: 2_000_000, Signature: "5qF1", State: "confirmed"}}}}, wallet,
			"earned  0.002 SOL  tx 5qF1\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			printPayouts(&b, tc.st, tc.self)
			if b.String() != tc.want {
				t.Fatalf("got\n%s\nwant\n%s", b.String(), tc.want)
			}
		})
	}
}

// `vft wallet earned`: totals per currency, then the recent jobs.
func TestPrintEarnings(t *testing.T) {
	const wallet = "AEHyNAcSUDNT59jfZS3i7KxRq2a9TexytxMBtNPNcbKn"
	at := time.Date(2026, 12, 6, 7, 30, 0, 0, time.Local)
	var b bytes.Buffer
	printEarnings(&b, api.Earnings{Wallet: wallet,
		Earned: []api.Total{{Currency: units.SOL, Amount: 15000, Jobs: 3}},
		Jobs: []api.JobMoney{{Job: "bafyjob", Role: job.RoleWorker, Currency: units.SOL, Earned: 5000, UpdatedAt: at,
			Payouts: []job.Payout{{Recipient: wallet, Amount: 5000, Signature: "5qF1", State: "confirmed"}}}}})
	want := "earned  0.000015 SOL over 3 job(s)  (wallet " + wallet + ")\n" +
		"  2026-12-06 07:30  bafyjob  earned  0.000005 SOL  tx 5qF1\n"
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	printEarnings(&b, api.Earnings{Wallet: wallet})
	if !strings.Contains(b.String(), "earned  nothing yet") {
		t.Fatalf("no earnings: %q", b.String())
	}
}

package chain

import (
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		modify func(*Config)
		want   string // substring of the error; empty means valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"https and wss", func(c *Config) { c.RPC, c.WS = "https://api.devnet.solana.com", "wss://api.devnet.solana.com" }, ""},
		{"spl mint", func(c *Config) { c.Mint = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v" }, ""},
		{"bad rpc", func(c *Config) { c.RPC = "127.0.0.1:8899" }, "chain.rpc"},
		{"rpc scheme", func(c *Config) { c.RPC = "ws://127.0.0.1:8899" }, "chain.rpc"},
		{"bad ws", func(c *Config) { c.WS = "http://127.0.0.1:8900" }, "chain.ws"},
		{"commitment", func(c *Config) { c.Commitment = "max" }, "chain.commitment"},
		{"mint", func(c *Config) { c.Mint = "not-base58!" }, "chain.mint"},
		{"timeout", func(c *Config) { c.Timeout = 0 }, "chain.timeout"},
		{"poll", func(c *Config) { c.PollInterval = 0 }, "chain.poll_interval"},
		{"retries", func(c *Config) { c.MaxRetries = -1 }, "chain.max_retries"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.modify(&c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error naming %s", err, tc.want)
			}
		})
	}
}

// TestConfigTOML decodes the documented snippet strictly.
func TestConfigTOML(t *testing.T) {
	const snippet = `
rpc = "http://127.0.0.1:8899"
ws = "ws://127.0.0.1:8900"
commitment = "finalized"
keypair = ""
mint = ""
fee_payer = ""
timeout = "10s"
max_retries = 3
poll_interval = "400ms"
`
	c := DefaultConfig()
	md, err := toml.Decode(snippet, &c)
	if err != nil {
		t.Fatal(err)
	}
	if u := md.Undecoded(); len(u) > 0 {
		t.Fatalf("undecoded keys %v", u)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Commitment != "finalized" || c.Timeout.String() != "10s" || c.MaxRetries != 3 {
		t.Fatalf("decoded %+v", c)
	}
}

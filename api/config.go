package api

import (
	"fmt"
	"net"
)

// Config is the `[api]` section of the node's config.
type Config struct {
	// Listen is the API's address. It must be a loopback address: the API
	// controls the node and its wallet.
	Listen string `toml:"listen"`
}

// DefaultConfig listens on the usual local port.
func DefaultConfig() Config { return Config{Listen: "127.0.0.1:5801"} }

// Validate refuses addresses other machines could reach.
func (c Config) Validate() error {
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return fmt.Errorf("api.listen %q is not host:port (%v): write it like 127.0.0.1:5801", c.Listen, err)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("api.listen %q has a bad port %q", c.Listen, port)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("api.listen %q is not a loopback address: the API controls the node, so it only listens on 127.0.0.1 or [::1]", c.Listen)
	}
	return nil
}

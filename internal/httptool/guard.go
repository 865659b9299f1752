package httptool

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// blockedPrefixes are the ranges an outbound call must not reach unless
// private addresses are allowed: anything that is not the public internet.
var blockedPrefixes = func() []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8",      // "this network", includes the unspecified address
		"10.0.0.0/8",     // RFC 1918
		"100.64.0.0/10",  // carrier-grade NAT (RFC 6598), often internal in clouds
		"127.0.0.0/8",    // loopback
		"169.254.0.0/16", // link-local, includes cloud metadata 169.254.169.254
		"172.16.0.0/12",  // RFC 1918
		"192.0.0.0/24",   // IETF protocol assignments (RFC 6890)
		"192.168.0.0/16", // RFC 1918
		"198.18.0.0/15",  // benchmarking (RFC 2544)
		"224.0.0.0/4",    // multicast
		"240.0.0.0/4",    // reserved, includes broadcast 255.255.255.255
		"::/128",         // unspecified
		"::1/128",        // loopback
		"fc00::/7",       // unique local, includes AWS metadata fd00:ec2::254
		"fe80::/10",      // link-local
		"fec0::/10",      // deprecated site-local, still routed internally by some stacks
		"ff00::/8",       // multicast
		"100::/64",       // discard-only (RFC 6666)
		"2001:db8::/32",  // documentation
		"64:ff9b:1::/48", // local-use NAT64 (RFC 8215)
	} {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}()

// IsBlocked reports whether ip is outside the public internet: loopback,
// private, link-local, unspecified, multicast, carrier-grade NAT and other
// special-purpose ranges. IPv6 forms that embed an IPv4 address
// (IPv4-mapped, IPv4-compatible, NAT64 64:ff9b::/96, 6to4 2002::/16) are
// judged by that IPv4 address, so ::ffff:127.0.0.1 is as blocked as
// 127.0.0.1. An invalid address is blocked.
func IsBlocked(ip netip.Addr) bool {
	if !ip.IsValid() {
		return true
	}
	ip = ip.WithZone("")
	if v4, ok := embeddedIPv4(ip); ok {
		ip = v4
	}
	for _, p := range blockedPrefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

var (
	nat64Prefix  = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour    = netip.MustParsePrefix("2002::/16")
	v4Compatible = netip.MustParsePrefix("::/96")
)

// embeddedIPv4 extracts the IPv4 address an IPv6 address carries.
func embeddedIPv4(ip netip.Addr) (netip.Addr, bool) {
	if ip.Is4() {
		return ip, false
	}
	if ip.Is4In6() {
		return ip.Unmap(), true
	}
	b := ip.As16()
	switch {
	case nat64Prefix.Contains(ip), v4Compatible.Contains(ip) && ip != netip.IPv6Unspecified() && ip != netip.IPv6Loopback():
		return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}), true
	case sixToFour.Contains(ip):
		return netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}), true
	}
	return ip, false
}

// BlockedAddressError is the dial error for a refused address. Callers see
// it through errors.As on the error of http.Client.Do.
type BlockedAddressError struct {
	Addr netip.Addr
}

func (e *BlockedAddressError) Error() string {
	return fmt.Sprintf("outbound connection to non-public address %s refused", e.Addr)
}

// checkDial is a net.Dialer Control function: it runs after name resolution,
// on the exact address about to be connected, so neither DNS rebinding nor
// a redirect to an internal host can slip past it.
func checkDial(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		// Fail closed: the dialer always hands an ip:port here.
		return &BlockedAddressError{}
	}
	if IsBlocked(ap.Addr()) {
		return &BlockedAddressError{Addr: ap.Addr()}
	}
	return nil
}

// NewTransport returns the transport for outbound calls made for users
// (http tools, webhook deliveries). Unless allowPrivate, it refuses to
// connect to blocked addresses (see IsBlocked). It never uses a proxy from
// the environment: the proxy would be dialled instead of the target and
// the address check would be meaningless.
func NewTransport(allowPrivate bool) *http.Transport {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		d.Control = checkDial
	}
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    10,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    10 * time.Second,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 64 << 10,
	}
}

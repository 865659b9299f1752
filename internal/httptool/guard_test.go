package httptool

import (
	"net/netip"
	"testing"
)

func TestIsBlocked(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ip      string
		blocked bool
	}{
		// IPv4 public
		{"8.8.8.8", false},
		{"1.1.1.1", false},
		{"93.184.216.34", false},
		{"100.63.255.255", false}, // just below CGNAT
		{"100.128.0.0", false},    // just above CGNAT
		{"172.15.255.255", false}, // just below 172.16/12
		{"172.32.0.0", false},     // just above
		{"223.255.255.255", false},
		// IPv4 blocked
		{"0.0.0.0", true},
		{"0.1.2.3", true},
		{"10.0.0.1", true},
		{"10.255.255.255", true},
		{"100.64.0.1", true},
		{"100.127.255.255", true},
		{"127.0.0.1", true},
		{"127.1.2.3", true},
		{"169.254.169.254", true}, // cloud metadata
		{"169.254.0.1", true},
		{"172.16.0.1", true},
		{"172.31.255.255", true},
		{"192.0.0.8", true},
		{"192.168.1.1", true},
		{"198.18.0.1", true},
		{"224.0.0.1", true},
		{"239.255.255.250", true},
		{"240.0.0.1", true},
		{"255.255.255.255", true},
		// IPv6 public
		{"2606:4700:4700::1111", false},
		{"2001:4860:4860::8888", false},
		{"2002:808:808::1", false},  // 6to4 of 8.8.8.8
		{"64:ff9b::808:808", false}, // NAT64 of 8.8.8.8
		{"::ffff:8.8.8.8", false},   // IPv4-mapped public
		// IPv6 blocked
		{"::", true},
		{"::1", true},
		{"fc00::1", true},
		{"fd00:ec2::254", true}, // AWS metadata over IPv6
		{"fdff:ffff::1", true},
		{"fe80::1", true},
		{"fe80::1%eth0", true},
		{"febf::1", true},
		{"fec0::1", true},
		{"ff02::1", true},
		{"::ffff:127.0.0.1", true},       // IPv4-mapped loopback
		{"::ffff:169.254.169.254", true}, // IPv4-mapped metadata
		{"::ffff:10.0.0.1", true},
		{"::127.0.0.1", true},       // IPv4-compatible loopback
		{"64:ff9b::a00:1", true},    // NAT64 of 10.0.0.1
		{"64:ff9b::7f00:1", true},   // NAT64 of 127.0.0.1
		{"64:ff9b:1::1", true},      // local-use NAT64
		{"2002:7f00:1::1", true},    // 6to4 of 127.0.0.1
		{"2002:a9fe:a9fe::1", true}, // 6to4 of 169.254.169.254
		{"2001:db8::1", true},
		{"100::1", true},
	}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			t.Parallel()
			ip := netip.MustParseAddr(tt.ip)
			if got := IsBlocked(ip); got != tt.blocked {
				t.Errorf("IsBlocked(%s) = %v, want %v", tt.ip, got, tt.blocked)
			}
		})
	}
	if !IsBlocked(netip.Addr{}) {
		t.Error("the zero Addr must be blocked")
	}
}

func TestCheckDial(t *testing.T) {
	t.Parallel()
	tests := []struct {
		address string
		ok      bool
	}{
		{"8.8.8.8:443", true},
		{"[2606:4700:4700::1111]:443", true},
		{"127.0.0.1:80", false},
		{"[::1]:80", false},
		{"[::ffff:127.0.0.1]:80", false},
		{"169.254.169.254:80", false},
		{"not-an-address", false},
	}
	for _, tt := range tests {
		err := checkDial("tcp", tt.address, nil)
		if (err == nil) != tt.ok {
			t.Errorf("checkDial(%q) = %v, want ok=%v", tt.address, err, tt.ok)
		}
	}
}

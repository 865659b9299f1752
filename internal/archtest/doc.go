// Package archtest holds no code, only tests that keep the shape of the
// repository true: the direction of imports between packages (style.md,
// "Dependencies point one way"), and the deployment files (docker-compose.yml,
// deploy/kubernetes) that no other test would load.
//
// It must not be imported by anything.
package archtest

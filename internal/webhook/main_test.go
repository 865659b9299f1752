package webhook_test

import (
	"testing"

	"github.com/atp-server/atp-server/internal/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

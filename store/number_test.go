package store

import (
	"math/big"
	"strings"
	"testing"
	"time"
)

// A real number from the output_get_media capture: server timestamp
// 1511852109.126 (kvs-protocol.md §5.4).
const realNumber = "91343852333181432392682062607743920146159169392"

func TestFragmentNumberLayout(t *testing.T) {
	n, _ := new(big.Int).SetString(realNumber, 10)
	ms := new(big.Int).Rsh(n, 28)
	ms.And(ms, new(big.Int).SetUint64(^uint64(0)))
	if ms.Int64() != 1511852109126 {
		t.Fatalf("capture number decodes to %d ms, layout assumption broken", ms.Int64())
	}
	if got := FragmentSequence(realNumber); got != 1 {
		t.Errorf("FragmentSequence(capture) = %d, want 1", got)
	}
	prev := ""
	// Numbers stay 47 digits for sequences below about 1.7e18.
	for _, seq := range []uint64{1, 2, 3, 1000, 1 << 40, 1 << 50} {
		num := FragmentNumber(seq, time.Now().UnixMilli())
		if len(num) != 47 || !strings.HasPrefix(num, "9134") {
			t.Errorf("FragmentNumber(%d) = %s: not 47 digits starting 9134", seq, num)
		}
		if FragmentSequence(num) != seq {
			t.Errorf("FragmentSequence(FragmentNumber(%d)) = %d", seq, FragmentSequence(num))
		}
		if num <= prev {
			t.Errorf("FragmentNumber(%d) = %s does not sort after %s", seq, num, prev)
		}
		prev = num
	}
	// A later sequence sorts after an earlier one even with an older clock.
	if a, b := FragmentNumber(5, 2_000_000_000_000), FragmentNumber(6, 1); b <= a {
		t.Errorf("sequence does not dominate time: %s <= %s", b, a)
	}
	if FragmentSequence("123") != ^uint64(0) {
		t.Error("FragmentSequence accepted a short string")
	}
}

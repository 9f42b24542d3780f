package api

import "strconv"

// JPEGQuality reads FormatConfig's JPEGQuality, which GetImages and image
// generation share: the model types it as a string, its documentation says a
// whole number from 1 to 100.
func JPEGQuality(q string) (int, error) {
	n, err := strconv.Atoi(q)
	if err != nil || n < 1 || n > 100 {
		return 0, InvalidArgument("FormatConfig JPEGQuality %q must be a whole number from 1 to 100.", q)
	}
	return n, nil
}

package playback

import (
	"errors"

	"github.com/openkvs/openkvs/api"
)

// APIError maps an error of this package to the exception the playback APIs
// answer it with (kvs-protocol.md §7.3, §7.5); other errors pass unchanged.
func APIError(err error) error {
	switch {
	case errors.Is(err, ErrUnsupportedCodec):
		return api.UnsupportedStreamMediaType("%v", err)
	case errors.Is(err, ErrMissingCodecPrivateData):
		return api.MissingCodecPrivateData("%v", err)
	case errors.Is(err, ErrInvalidCodecPrivateData):
		return api.InvalidCodecPrivateData("%v", err)
	case errors.Is(err, ErrInvalidMediaFrame):
		return api.InvalidMediaFrame("%v", err)
	case errors.Is(err, ErrNoTrack):
		return api.InvalidArgument("%v", err)
	}
	return err
}

package access

import "testing"

// FuzzParse loads arbitrary credentials files: an error or a store whose
// every key answers Secret and Allowed, never a panic.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"keys":[{"accessKeyId":"AKIA1","secretAccessKey":"s"}]}`))
	f.Add([]byte(`{"keys":[{"accessKeyId":"AKIA2","secretAccessKey":"s","policy":[{"actions":["kinesisvideo:Get*"],"streams":["cam-*"]},{"actions":["*"]}]}]}`))
	f.Add([]byte(`{"keys":[{"accessKeyId":"a","secretAccessKey":"s","policy":[{"actions":["kinesisvideo:PutMedia"],"streams":["*","x"]}]}],"extra":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := Parse(data)
		if err != nil {
			return
		}
		for _, id := range []string{"AKIA1", "AKIA2", "a", ""} {
			st.Secret(id)
			st.Allowed(id, "PutMedia", "cam-1")
			st.Allowed(id, "ListStreams", "")
		}
	})
}

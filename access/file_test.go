package access

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const exampleFile = `{
  "keys": [
    {"accessKeyId": "AKIAADMIN", "secretAccessKey": "admin-secret"},
    {
      "accessKeyId": "AKIACAMERA",
      "secretAccessKey": "camera/secret+1",
      "policy": [
        {"actions": ["kinesisvideo:PutMedia", "kinesisvideo:DescribeStream", "kinesisvideo:GetDataEndpoint"], "streams": ["cam-*", "door"]},
        {"actions": ["kinesisvideo:ListStreams"], "streams": ["cam-*"]}
      ]
    },
    {
      "accessKeyId": "AKIAVIEWER",
      "secretAccessKey": "viewer-secret",
      "policy": [{"actions": ["kinesisvideo:Get*", "kinesisvideo:ListFragments", "kinesisvideo:ListStreams"]}]
    },
    {
      "accessKeyId": "AKIA.OPS_1-x",
      "secretAccessKey": "ops-secret",
      "policy": [{"actions": ["kinesisvideo:*"], "streams": ["lab"]}, {"actions": ["*"], "streams": ["*"]}]
    }
  ]
}`

func TestParseSecrets(t *testing.T) {
	s, err := Parse([]byte(exampleFile))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if s.Len() != 4 {
		t.Errorf("Len = %d, want 4", s.Len())
	}
	for id, want := range map[string]string{"AKIAADMIN": "admin-secret", "AKIACAMERA": "camera/secret+1", "AKIA.OPS_1-x": "ops-secret"} {
		if got, ok := s.Secret(id); !ok || got != want {
			t.Errorf("Secret(%q) = %q, %v; want %q, true", id, got, ok, want)
		}
	}
	if got, ok := s.Secret("AKIAUNKNOWN"); ok || got != "" {
		t.Errorf("Secret of unknown key = %q, %v; want \"\", false", got, ok)
	}
}

func TestAllowed(t *testing.T) {
	s, err := Parse([]byte(exampleFile))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	tests := []struct {
		key, action, stream string
		want                bool
	}{
		// A key without a policy may do everything known, and nothing unknown.
		{"AKIAADMIN", "DeleteStream", "anything", true},
		{"AKIAADMIN", "ListStreams", "", true},
		{"AKIAADMIN", "PutMedia", "", true},
		{"AKIAADMIN", "DeleteEverything", "x", false},
		{"AKIAADMIN", "putmedia", "x", false}, // action names are case-sensitive
		// Unknown keys get nothing.
		{"AKIAUNKNOWN", "DescribeStream", "cam-1", false},
		{"", "DescribeStream", "cam-1", false},
		// Exact actions on prefix and exact stream patterns.
		{"AKIACAMERA", "PutMedia", "cam-1", true},
		{"AKIACAMERA", "PutMedia", "cam-", true},
		{"AKIACAMERA", "PutMedia", "door", true},
		{"AKIACAMERA", "PutMedia", "door2", false},
		{"AKIACAMERA", "PutMedia", "Cam-1", false}, // stream names are case-sensitive
		{"AKIACAMERA", "PutMedia", "cam", false},
		{"AKIACAMERA", "GetMedia", "cam-1", false},
		{"AKIACAMERA", "DeleteStream", "cam-1", false},
		// A stream action without a stream name matches only "*" patterns.
		{"AKIACAMERA", "PutMedia", "", false},
		// ListStreams: "" asks whether the key may call it; a name filters the results.
		{"AKIACAMERA", "ListStreams", "", true},
		{"AKIACAMERA", "ListStreams", "cam-7", true},
		{"AKIACAMERA", "ListStreams", "door", false},
		// Action prefix patterns; omitted streams mean every stream.
		{"AKIAVIEWER", "GetMedia", "door", true},
		{"AKIAVIEWER", "GetHLSStreamingSessionURL", "cam-1", true},
		{"AKIAVIEWER", "GetMediaForFragmentList", "x", true},
		{"AKIAVIEWER", "GetDataEndpoint", "x", true},
		{"AKIAVIEWER", "ListFragments", "x", true},
		{"AKIAVIEWER", "PutMedia", "x", false},
		{"AKIAVIEWER", "GetMedia", "", true},
		{"AKIAVIEWER", "ListStreams", "", true},
		{"AKIAVIEWER", "ListStreams", "any", true},
		// kinesisvideo:* and * match every action; statements are OR-ed.
		{"AKIA.OPS_1-x", "DeleteStream", "lab", true},
		{"AKIA.OPS_1-x", "DeleteStream", "other", true},
		{"AKIA.OPS_1-x", "Nope", "lab", false},
	}
	for _, tc := range tests {
		if got := s.Allowed(tc.key, tc.action, tc.stream); got != tc.want {
			t.Errorf("Allowed(%q, %q, %q) = %v, want %v", tc.key, tc.action, tc.stream, got, tc.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	key := func(fields string) string { return `{"keys": [` + fields + `]}` }
	tests := []struct{ name, file, want string }{
		{"not json", `{"keys": [}`, "line 1, column 11: invalid character '}' looking for beginning of value"},
		{"syntax error on a later line", "{\n  \"keys\": [\n    {\"accessKeyId\": \"A\",}\n  ]\n}",
			"line 3, column 25: invalid character '}' looking for beginning of object key string"},
		{"empty file", ``, "EOF"},
		{"trailing data", `{"keys": []} {}`, "unexpected data after the JSON object"},
		{"not an object", `[]`, "must be an object, not a JSON array"},
		{"no keys", `{}`, `"keys" is missing or empty: at least one key is required`},
		{"empty keys", `{"keys": []}`, `"keys" is missing or empty: at least one key is required`},
		{"unknown top-level field", `{"key": []}`, `unknown field "key" (allowed: keys)`},
		{"keys not a list", `{"keys": {}}`, "keys: must be a list of objects, not a JSON object"},
		{"key not an object", key(`"AKIA"`), "keys[0]: must be an object, not a JSON string"},
		{"unknown key field", key(`{"accessKeyId": "A", "secretAccessKey": "s", "secret": "x"}`),
			`keys[0]: unknown field "secret" (allowed: accessKeyId, secretAccessKey, policy)`},
		{"missing id and secret", key(`{}`),
			"keys[0].accessKeyId: missing or empty\nkeys[0].secretAccessKey: missing or empty"},
		{"empty secret", key(`{"accessKeyId": "A", "secretAccessKey": ""}`), `keys[0] (accessKeyId "A").secretAccessKey: missing or empty`},
		{"padded secret", key(`{"accessKeyId": "A", "secretAccessKey": "s "}`),
			`keys[0] (accessKeyId "A").secretAccessKey: has leading or trailing white space`},
		{"bad id characters", key(`{"accessKeyId": "AKIA/1", "secretAccessKey": "s"}`),
			`keys[0] (accessKeyId "AKIA/1").accessKeyId: "AKIA/1": only letters, digits, '.', '_' and '-' are allowed`},
		{"id too long", key(`{"accessKeyId": "` + strings.Repeat("A", 129) + `", "secretAccessKey": "s"}`),
			`keys[0] (accessKeyId "` + strings.Repeat("A", 129) + `").accessKeyId: longer than 128 characters`},
		{"id of wrong type", key(`{"accessKeyId": 7, "secretAccessKey": "s"}`),
			"keys[0].accessKeyId: must be a string, not a JSON number"},
		{"duplicate id", key(`{"accessKeyId": "A", "secretAccessKey": "s"}, {"accessKeyId": "B", "secretAccessKey": "s"}, {"accessKeyId": "A", "secretAccessKey": "t"}`),
			`keys[2] (accessKeyId "A").accessKeyId: duplicate of keys[0]`},
		{"empty policy", key(`{"accessKeyId": "A", "secretAccessKey": "s", "policy": []}`),
			`keys[0] (accessKeyId "A").policy: empty list grants nothing; omit "policy" to allow everything`},
		{"policy not a list", key(`{"accessKeyId": "A", "secretAccessKey": "s", "policy": {"actions": ["*"]}}`),
			"keys[0].policy: must be a list of objects, not a JSON object"},
		{"unknown statement field", key(`{"accessKeyId": "A", "secretAccessKey": "s", "policy": [{"actions": ["*"], "resources": ["x"]}]}`),
			`keys[0] (accessKeyId "A").policy[0]: unknown field "resources" (allowed: actions, streams)`},
		{"missing actions", key(`{"accessKeyId": "A", "secretAccessKey": "s", "policy": [{"streams": ["x"]}]}`),
			`keys[0] (accessKeyId "A").policy[0].actions: missing or empty, e.g. ["kinesisvideo:PutMedia"]`},
		{"actions not a list", key(`{"accessKeyId": "A", "secretAccessKey": "s", "policy": [{"actions": "kinesisvideo:PutMedia"}]}`),
			`keys[0] (accessKeyId "A").policy[0].actions: must be a list of strings, not a JSON string`},
		{"action without prefix", key(`{"accessKeyId": "A", "secretAccessKey": "s", "policy": [{"actions": ["PutMedia"]}]}`),
			`keys[0] (accessKeyId "A").policy[0].actions[0]: action "PutMedia" must start with "kinesisvideo:", e.g. "kinesisvideo:PutMedia"`},
		{"unknown action", key(`{"accessKeyId": "A", "secretAccessKey": "s", "policy": [{"actions": ["kinesisvideo:PutMedia", "kinesisvideo:ConnectAsMaster"]}]}`),
			`keys[0] (accessKeyId "A").policy[0].actions[1]: unknown action "kinesisvideo:ConnectAsMaster"`},
		{"wrong case action", key(`{"accessKeyId": "A", "secretAccessKey": "s", "policy": [{"actions": ["kinesisvideo:putMedia"]}]}`),
			`keys[0] (accessKeyId "A").policy[0].actions[0]: unknown action "kinesisvideo:putMedia" (action names are case-sensitive: did you mean "kinesisvideo:PutMedia"?)`},
		{"action prefix matching nothing", key(`{"accessKeyId": "A", "secretAccessKey": "s", "policy": [{"actions": ["kinesisvideo:Connect*"]}]}`),
			`keys[0] (accessKeyId "A").policy[0].actions[0]: unknown action "kinesisvideo:Connect*"`},
		{"star inside action", key(`{"accessKeyId": "A", "secretAccessKey": "s", "policy": [{"actions": ["kinesisvideo:Get*Media"]}]}`),
			`keys[0] (accessKeyId "A").policy[0].actions[0]: bad action "kinesisvideo:Get*Media": '*' is only allowed at the end`},
		{"empty streams", key(`{"accessKeyId": "A", "secretAccessKey": "s", "policy": [{"actions": ["*"], "streams": []}]}`),
			`keys[0] (accessKeyId "A").policy[0].streams: empty list matches nothing; omit "streams" or use ["*"] for every stream`},
		{"bad stream patterns", key(`{"accessKeyId": "A", "secretAccessKey": "s", "policy": [{"actions": ["*"], "streams": ["", "cam*-1", "cam 1", "**", "` + strings.Repeat("s", 257) + `"]}]}`),
			strings.Join([]string{
				`keys[0] (accessKeyId "A").policy[0].streams[0]: empty pattern`,
				`keys[0] (accessKeyId "A").policy[0].streams[1]: bad pattern "cam*-1": '*' is only allowed at the end`,
				`keys[0] (accessKeyId "A").policy[0].streams[2]: bad pattern "cam 1": stream names contain only letters, digits, '_', '.' and '-'`,
				`keys[0] (accessKeyId "A").policy[0].streams[3]: bad pattern "**": '*' is only allowed at the end`,
				`keys[0] (accessKeyId "A").policy[0].streams[4]: bad pattern "` + strings.Repeat("s", 257) + `": longer than 256 characters`,
			}, "\n")},
		{"errors in several keys and statements", key(`{"accessKeyId": "A", "secretAccessKey": ""}, {"accessKeyId": "B", "secretAccessKey": "s",
			"policy": [{"actions": ["kinesisvideo:Nope"], "streams": ["a*b"]}, {"actions": []}]}`),
			strings.Join([]string{
				`keys[0] (accessKeyId "A").secretAccessKey: missing or empty`,
				`keys[1] (accessKeyId "B").policy[0].actions[0]: unknown action "kinesisvideo:Nope"`,
				`keys[1] (accessKeyId "B").policy[0].streams[0]: bad pattern "a*b": '*' is only allowed at the end`,
				`keys[1] (accessKeyId "B").policy[1].actions: missing or empty, e.g. ["kinesisvideo:PutMedia"]`,
			}, "\n")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse([]byte(tc.file))
			if err == nil {
				t.Fatalf("Parse succeeded with %d keys, want error %q", s.Len(), tc.want)
			}
			if diff := cmp.Diff(tc.want, err.Error()); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "credentials.json")
	if err := os.WriteFile(path, []byte(exampleFile), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !s.Allowed("AKIACAMERA", "PutMedia", "cam-1") {
		t.Error("loaded store denies a granted action")
	}

	if err := os.WriteFile(path, []byte(`{"keys": [{"accessKeyId": "A"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(path)
	want := "credentials file " + path + `: keys[0] (accessKeyId "A").secretAccessKey: missing or empty`
	if err == nil || err.Error() != want {
		t.Errorf("Load of invalid file: got %v, want %q", err, want)
	}

	missing := filepath.Join(dir, "missing.json")
	_, err = Load(missing)
	if !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("Load of missing file: got %v, want a wrapped not-exist error", err)
	}
}

func unwrapAll(err error) error {
	for {
		next, ok := err.(interface{ Unwrap() error })
		if !ok || next.Unwrap() == nil {
			return err
		}
		err = next.Unwrap()
	}
}

func TestActions(t *testing.T) {
	got := Actions()
	for i := 1; i < len(got); i++ {
		if got[i-1] >= got[i] {
			t.Fatalf("Actions not sorted and unique at %q, %q", got[i-1], got[i])
		}
	}
	for _, want := range []string{"CreateStream", "ListStreams", "PutMedia", "GetMedia", "GetClip", "GetImages",
		"GetHLSStreamingSessionURL", "GetDASHStreamingSessionURL", "TagResource", "UpdateStreamStorageConfiguration"} {
		if _, err := parseActionPattern(actionPrefix + want); err != nil {
			t.Errorf("action %s: %v", want, err)
		}
	}
	got[0] = "mutated"
	if Actions()[0] == "mutated" {
		t.Error("Actions returned the package's own slice")
	}
}

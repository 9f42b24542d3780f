package server

import (
	"net/http"

	"github.com/openkvs/openkvs/api"
)

// unserved are the operations of the KVS models that openkvs does not
// serve yet, by path. GetDataEndpoint answers for every APIName, so a
// client may well call them: they get a 501 that says so rather than the
// UnknownOperationException of a path no model defines.
var unserved = map[string]string{
	// kinesisvideo: the stream configurations. (Signaling channels and
	// edge agents are other resources, which access knows no actions of:
	// their paths stay unknown.)
	"/describeMediaStorageConfiguration":   "DescribeMediaStorageConfiguration",
	"/updateMediaStorageConfiguration":     "UpdateMediaStorageConfiguration",
	"/describeMappedResourceConfiguration": "DescribeMappedResourceConfiguration",
}

// unservedRoutes answers each unserved operation with NotImplemented, once
// the request is authenticated like any other call.
func (s *Server) unservedRoutes() {
	for path, action := range unserved {
		s.handle(path, action, func(w http.ResponseWriter, r *http.Request) {
			writeError(w, r, api.NotImplemented(action))
		})
	}
}

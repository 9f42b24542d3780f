// Package access holds the access keys that may call the server and what each key may do. It
// reads them from the credentials file given with --credentials, validates it strictly, and can
// re-read it on SIGHUP without dropping requests (Reloader).
//
// # Credentials file format
//
// The credentials file is a JSON object with one member, "keys", a list of access keys:
//
//	{
//	  "keys": [
//	    {
//	      "accessKeyId": "AKIAADMIN0000000001",
//	      "secretAccessKey": "change-me-admin-secret"
//	    },
//	    {
//	      "accessKeyId": "AKIACAMERAS00000001",
//	      "secretAccessKey": "change-me-camera-secret",
//	      "policy": [
//	        {"actions": ["kinesisvideo:PutMedia", "kinesisvideo:DescribeStream",
//	                     "kinesisvideo:GetDataEndpoint"], "streams": ["cam-*"]},
//	        {"actions": ["kinesisvideo:ListStreams"]}
//	      ]
//	    }
//	  ]
//	}
//
// Each key has:
//
//   - "accessKeyId" (required): 1–128 characters of letters, digits, '.', '_' and '-'; unique in
//     the file. Clients use it as their AWS access key id.
//   - "secretAccessKey" (required): the AWS secret access key clients sign with; not empty, no
//     leading or trailing white space.
//   - "policy" (optional): a list of statements. A key without "policy" may do everything. A key
//     with a policy may do only what one of its statements grants; there are no deny statements.
//
// Each statement has:
//
//   - "actions" (required): IAM-style action names, case-sensitive as in IAM:
//     "kinesisvideo:PutMedia". A trailing '*' matches every action with that prefix
//     ("kinesisvideo:Get*"); "kinesisvideo:*" and "*" match every action. The actions are
//     CreateStream, DeleteStream, DescribeStream, ListStreams, UpdateStream, UpdateDataRetention,
//     GetDataEndpoint, TagStream, UntagStream, ListTagsForStream, TagResource, UntagResource,
//     ListTagsForResource, DescribeStreamStorageConfiguration, UpdateStreamStorageConfiguration,
//     Describe/UpdateImageGenerationConfiguration, Describe/UpdateNotificationConfiguration,
//     Describe/UpdateMediaStorageConfiguration, DescribeMappedResourceConfiguration, PutMedia,
//     GetMedia, ListFragments, GetMediaForFragmentList, GetClip, GetImages,
//     GetHLSStreamingSessionURL and GetDASHStreamingSessionURL.
//   - "streams" (optional): stream name patterns the actions apply to: an exact name ("cam-1"),
//     a prefix followed by '*' ("cam-*"), or "*" for every stream. Omitted means every stream.
//     Operations that take a stream ARN are matched on the stream name inside it.
//
// ListStreams names no stream: a key may call it when one of its statements grants ListStreams,
// and the result lists only the streams matched by those statements' "streams" (so the camera
// key above lists every stream, and would list only cam-* streams had that statement said
// "streams": ["cam-*"]).
//
// Loading fails, and a reload keeps the previous file, on any error: invalid JSON, an unknown
// field, a missing or empty accessKeyId or secretAccessKey, a duplicate accessKeyId, an empty
// policy, actions or streams list, an unknown action, or a bad stream pattern. Every error names
// the key index and field, e.g. keys[1] (accessKeyId "AKIACAMERAS00000001").policy[0].actions[2].
//
// The file holds secrets: keep it readable by the server's user only (chmod 600).
package access

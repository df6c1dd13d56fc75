// Remote objects (http://, https://, s3://) as the rest of mneme asks about
// them: open one as a source, read a small one whole, ask whether one
// exists, list the objects under an S3 prefix. Internal to io/ and the
// catalog layer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "io/http_source.hpp"
#include "mneme/source.hpp"

namespace mneme {

// An object: the URL requests go to, the name messages use, and what signs them.
struct RemoteObject {
  std::string url;
  std::string name;
  RequestSigner signer;
};

bool is_remote_spec(std::string_view spec);  // http://, https://, s3://, hf://

// hf://ORG/REPO[@REVISION][/FILE] in one spelling: hf://ORG/REPO@REVISION/FILE,
// or hf://ORG/REPO@REVISION/ (a folder) without FILE; the revision defaults
// to main. Other specs come back as they are.
std::string canonical_remote_spec(const std::string& spec);

// The object a spec names (S3: its endpoint URL, region and credentials
// resolved now, aws.hpp; hf://: HF_ENDPOINT (default https://huggingface.co)
// /ORG/REPO/resolve/REVISION/FILE, with "Authorization: Bearer $HF_TOKEN"
// when HF_TOKEN is set). Error{parse} for a malformed URL.
RemoteObject resolve_remote(const std::string& spec, const OpenOptions& options);

// A small object read whole (at most cap bytes), with the parts' retry
// policy: nullopt when it does not exist (404, S3 NoSuchKey).
std::optional<std::string> remote_get_small(const RemoteObject& object, std::uint64_t cap,
                                            const OpenOptions& options);

// Whether the object exists (a one-byte ranged GET: S3 presigned URLs and
// some servers refuse HEAD).
bool remote_exists(const RemoteObject& object, const OpenOptions& options);

// The objects directly under an S3 prefix (s3://bucket/prefix/), as s3://
// specs in key order (ListObjectsV2, every page). Error{unsupported} for
// other schemes: plain HTTP cannot list.
std::vector<std::string> remote_list(const std::string& prefix_spec, const OpenOptions& options);

}  // namespace mneme

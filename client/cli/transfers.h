// Transfers beyond one file: put -r and get -r (a tree, several files in
// flight at once, each on a connection of its own), and get -c (resume a
// download from the first chunk its partial file lacks).
#pragma once

#include <cstdint>
#include <string>

#include "client/cli/commands.h"

namespace dfs::cli {

struct TreeOptions {
  int jobs = 4;              // files in flight at once (-j)
  int parallel = 4;          // chunks of one file at once (--parallel)
  bool force = false;        // put: replace files that exist
  uint32_t replication = 0;  // put: 0 is the cluster's default
  uint64_t chunk_size = 0;   // put: 0 is the cluster's default
};

// put -r LOCAL REMOTE, as cp -r: into REMOTE/basename(LOCAL) when REMOTE is
// an existing directory, else REMOTE becomes the copy of LOCAL. Folders
// (empty ones too) are made first; every regular file (or symbolic link to
// one) is put; a link to a folder is skipped with a note, so no loop is
// followed. A file that fails is named with its error on stderr and the
// rest go on; the exit status is 1 if any failed.
void PutTree(Context& ctx, const std::string& local, const std::string& remote, const TreeOptions& options);

// get -r REMOTE LOCAL, as cp -r: into LOCAL/basename(REMOTE) when LOCAL is
// an existing folder, else LOCAL becomes the copy of REMOTE. Each file is
// written whole or not at all (Client::Get); errors as for PutTree.
void GetTree(Context& ctx, const std::string& remote, const std::string& local, const TreeOptions& options);

// get -c REMOTE LOCAL: downloads into LOCAL.part, which a failed or killed
// run leaves behind; a later run verifies the chunks the .part holds
// against the master's chunk checksums, keeps the leading ones that match
// and fetches the rest from the first that does not, then checks the whole
// file's checksum and renames it to LOCAL. Two get -c of one target exclude
// each other (flock on the .part).
void GetResume(Context& ctx, const std::string& remote, const std::string& local, int parallel);

}  // namespace dfs::cli

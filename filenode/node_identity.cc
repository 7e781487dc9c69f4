#include "filenode/node_identity.h"

#include <cctype>

#include <fmt/format.h>

#include "common/env.h"
#include "common/random_id.h"

namespace dfs::filenode {

Result<std::string> LoadOrCreateNodeId(const std::string& dir, Env* env) {
  const std::string path = dir + "/node.id";
  auto st = env->Stat(path);
  if (!st && st.error().code() != Code::kNotFound) return st.error();
  if (st) {
    DFS_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(env, path));
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
    bool valid = !text.empty() && text.size() <= 64;
    for (char c : text) valid = valid && (std::isalnum(static_cast<unsigned char>(c)) || c == '-');
    if (!valid) {
      return Status::Corruption(fmt::format("{} does not hold a node id; refusing to make up a new one for "
                                            "a folder that may hold data",
                                            path));
    }
    return text;
  }
  std::string id = RandomHex(6);
  DFS_RETURN_IF_ERROR(WriteFileDurably(env, path, id + "\n"));
  return id;
}

}  // namespace dfs::filenode

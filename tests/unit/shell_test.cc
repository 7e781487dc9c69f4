// The shell's words (client/cli/shell_words.h) and Tab completion
// (shell_complete.h) over the real command tree, with a listing that
// counts how often the "master" was asked.
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "client/cli/commands.h"
#include "client/cli/shell_complete.h"
#include "client/cli/shell_editor.h"
#include "client/cli/shell_words.h"

namespace dfs::cli {
namespace {

using Words = std::vector<std::string>;

TEST(ShellWords, SplitsLikeSh) {
  EXPECT_EQ(*SplitWords("  put  -f a.txt   /x  "), (Words{"put", "-f", "a.txt", "/x"}));
  EXPECT_EQ(*SplitWords("put 'my file' \"an \\\"odd\\\" one\" a\\ b"),
            (Words{"put", "my file", "an \"odd\" one", "a b"}));
  EXPECT_EQ(*SplitWords("ls '' x"), (Words{"ls", "", "x"}));
  EXPECT_EQ(*SplitWords("ls a#b # a comment"), (Words{"ls", "a#b"}));
  EXPECT_EQ(*SplitWords("   "), Words{});
  EXPECT_EQ(*SplitWords("echo \"a\\nb\""), (Words{"echo", "a\\nb"}));
}

TEST(ShellWords, BadQuotingIsAnErrorNotACrash) {
  EXPECT_EQ(SplitWords("put 'open").error().code(), Code::kInvalidArgument);
  EXPECT_EQ(SplitWords("put \"open").error().code(), Code::kInvalidArgument);
  EXPECT_EQ(SplitWords("put x\\").error().code(), Code::kInvalidArgument);
}

TEST(ShellWords, PartialLineGivesTheWordUnderTheCursor) {
  PartialLine p = SplitPartial("put -f 'my fi");
  EXPECT_EQ(p.words, (Words{"put", "-f"}));
  EXPECT_EQ(p.current, "my fi");
  EXPECT_EQ(p.current_start, 7u);
  p = SplitPartial("ls ");
  EXPECT_EQ(p.words, Words{"ls"});
  EXPECT_EQ(p.current, "");
  EXPECT_EQ(p.current_start, 3u);
}

TEST(ShellWords, QuoteRoundTrips) {
  for (std::string w : {"plain", "with space", "it's", "back\\slash", "#hash", "a#b", "tab\there"}) {
    auto back = SplitWords(QuoteWord(w));
    ASSERT_TRUE(back.has_value()) << w;
    EXPECT_EQ(*back, Words{w});
  }
  EXPECT_EQ(QuoteWord("plain"), "plain");
}

class CompleterTest : public ::testing::Test {
 protected:
  CompleterTest()
      : app_(BuildApp(ctx_, false)),
        cache_(
            [this](const std::string& dir) -> Result<std::vector<DirEntry>> {
              ++lists_;
              auto it = dirs_.find(dir);
              if (it == dirs_.end()) return Status::NotFound("no such file or directory: " + dir);
              return it->second;
            },
            std::chrono::seconds(60)),
        completer_(*app_, cache_, [this] { return cwd_; }) {
    app_->add_subcommand("cd", "")->add_option("DIR");
    app_->add_subcommand("lcd", "")->add_option("LOCAL_DIR");
    app_->add_subcommand("help", "")->add_option("COMMAND");
    dirs_["/"] = {{"photos", true}, {"notes.txt", false}, {"pics", true}};
    dirs_["/photos"] = {{"2025", true}, {"2026", true}, {"a b.jpg", false}};
  }

  Words Candidates(std::string_view line) { return completer_.Complete(line).candidates; }

  Context ctx_;
  std::unique_ptr<CLI::App> app_;
  std::map<std::string, std::vector<DirEntry>> dirs_;
  int lists_ = 0;
  std::string cwd_ = "/";
  ListingCache cache_;
  Completer completer_;
};

TEST_F(CompleterTest, CommandNamesAndFlags) {
  EXPECT_EQ(Candidates("p"), (Words{"put"}));
  EXPECT_EQ(Candidates("r"), (Words{"rm", "rmdir"}));
  EXPECT_EQ(Candidates("--js"), (Words{"--json"}));
  EXPECT_EQ(Candidates("--json mk"), (Words{"mkdir"}));
  EXPECT_EQ(Candidates("put --no"), (Words{"--no-parents"}));
  EXPECT_EQ(Candidates("help tr"), (Words{"tree"}));
  EXPECT_TRUE(Candidates("nosuchcommand ").empty());
}

TEST_F(CompleterTest, RemotePathsRelativeToTheCurrentDirectory) {
  EXPECT_EQ(Candidates("ls p"), (Words{"photos/", "pics/"}));
  EXPECT_EQ(Candidates("ls /photos/20"), (Words{"/photos/2025/", "/photos/2026/"}));
  EXPECT_EQ(Candidates("cd "), (Words{"photos/", "pics/"}));  // directories only
  cwd_ = "/photos";
  EXPECT_EQ(Candidates("stat a"), (Words{"a b.jpg"}));
  EXPECT_EQ(Candidates("stat ../no"), (Words{"../notes.txt"}));
  EXPECT_TRUE(Candidates("ls /nowhere/x").empty());
}

TEST_F(CompleterTest, PositionalsKnowLocalFromRemote) {
  // put LOCAL REMOTE: the second word is in dfs, skipping a flag's value.
  EXPECT_EQ(Candidates("put --parallel 8 ./x ph"), (Words{"photos/"}));
  // get REMOTE LOCAL: the first is.
  EXPECT_EQ(Candidates("get no"), (Words{"notes.txt"}));
}

TEST_F(CompleterTest, SecondTabIsServedFromTheCache) {
  Candidates("ls /photos/");
  Candidates("ls /photos/2");
  EXPECT_EQ(lists_, 1);
  cache_.Clear();
  Candidates("ls /photos/2");
  EXPECT_EQ(lists_, 2);
}

TEST(ShellColumns, LaysOutDownTheColumns) {
  EXPECT_EQ(Columns({"a", "b", "c"}, 80), "a  b  c\n");
  EXPECT_EQ(Columns({"aa", "bb", "cc", "dd"}, 8), "aa  cc\nbb  dd\n");
  EXPECT_EQ(CommonPrefix({"photos/", "pics/"}), "p");
}

}  // namespace
}  // namespace dfs::cli

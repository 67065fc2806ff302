// hosts_index_test: the ares resolver's index of a hosts file
// (lib/dns/hosts_index.hpp), on temporary files. Built from the index's own
// source, without libmoss, c-ares or a hub: the index needs none of them.
//
// The index is a filter: may_list() must be true for every name the file
// could answer (a false "no" would hide an entry), and false for names it
// certainly cannot (that is the saving).
#include "dns/hosts_index.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>

#include <unistd.h>

using namespace std::chrono_literals;
using moss::detail::dns::hosts_index;
using moss::detail::time_point;

namespace {

// WithHostsFile: a temporary hosts file, removed at TearDown.
class WithHostsFile : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/moss-hosts-index-XXXXXX";
    int fd = mkstemp(tmpl);
    ASSERT_GE(fd, 0);
    ::close(fd);
    path_ = tmpl;
  }
  void TearDown() override { ::unlink(path_.c_str()); }

  void write(const std::string& text) {
    std::ofstream out(path_, std::ios::binary | std::ios::trunc);
    out << text;
    ASSERT_TRUE(out.good());
  }
  const char* path() const { return path_.c_str(); }

  std::string path_;
};

time_point at(std::chrono::milliseconds ms) { return time_point{} + 1h + ms; }

TEST_F(WithHostsFile, ListsNamesAliasesAndAddresses) {
  write("10.1.2.3 web.example www web\n"
        "fd00::7\tsix.example   six\n");
  hosts_index idx(path());
  for (const char* name : {"web.example", "www", "web", "six.example", "six", "10.1.2.3", "fd00::7"})
    EXPECT_TRUE(idx.may_list(name, at(0ms))) << name;
}

TEST_F(WithHostsFile, NamesTheFileLacksAreNotListed) {
  write("10.1.2.3 web.example www\n");
  hosts_index idx(path());
  EXPECT_FALSE(idx.may_list("mail.example", at(0ms)));   // no token this long
  EXPECT_FALSE(idx.may_list("wxw.example", at(0ms)));    // a token this long, another name
  EXPECT_FALSE(idx.may_list("web.example.org", at(0ms)));
  EXPECT_FALSE(idx.may_list("ww", at(0ms)));
  EXPECT_FALSE(idx.may_list("", at(0ms)));
}

TEST_F(WithHostsFile, FoldsAsciiCaseBothWays) {
  write("10.1.2.3 MiXeD.Example\n");
  hosts_index idx(path());
  EXPECT_TRUE(idx.may_list("mixed.example", at(0ms)));
  EXPECT_TRUE(idx.may_list("MIXED.EXAMPLE", at(0ms)));
}

TEST_F(WithHostsFile, CommentsAreSkipped) {
  write("# 10.9.9.9 commented.example\n"
        "10.1.2.3 web.example # old-name.example\n"
        "10.1.2.4 mail.example#tail.example\n");
  hosts_index idx(path());
  EXPECT_TRUE(idx.may_list("web.example", at(0ms)));
  EXPECT_TRUE(idx.may_list("mail.example", at(0ms)));
  EXPECT_FALSE(idx.may_list("commented.example", at(0ms)));
  EXPECT_FALSE(idx.may_list("old-name.example", at(0ms)));
  EXPECT_FALSE(idx.may_list("tail.example", at(0ms)));
}

// Malformed lines (no address, stray separators, a NUL byte, CRLF endings)
// neither stop the reading nor glue tokens together: every line after them
// is indexed. Their own tokens stay listed, the safe side for a filter.
TEST_F(WithHostsFile, BadLinesDoNotHideTheLinesAfterThem) {
  std::string text = "not-an-address\n"
                     "   \t \n"
                     "\n"
                     "10.1.2.3\n"
                     "10.1.2.4 nul";
  text += '\0';
  text += "tail.example\r\n"
          "\v\f10.1.2.5 after.example\r\n"
          "10.1.2.6 last.example";  // no newline at the end
  write(text);
  hosts_index idx(path());
  EXPECT_TRUE(idx.may_list("after.example", at(0ms)));
  EXPECT_TRUE(idx.may_list("last.example", at(0ms)));
  EXPECT_TRUE(idx.may_list("nul", at(0ms)));
  EXPECT_TRUE(idx.may_list("tail.example", at(0ms)));
  EXPECT_FALSE(idx.may_list("nultail.example", at(0ms)));
  EXPECT_FALSE(idx.may_list("after.example\r", at(0ms)));
  EXPECT_TRUE(idx.may_list("not-an-address", at(0ms)));
}

TEST_F(WithHostsFile, LocalhostMayAlwaysBeListed) {
  write("10.1.2.3 web.example\n");
  hosts_index idx(path());
  // c-ares answers these itself when the file does not (RFC 6761).
  EXPECT_TRUE(idx.may_list("localhost", at(0ms)));
  EXPECT_TRUE(idx.may_list("LocalHost.", at(0ms)));
  EXPECT_TRUE(idx.may_list("app.localhost", at(0ms)));
  EXPECT_FALSE(idx.may_list("notlocalhost", at(0ms)));
}

TEST_F(WithHostsFile, NamesOnlyCAresCanJudgeAreListed) {
  write("10.1.2.3 caf\xc3\xa9.example\n");
  hosts_index idx(path());
  // Bytes a locale may fold differently, and names longer than DNS allows.
  EXPECT_TRUE(idx.may_list("CAF\xc3\x89.example", at(0ms)));
  EXPECT_TRUE(idx.may_list(std::string(300, 'a').c_str(), at(0ms)));
}

TEST_F(WithHostsFile, AnAbsentFileListsNothing) {
  std::string missing = path_ + ".absent";
  hosts_index idx(missing.c_str());
  EXPECT_FALSE(idx.may_list("web.example", at(0ms)));
  EXPECT_TRUE(idx.may_list("localhost", at(0ms)));
}

TEST_F(WithHostsFile, AFileThatCannotBeReadListsEverything) {
  // A directory: it exists, and reading it fails with EISDIR.
  hosts_index idx("/tmp");
  EXPECT_TRUE(idx.may_list("anything.example", at(0ms)));
}

// The file is checked at most once a second; a file changed within the
// last two seconds is read again at each check.
TEST_F(WithHostsFile, ChangesAreSeenAtTheNextCheck) {
  write("10.1.2.3 web.example\n");
  hosts_index idx(path());
  EXPECT_FALSE(idx.may_list("new.example", at(0ms)));

  write("10.1.2.3 web.example\n10.1.2.4 new.example\n");  // same size class, new name
  EXPECT_FALSE(idx.may_list("new.example", at(500ms))) << "checked again within a second";
  EXPECT_TRUE(idx.may_list("new.example", at(1000ms)));

  write("10.1.2.4 new.example\n");
  EXPECT_TRUE(idx.may_list("web.example", at(1500ms)));
  EXPECT_FALSE(idx.may_list("web.example", at(2000ms)));

  ASSERT_EQ(::unlink(path()), 0);
  EXPECT_TRUE(idx.may_list("new.example", at(2500ms)));
  EXPECT_FALSE(idx.may_list("new.example", at(3000ms)));
}

}  // namespace

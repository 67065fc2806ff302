// fetch_test: the built moss-fetch binary against the loopback HTTP server of
// tests/fixtures/http_server.hpp, and its response parser on its own.
#include "../fixtures/http_server.hpp"
#include "http_response.hpp"

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using moss_fetch::response_parser;

namespace {

struct result {
  int status;
  std::string out;
  std::string err;
  double seconds;
};

result run(const std::string& args) {
  char errname[] = "/tmp/moss_fetch_test_err_XXXXXX";
  ::close(mkstemp(errname));
  result r{};
  auto t0 = std::chrono::steady_clock::now();
  FILE* p = popen((std::string(MOSS_FETCH) + " " + args + " 2>" + errname).c_str(), "r");
  std::array<char, 65536> buf{};
  std::size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int st = pclose(p);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  std::ifstream e(errname);
  std::stringstream ss;
  ss << e.rdbuf();
  r.err = ss.str();
  ::unlink(errname);
  return r;
}

// row() is the summary line of url ("" if none).
std::string row(const std::string& out, const std::string& url) {
  std::istringstream in(out);
  for (std::string l; std::getline(in, l);)
    if (l.rfind(url + " ", 0) == 0) return l;
  return "";
}

std::vector<std::string> fields(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> v;
  for (std::string w; in >> w;) v.push_back(w);
  return v;
}

// parse_all() feeds text to a parser in pieces of step bytes.
std::string parse_all(response_parser& p, const std::string& text, std::size_t step, bool eof = true) {
  std::string body;
  for (std::size_t i = 0; i < text.size(); i += step)
    p.feed(std::string_view(text).substr(i, step), [&](std::string_view part) { body += part; });
  if (eof) p.finish();
  return body;
}

}  // namespace

TEST(Fetch, ManySlowUrlsAreFetchedConcurrently) {
  moss_test::http_server srv(300ms);
  std::string args = "-c 20";
  for (int i = 0; i < 20; ++i) args += " " + srv.url("/page" + std::to_string(i));
  auto r = run(args);
  EXPECT_EQ(r.status, 0) << r.err << r.out;
  // One at a time: 20 x 0.3 s = 6 s.
  EXPECT_LT(r.seconds, 3.0);
  auto f = fields(row(r.out, srv.url("/page7")));
  ASSERT_GE(f.size(), 4u) << r.out;
  EXPECT_EQ(f[1], "200");
  EXPECT_EQ(f[2], "6");  // "hello\n"
  EXPECT_NE(r.out.find("20 URLs, 0 failed"), std::string::npos) << r.out;
  EXPECT_EQ(srv.requests(), 20);
}

TEST(Fetch, ConcurrencyIsBoundedByDashC) {
  moss_test::http_server srv(300ms);
  std::string args = "-c 2";
  for (int i = 0; i < 6; ++i) args += " " + srv.url("/p" + std::to_string(i));
  auto r = run(args);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_GT(r.seconds, 0.85);  // three rounds of two
}

TEST(Fetch, RedirectsAreFollowedUpToTheLimit) {
  moss_test::http_server srv(0ms);
  auto ok = run(srv.url("/redirect/3"));
  EXPECT_EQ(ok.status, 0) << ok.err << ok.out;
  auto f = fields(row(ok.out, srv.url("/redirect/3")));
  ASSERT_GE(f.size(), 3u) << ok.out;
  EXPECT_EQ(f[1], "200");
  EXPECT_EQ(f[2], "6");

  auto too_many = run("--max-redirects 2 " + srv.url("/redirect/3"));
  EXPECT_EQ(too_many.status, 1);
  EXPECT_NE(too_many.err.find(srv.url("/redirect/3") + ": too many redirects (more than 2)"), std::string::npos)
      << too_many.err;

  auto none = run("--max-redirects 0 " + srv.url("/redirect/1"));
  EXPECT_EQ(fields(row(none.out, srv.url("/redirect/1")))[1], "302") << none.out;
}

TEST(Fetch, BodiesAreSavedUnderCollisionSafeNames) {
  moss_test::http_server srv(0ms, "body text\n");
  auto dir = std::filesystem::temp_directory_path() / ("moss_fetch_out_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto r = run("-o " + dir.string() + " " + srv.url("/a/b.txt") + " " + srv.url("/a/b.txt") + " " + srv.url("/"));
  EXPECT_EQ(r.status, 0) << r.err;
  std::string base = "127.0.0.1_" + std::to_string(srv.port());
  for (const auto& name : {base + "_a_b.txt", base + "_a_b.txt.1", base + "_index.html"}) {
    std::ifstream f(dir / name);
    std::stringstream ss;
    ss << f.rdbuf();
    EXPECT_EQ(ss.str(), "body text\n") << name;
  }
  std::filesystem::remove_all(dir);
}

TEST(Fetch, HttpsAndErrorStatusesFailOnlyTheirUrl) {
  moss_test::http_server srv(0ms);
  auto r = run("https://example.invalid/ " + srv.url("/status/404") + " " + srv.url("/fine"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("moss-fetch: https://example.invalid/: https not supported\n"), std::string::npos) << r.err;
  EXPECT_EQ(fields(row(r.out, srv.url("/status/404")))[1], "404");
  EXPECT_EQ(fields(row(r.out, srv.url("/fine")))[1], "200");
  EXPECT_NE(r.out.find("3 URLs, 2 failed"), std::string::npos) << r.out;
  // stderr is not a terminal here: no progress bar.
  EXPECT_EQ(r.err.find('\r'), std::string::npos);
}

TEST(Fetch, ASlowServerTimesOut) {
  moss_test::http_server srv(1500ms);
  auto r = run("--timeout 0.3 " + srv.url("/slow"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find(": timed out"), std::string::npos) << r.err;
  EXPECT_LT(r.seconds, 1.2);
}

TEST(Fetch, UrlsComeFromAFile) {
  moss_test::http_server srv(0ms);
  char name[] = "/tmp/moss_fetch_urls_XXXXXX";
  ::close(mkstemp(name));
  {
    std::ofstream f(name);
    f << "# a comment\n" << srv.url("/one") << "\n\n" << srv.url("/two") << "\n";
  }
  auto r = run(std::string("-i ") + name);
  ::unlink(name);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("2 URLs, 0 failed"), std::string::npos) << r.out;
}

TEST(Fetch, ABadUrlFailsOnlyItsOwnRow) {
  moss_test::http_server srv(0ms);
  auto r = run("htp:/x http://:80/ http://h:99999/ " + srv.url("/fine"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("moss-fetch: htp:/x: bad URL: unsupported scheme\n"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("moss-fetch: http://:80/: bad URL: missing host\n"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("moss-fetch: http://h:99999/: bad URL: bad port\n"), std::string::npos) << r.err;
  EXPECT_EQ(fields(row(r.out, srv.url("/fine")))[1], "200") << r.out;
  EXPECT_NE(r.out.find("4 URLs, 3 failed"), std::string::npos) << r.out;
}

// out_dir: a fresh directory name under /tmp, removed at the end.
struct out_dir {
  std::filesystem::path path = std::filesystem::temp_directory_path() /
                               ("moss_fetch_dir_" + std::to_string(::getpid()) + "_" + std::to_string(++count));
  ~out_dir() { std::filesystem::remove_all(path); }
  std::vector<std::string> names() const {
    std::vector<std::string> v;
    for (const auto& e : std::filesystem::recursive_directory_iterator(path))
      if (e.is_regular_file()) v.push_back(e.path().filename().string());
    std::sort(v.begin(), v.end());
    return v;
  }
  static inline int count = 0;
};

TEST(Fetch, TheOutputDirectoryIsCreatedWithItsParents) {
  moss_test::http_server srv(0ms, "body text\n");
  out_dir d;
  auto target = d.path / "new" / "deeper";
  auto r = run("-o " + target.string() + " " + srv.url("/x.txt"));
  EXPECT_EQ(r.status, 0) << r.err;
  std::ifstream f(target / ("127.0.0.1_" + std::to_string(srv.port()) + "_x.txt"));
  std::stringstream ss;
  ss << f.rdbuf();
  EXPECT_EQ(ss.str(), "body text\n");
}

TEST(Fetch, AnOutputDirectoryThatIsAFileIsReported) {
  char name[] = "/tmp/moss_fetch_file_XXXXXX";
  ::close(mkstemp(name));
  auto r = run(std::string("-o ") + name + "/sub http://127.0.0.1:1/");
  ::unlink(name);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find(std::string("moss-fetch: -o \"") + name + "/sub\": \"" + name + "\" is not a directory"),
            std::string::npos)
      << r.err;
}

TEST(Fetch, AnErrorBodyIsSavedOnlyWithSaveErrors) {
  moss_test::http_server srv(0ms);
  out_dir d;
  auto r = run("-o " + d.path.string() + " " + srv.url("/status/404") + " " + srv.url("/ok"));
  EXPECT_EQ(r.status, 1);
  std::string base = "127.0.0.1_" + std::to_string(srv.port());
  EXPECT_EQ(d.names(), std::vector<std::string>{base + "_ok"});
  auto kept = run("--save-errors -o " + d.path.string() + " " + srv.url("/status/404"));
  EXPECT_EQ(kept.status, 1);
  EXPECT_EQ(d.names(), (std::vector<std::string>{base + "_ok", base + "_status_404"}));
}

TEST(Fetch, UsageErrors) {
  EXPECT_EQ(run("").status, 2);
  auto frob = run("--frob http://h/");
  EXPECT_EQ(frob.status, 2);
  EXPECT_EQ(frob.err, "moss-fetch: unknown option \"--frob\" (try --help)\n");
  auto c = run("-c0 http://h/");
  EXPECT_EQ(c.status, 2);
  EXPECT_NE(c.err.find("bad value \"0\" for -c"), std::string::npos) << c.err;
  auto t = run("--timeout=soon http://h/");
  EXPECT_EQ(t.status, 2);
  EXPECT_NE(t.err.find("bad value \"soon\" for --timeout"), std::string::npos) << t.err;
  EXPECT_EQ(run("--help").status, 0);
  EXPECT_EQ(run("--version").out, "moss-fetch 0.1.0\n");
}

// ---- the response parser ----

TEST(FetchParser, ContentLengthBodyInAnyPieces) {
  std::string text = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A:  b \r\n\r\nhelloEXTRA";
  for (std::size_t step : {1u, 2u, 7u, 100u}) {
    response_parser p;
    EXPECT_EQ(parse_all(p, text, step, false), "hello");
    EXPECT_TRUE(p.done());
    EXPECT_EQ(p.head().status, 200);
    EXPECT_EQ(p.head().reason, "OK");
    EXPECT_EQ(p.head().header("x-a").value_or("?"), "b");
  }
}

TEST(FetchParser, ChunkedBodyWithExtensionsAndTrailers) {
  std::string text =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nT: v\r\n\r\n";
  for (std::size_t step : {1u, 3u, 1000u}) {
    response_parser p;
    EXPECT_EQ(parse_all(p, text, step, false), "hello world");
    EXPECT_TRUE(p.done()) << p.error();
  }
}

TEST(FetchParser, BodyUntilCloseAndInterimResponses) {
  response_parser p;
  EXPECT_EQ(parse_all(p, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\n\r\nall of it", 4), "all of it");
  EXPECT_TRUE(p.done());
  EXPECT_EQ(p.head().minor_version, 0);
}

TEST(FetchParser, NoBodyFor204And304AndHead) {
  response_parser a;
  parse_all(a, "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", 5, false);
  EXPECT_TRUE(a.done());
  response_parser h(true);
  parse_all(h, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", 5, false);
  EXPECT_TRUE(h.done());
}

TEST(FetchParser, MalformedResponsesFailWithAReason) {
  struct bad {
    const char* text;
    const char* why;
  };
  for (auto [text, why] : {bad{"HTTP/2 200 OK\r\n\r\n", "bad status line"},
                           bad{"HTTP/1.1 2x0 OK\r\n\r\n", "bad status code"},
                           bad{"HTTP/1.1 200 OK\r\nNo colon\r\n\r\n", "bad header line"},
                           bad{"HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n", "folded header line"},
                           bad{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", "bad Content-Length"},
                           bad{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk size"},
                           bad{"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort", "connection closed before the end of the body"},
                           bad{"", "connection closed before a response"}}) {
    response_parser p;
    parse_all(p, text, 3);
    EXPECT_TRUE(p.failed()) << text;
    EXPECT_EQ(p.error(), why) << text;
  }
}

TEST(FetchParser, AnOverlongHeadFails) {
  response_parser p(false, 100);
  parse_all(p, "HTTP/1.1 200 OK\r\nX: " + std::string(200, 'a') + "\r\n\r\n", 10, false);
  EXPECT_TRUE(p.failed());
  EXPECT_EQ(p.error(), "response head too long");
}

TEST(Fetch, CtrlCStopsTheFetchesAndStillPrintsTheTable) {
  moss_test::http_server srv(2000ms);
  std::string cmd = std::string(MOSS_FETCH) + " " + srv.url("/a") + " " + srv.url("/b") +
                    " & pid=$!; sleep 0.3; kill -INT $pid; wait $pid; echo \"exit=$?\"";
  auto t0 = std::chrono::steady_clock::now();
  FILE* p = popen(("sh -c '" + cmd + "' 2>&1").c_str(), "r");
  std::string out;
  std::array<char, 4096> buf{};
  for (std::size_t n; (n = fread(buf.data(), 1, buf.size(), p)) > 0;) out.append(buf.data(), n);
  pclose(p);
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(took, 1.5) << out;  // not the 2 s the server takes
  EXPECT_NE(out.find("moss-fetch: interrupted"), std::string::npos) << out;
  EXPECT_NE(row(out, srv.url("/a")).find(" interrupted"), std::string::npos) << out;
  EXPECT_NE(row(out, srv.url("/b")).find(" interrupted"), std::string::npos) << out;
  EXPECT_NE(out.find("exit=1"), std::string::npos) << out;
}

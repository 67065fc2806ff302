// curl_test: libcurl's blocking easy API, never written for moss, runs
// concurrently in greenlets when the program links libmoss_patch.
#include <moss/moss.hpp>

#include "fixtures/http_server.hpp"
#include "fixtures/postgres.hpp"
#include "leak_check.hpp"

#include <curl/curl.h>

#include <chrono>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using clk = std::chrono::steady_clock;

namespace {

size_t collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// An ordinary libcurl GET, exactly as a program without moss would write it.
std::string get(const std::string& url, long* status) {
  CURL* h = curl_easy_init();
  std::string body;
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &collect);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
  CURLcode rc = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
  curl_easy_cleanup(h);
  return rc == CURLE_OK ? body : std::string("curl error: ") + curl_easy_strerror(rc);
}

class WithCurl : public moss_test::WithHub {
 protected:
  static void SetUpTestSuite() { curl_global_init(CURL_GLOBAL_DEFAULT); }
  static void TearDownTestSuite() { curl_global_cleanup(); }
};

}  // namespace

TEST_F(WithCurl, FiftyGreenletsEachGetASlowPageInFarLessThanTheSequentialTime) {
  moss_test::http_server server(200ms);
  constexpr int n = 50;
  auto t0 = clk::now();
  std::vector<moss::task<std::string>> ts;
  std::vector<long> status(n, 0);
  for (int i = 0; i < n; ++i) ts.push_back(moss::spawn([&, i] { return get(server.url("/slow"), &status[i]); }));
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(ts[i].get(), "hello\n");
    EXPECT_EQ(status[i], 200);
  }
  auto took = clk::now() - t0;
  EXPECT_LT(took, 2s) << "sequential would be 10 s";
  EXPECT_EQ(server.requests(), n);
}

TEST_F(WithCurl, ARefusedConnectionIsCurlsUsualError) {
  int port = moss_test::free_tcp_port();
  long status = 0;
  auto t = moss::spawn([&] { return get("http://127.0.0.1:" + std::to_string(port) + "/", &status); });
  EXPECT_NE(t.get().find("curl error"), std::string::npos);
}

// A timeout that lands while curl waits inside a hooked call: curl sees its
// usual error, and the timeout still holds for the caller.
TEST_F(WithCurl, WithTimeoutAroundACurlGetOfASlowPageThrowsTimeoutError) {
  moss_test::http_server server(3s);
  long status = 0;
  std::string body;
  auto t0 = clk::now();
  EXPECT_THROW(body = moss::with_timeout(300ms, [&] { return get(server.url("/slow"), &status); }), moss::timeout_error)
      << "returned \"" << body << "\"";
  auto took = clk::now() - t0;
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 1500ms);
}

TEST_F(WithCurl, AKillInsideCurlLeavesTheTaskKilled) {
  moss_test::http_server server(3s);
  long status = 0;
  auto t = moss::spawn([&] { return get(server.url("/slow"), &status); });
  moss::sleep(100ms);
  auto t0 = clk::now();
  t.kill();
  EXPECT_LT(clk::now() - t0, 1s);
  EXPECT_TRUE(t.killed());
  EXPECT_FALSE(t.successful());
}
